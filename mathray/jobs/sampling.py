"""Distributed solution sampling: problem shards -> prompts -> vLLM actor pool -> grading -> sample shards.

The job is the stage ``SAMPLE`` (``runtime.spec``; resume, lineage, de-duplication, quarantine and per-shard
commits live in the runtime)::

    validate problems -> [replicate rows] -> SampleEngine actors (one vllm.LLM each) -> grade_batch tasks

``SampleEngine`` owns one ``vllm.LLM`` per replica in an autoscaling ``ActorPoolStrategy`` pool (GPU, CPU,
or tensor-parallel placement groups: ``mathray.runtime.engine.pool_kwargs``). It builds each prompt in the format of
``mathray.core.prompts``, counts its tokens with the engine's own tokenizer and hands vLLM the token ids (so the
count is the one vLLM sees); prompts that do not fit ``max_model_len`` are quarantined, never sent.

Sampling (``sampling.expand``):
- ``n`` (default): one request per problem with ``SamplingParams(n=N, seed=s)``: the prompt is prefilled
  once for N samples. vLLM gives child i the seed ``s + i``, so sample i's seed is ``s + i``.
- ``rows``: N rows per problem, each a request with ``n=1, seed=s+i`` (what ``ray.data.llm``-style
  pipelines must do since they keep only the first of n outputs). Same seeds, hence the same samples up to
  floating-point batch effects; prefix caching shares the prefill. Kept for the benchmark comparison.
The per-problem seed ``s = problem_seed(run seed, problem_id)``, so a re-run (or a retried batch)
reproduces the same samples. ``greedy`` is the Pass@1 pass: temperature 0, n=1. ``greedy_pass`` adds that
pass to a sampling run: one more request per problem in the same engine call, its row ``sample_id`` N with
``greedy_pass`` true (the row a greedy run would give), so an evaluation set costs one model load, not two.

Grading runs as separate CPU tasks after the engine (``grade_batch``) so replicas keep generating while
answers are checked. A truncated sample (finish_reason ``length``) keeps its text, has ``answer`` null,
``is_correct`` False and ``grade_reason`` ``truncated``: it is never graded as a finished wrong answer.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

import pyarrow as pa
from pydantic import Field, model_validator

from mathray import grading
from mathray.config import StrictModel, outside_lineage
from mathray.core import prompts, schemas
from mathray.core.prompts import PromptConfig
from mathray.runtime.engine import EngineConfig, build_llm, generate_or_refuse, pool_kwargs, sampling_params_hash
from mathray.runtime.models import model_fingerprint
from mathray.runtime.spec import StageJobConfig, StageSpec, run_spec
from mathray.runtime.stage import QUARANTINE, StageSummary, is_quarantined, quarantined, rows_to_table, with_source
from mathray.runtime.storage import ShardStore

SAMPLE_INDEX = "_sample_index"   # rows mode: which of the N samples a replicated row asks for
TRUNCATED = "truncated"
_SEED_RANGE = 2**31 - 2**20      # leaves room for s + i (i < 2**20) in a signed 32-bit seed


class SamplingConfig(StrictModel):
    n: int = Field(4, ge=1, le=2**20)     # samples per problem
    temperature: float = Field(1.0, ge=0.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_tokens: int = Field(512, ge=1)
    stop: list[str] = list(prompts.STOP_STRINGS)
    seed: int = 0                         # run seed; per-problem seeds derive from it
    greedy: bool = False                  # Pass@1 pass: temperature 0, n=1
    greedy_pass: bool = False             # also each problem's greedy decode, in the same engine pass
    logprobs: bool = True                 # fill cumulative_logprob (the sampled tokens' log-probs)
    # n: SamplingParams(n=N); rows: N rows with n=1 (benchmark). Same samples either way: outside the lineage.
    expand: Literal["n", "rows"] = outside_lineage("n")

    @model_validator(mode="after")
    def _check(self) -> "SamplingConfig":
        if self.temperature == 0 and not self.greedy and self.n > 1:
            raise ValueError("temperature 0 samples are identical: use greedy: true (n=1) or temperature > 0")
        if self.greedy_pass and (self.greedy or self.expand == "rows"):
            raise ValueError("greedy_pass adds a greedy row to N samples: not with greedy: true or expand: rows")
        return self


class SampleJobConfig(StageJobConfig):
    input: str = outside_lineage("runs/default/problems")  # PROBLEMS shards (ingest output)
    output: str = outside_lineage("runs/default/samples")  # SAMPLES shards, one per input shard
    engine: EngineConfig = EngineConfig()
    sampling: SamplingConfig = SamplingConfig()
    prompt: PromptConfig = PromptConfig()


# -- pure parts -----------------------------------------------------------------------------------------
def problem_seed(run_seed: int, problem_id: str) -> int:
    digest = hashlib.sha256(f"{run_seed}:{problem_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % _SEED_RANGE


def num_samples(s: SamplingConfig) -> int:
    return 1 if s.greedy else s.n


def greedy_config(s: SamplingConfig) -> SamplingConfig:
    """The greedy run of these settings: what a ``greedy_pass`` row is decoded with."""
    return s.model_copy(update={"greedy": True, "n": 1, "greedy_pass": False})


def request_params(s: SamplingConfig) -> dict:
    """``SamplingParams`` fields shared by every request of the run (n and seed are set per request)."""
    params = {"temperature": 0.0 if s.greedy else s.temperature, "top_p": 1.0 if s.greedy else s.top_p,
              "max_tokens": s.max_tokens, "stop": list(s.stop)}
    if s.logprobs:
        params["logprobs"] = 0
    return params


def params_hash(s: SamplingConfig) -> str:
    """Names the sampling distribution of a row: the shared parameters, N and the run seed (not ``expand``,
    which changes how requests are batched, not which samples come out)."""
    return sampling_params_hash({**request_params(s), "n": num_samples(s), "seed": s.seed})


def grade_sample(text: str, reference: str, finish_reason: str) -> tuple[str | None, bool, str]:
    """(extracted answer, is_correct, reason) of one sample; truncated samples are not graded."""
    if finish_reason == "length":
        return None, False, TRUNCATED

    result = grading.grade(text, reference)
    return result.answer, bool(result.is_correct), str(result.reason)


def sample_row(src: dict, sample_id: int, out, *, prompt: str, num_prompt_tokens: int, generator: str,
               params_hash: str, seed: int, greedy_pass: bool = False) -> dict:
    """One SAMPLES row (ungraded) from a vLLM ``CompletionOutput``."""
    return {"problem_id": src["problem_id"], "sample_id": sample_id, "problem": src["problem"],
            "reference_answer": src["answer"], "prompt_hash": prompts.prompt_hash(prompt),
            "prompt": prompt, "text": out.text,
            "answer": None, "is_correct": None, "grade_reason": None,
            "num_prompt_tokens": num_prompt_tokens, "num_output_tokens": len(out.token_ids),
            "finish_reason": "length" if out.finish_reason == "length" else "stop",
            "cumulative_logprob": out.cumulative_logprob, "generator": generator,
            "sampling_params_hash": params_hash, "seed": seed, "greedy_pass": greedy_pass}


def grade_batch(batch: pa.Table) -> pa.Table:
    """Fill answer / is_correct / grade_reason (a map_batches step after the engine)."""
    rows = batch.to_pylist()
    for r in rows:
        if not is_quarantined(r):
            r["answer"], r["is_correct"], r["grade_reason"] = grade_sample(
                r["text"], r["reference_answer"], r["finish_reason"])
    return rows_to_table(rows, schemas.SAMPLES)


def replicate_rows(batch: pa.Table, n: int) -> pa.Table:
    """Rows mode: each valid problem row becomes n rows with ``_sample_index`` 0..n-1 (quarantined rows
    stay single)."""
    keep = [0 if q else n for q in batch.column(QUARANTINE).is_valid().to_pylist()]
    take, index = [], []
    for i, k in enumerate(keep):
        take += [i] * max(k, 1)
        index += list(range(k)) if k else [0]
    out = batch.take(pa.array(take, pa.int64()))
    return out.append_column(SAMPLE_INDEX, pa.array(index, pa.int32()))


def shard_stats(table: pa.Table) -> dict:
    """Per-shard counts stored in the commit marker (the N samples' and, apart, the greedy-pass rows'); the
    job summary adds them up."""
    columns = ["problem_id", "is_correct", "finish_reason", "num_output_tokens", "greedy_pass"]
    rows = table.select([c for c in columns if c in table.column_names]).to_pylist()
    greedy = [r for r in rows if r.get("greedy_pass")]
    rows = [r for r in rows if not r.get("greedy_pass")]
    any_correct: dict[str, bool] = {}
    for r in rows:
        any_correct[r["problem_id"]] = any_correct.get(r["problem_id"], False) or bool(r["is_correct"])
    return {"problems": len(any_correct), "samples": len(rows),
            "correct": sum(bool(r["is_correct"]) for r in rows),
            "truncated": sum(r["finish_reason"] == "length" for r in rows),
            "output_tokens": sum(r["num_output_tokens"] for r in [*rows, *greedy]),
            "problems_any_correct": sum(any_correct.values()),
            "greedy": len(greedy), "greedy_correct": sum(bool(r["is_correct"]) for r in greedy)}


@dataclass
class CommitClock:
    """Commit times of this run (``StageSummary.commits``, stamped by the committing worker) and their output
    tokens, for the steady generation rate."""

    commits: list = field(default_factory=list)   # (time, output tokens)

    @classmethod
    def of(cls, stage: StageSummary) -> "CommitClock":
        return cls(sorted((c["at"], c["stats"].get("output_tokens", 0)) for c in stage.commits))

    def steady_tokens_per_s(self) -> float | None:
        """Tokens committed after the first commit / time from first to last commit: excludes engine
        start-up and pipeline fill. None for runs too short to say (results arrive in bursts)."""
        if len(self.commits) < 3 or self.commits[-1][0] - self.commits[0][0] < 1.0:
            return None
        return sum(t for _, t in self.commits[1:]) / (self.commits[-1][0] - self.commits[0][0])


@dataclass
class SampleSummary:
    stage: StageSummary
    clock: CommitClock

    @property
    def problems(self) -> int:
        return self.stage.totals.get("problems", 0)

    @property
    def samples(self) -> int:
        return self.stage.totals.get("samples", 0)

    @property
    def quarantined(self) -> int:
        return self.stage.totals.get("quarantined", 0)

    def lines(self) -> list[str]:
        def share(a: int, b: int) -> str:
            return f"{a / b:.1%}" if b else "n/a"

        t, wall = self.stage.totals, self.stage.wall_s
        tokens_run = sum(n for _, n in self.clock.commits)
        steady = self.clock.steady_tokens_per_s()
        return [*self.stage.lines(),
                f"[sample] problems: {t.get('problems', 0)}, samples: {t.get('samples', 0)}, quarantined "
                f"problems: {t.get('quarantined', 0)}",
                f"[sample] output tokens this run: {tokens_run}, {tokens_run / wall if wall else 0:.0f} "
                f"tokens/s overall, {f'{steady:.0f}' if steady else 'n/a'} tokens/s steady (first to last commit)",
                f"[sample] truncated: {share(t.get('truncated', 0), t.get('samples', 0))}",
                f"[sample] accuracy: sample-level {share(t.get('correct', 0), t.get('samples', 0))}, "
                f"any-correct {share(t.get('problems_any_correct', 0), t.get('problems', 0))} of problems"
                + (f", greedy {share(t['greedy_correct'], t['greedy'])}" if t.get("greedy") else "")]


# -- the engine actor -----------------------------------------------------------------------------------
class _Request(NamedTuple):
    """One engine request: its problem row and prompt, the sample id of its first output, n and seed."""
    row: dict
    prompt: str
    ids: list[int]
    first: int
    n: int
    seed: int
    greedy_pass: bool = False


class SampleEngine:
    """Callable class for ``map_batches``: one ``vllm.LLM`` per actor, problems in, SAMPLES rows out."""

    def __init__(self, cfg: dict, device: str):
        self.cfg = SampleJobConfig.model_validate(cfg)
        self.llm = build_llm(self.cfg.engine, device)
        self.tokenizer = self.llm.get_tokenizer()
        self.generator = model_fingerprint(self.cfg.engine.model)
        # by kind of request (greedy_pass False: sampled, True: the greedy pass): the rows' params hash and the
        # SamplingParams fields
        kinds = {False: self.cfg.sampling, True: greedy_config(self.cfg.sampling)}
        self.params_hash = {k: params_hash(s) for k, s in kinds.items()}
        self.request_params = {k: request_params(s) for k, s in kinds.items()}
        self.pool = self._exemplar_pool()

    def _exemplar_pool(self) -> list[dict]:
        p = self.cfg.prompt
        if p.format != "few_shot" or p.shots != "pool" or not p.exemplar_pool:
            return []

        rows = ShardStore(self.cfg.prompt.exemplar_pool).read_all(
            ["problem_id", "problem", "reference_solution"]).to_pylist()
        return [r for r in rows if r["reference_solution"]]

    def prompt_ids(self, row: dict) -> tuple[str, list[int]]:
        prompt = prompts.build_prompt(row["problem"], row["problem_id"], self.cfg.prompt, self.pool,
                                      self.tokenizer)
        # chat templates already hold the special tokens; vLLM's text path encodes with the defaults
        ids = self.tokenizer.encode(prompt, add_special_tokens=self.cfg.prompt.format != "chat")
        return prompt, list(ids)

    def __call__(self, batch: pa.Table) -> pa.Table:
        s, max_len = self.cfg.sampling, self.cfg.engine.max_model_len
        n_total = num_samples(s)
        rows_mode = SAMPLE_INDEX in batch.column_names
        out, requests = [], []
        for row in batch.to_pylist():
            if is_quarantined(row):
                out.append(row)
                continue
            try:
                prompt, ids = self.prompt_ids(row)
            except (ValueError, TypeError, KeyError) as e:
                out.append(quarantined(row, f"cannot build prompt: {e}"))
                continue
            if len(ids) >= max_len:
                out.append(quarantined(row, f"prompt is {len(ids)} tokens, max_model_len is {max_len}"))
                continue
            seed = problem_seed(s.seed, row["problem_id"])
            first = row[SAMPLE_INDEX] if rows_mode else 0
            requests.append(_Request(row, prompt, ids, first, 1 if rows_mode else n_total, seed + first))
            if s.greedy_pass:
                requests.append(_Request(row, prompt, ids, n_total, 1, seed, greedy_pass=True))
        results = self._generate(requests)
        # a problem whose request (either of two with greedy_pass) the engine refuses is quarantined once, whole:
        # its reason is taken when its first request comes by, its other request then finds None
        refused = {id(req.row): r for req, r in zip(requests, results) if isinstance(r, str)}
        for req, result in zip(requests, results):
            if id(req.row) in refused:
                if (reason := refused[id(req.row)]) is not None:
                    out.append(quarantined(req.row, reason))
                    refused[id(req.row)] = None
                continue
            for completion_out in result.outputs:
                # vLLM seeds child i of an n-request with seed + i (v1 parallel_sampling)
                out.append(with_source(sample_row(
                    req.row, req.first + completion_out.index, completion_out, prompt=req.prompt,
                    num_prompt_tokens=len(req.ids), generator=self.generator,
                    params_hash=self.params_hash[req.greedy_pass],
                    seed=req.seed + completion_out.index, greedy_pass=req.greedy_pass),
                    req.row, n_total + s.greedy_pass))
        return rows_to_table(out, schemas.SAMPLES)

    def _generate(self, requests: list[_Request]) -> list:
        """vLLM outputs in request order; a request the engine refuses becomes its reason (quarantine)."""
        from vllm import SamplingParams

        prompts_in = [{"prompt_token_ids": r.ids} for r in requests]
        params = [SamplingParams(n=r.n, seed=r.seed, **self.request_params[r.greedy_pass]) for r in requests]
        return generate_or_refuse(self.llm, prompts_in, params)


# -- the job ------------------------------------------------------------------------------------------
def sample_pool(cfg: SampleJobConfig, device: str) -> dict:
    pool = pool_kwargs(cfg.engine, device)
    if cfg.sampling.expand == "rows":
        pool["batch_size"] = cfg.engine.batch_size * num_samples(cfg.sampling)  # same sequences per call
    return pool


def replicate_for_rows_mode(cfg: SampleJobConfig, ds):
    n = num_samples(cfg.sampling)
    if cfg.sampling.expand != "rows" or n == 1:
        return ds
    return ds.map_batches(replicate_rows, batch_format="pyarrow", fn_kwargs={"n": n})


def grade_after_engine(cfg: SampleJobConfig, ds):
    # batch_size=None: grade each engine output block as it comes; fuses with the stage's commit task
    return ds.map_batches(grade_batch, batch_format="pyarrow", batch_size=None)


SAMPLE = StageSpec(
    job="sample", input_schema=schemas.PROBLEMS, output_schema=schemas.SAMPLES,
    input_key=("problem_id",), output_key=("problem_id", "sample_id"), actor=SampleEngine, pool=sample_pool,
    device=lambda cfg: cfg.engine.device, models=lambda cfg: {"generator": cfg.engine.model},
    shard_sets=lambda cfg: ({"exemplar_pool": cfg.prompt.exemplar_pool}
                            if cfg.prompt.format == "few_shot" and cfg.prompt.shots == "pool" and cfg.prompt.exemplar_pool
                            else {}),
    stats=shard_stats, before_actor=replicate_for_rows_mode, after_actor=grade_after_engine)


def run_sampling(cfg: SampleJobConfig, engine_cls: type = SampleEngine) -> SampleSummary:
    """Sample every uncommitted input shard (Ray must be up: ``runtime.entry.init_ray``); ``engine_cls``
    may be a subclass of ``SampleEngine`` (tests)."""
    stage = run_spec(SAMPLE, cfg, actor=engine_cls)
    return SampleSummary(stage, CommitClock.of(stage))
