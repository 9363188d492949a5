"""What every Ray Train worker runs (``train_func``), and the same phases in one plain process (``run_local``).

A run is a list of phases (one per task; three for sequential, two for its control), each a trainer run of
its own. A phase loads its starting weights through ``runtime.models.fetch_model`` (the job's ``model`` for
the first phase, the previous phase's export after that), resolves the label tokens (``core.labels``),
builds its examples (``data``), trains with its ``trainers`` class, evaluates on the held-out problems,
and exports. Exports are ``publish_model`` calls, so a phase's output is complete before the checkpoint
that says "phase done" is reported; a restored run skips finished phases and resumes the current one from
its last HF checkpoint (weights, optimizer, scheduler, per-rank RNG states, data position).
"""
from __future__ import annotations

import contextlib
import gc
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mathray.config import code_version, resolved_config, result_hash
from mathray.core.labels import LabelTokens, resolve_labels, save_labels
from mathray.jobs.training import callbacks, data, trainers
from mathray.jobs.training.config import TrainJobConfig
from mathray.runtime.storage import ShardStore, join, resolve


@dataclass
class Phase:
    kind: str          # ssft | verifier_xent | verifier_margin | prm_hard | prm_soft | orm | contrastive
    steps: int
    lr: float
    export: str        # directory under ``output`` the phase's model is published to


TRAINERS = {"verifier_xent": trainers.VerifierXentTrainer, "verifier_margin": trainers.VerifierMarginTrainer,
            "prm_hard": trainers.PRMHardTrainer, "prm_soft": trainers.PRMSoftTrainer, "orm": trainers.ORMTrainer,
            "contrastive": trainers.ContrastiveTrainer}


def phases(cfg: TrainJobConfig) -> list[Phase]:
    o, t = cfg.optim, cfg.task
    verifier = f"verifier_{cfg.verifier.loss}"
    if t == "ssft":
        return [Phase("ssft", o.steps, o.lr, "final")]
    if t == "verifier":
        return [Phase(verifier, o.steps, o.lr, "final")]
    if t == "prm":
        return [Phase(f"prm_{cfg.prm.targets}", o.steps, o.lr, "final")]
    if t == "orm":
        return [Phase("orm", o.steps, o.lr, "final")]
    s = cfg.sequential
    steps, lrs = s.stage_steps, s.stage_lr or (o.lr, o.lr, o.lr)
    if s.control:
        plan = [Phase("ssft", steps[0], lrs[0], "stage1-ssft"), Phase("ssft", steps[1] + steps[2], lrs[2], "final")]
    else:
        plan = [Phase("ssft", steps[0], lrs[0], "stage1-ssft"), Phase(verifier, steps[1], lrs[1], "stage2-verifier"),
                Phase("contrastive", steps[2], lrs[2], "final")]
    # stage_steps[0] == 0: the model is already the SSFT generator (the pipeline starts from its SSFT export)
    return plan[1:] if steps[0] == 0 else plan


def load_rows(uris: list[str], verify: bool = True) -> list[dict]:
    rows = []
    for uri in uris:
        rows += ShardStore(uri, verify=verify).read_all().to_pylist()
    return rows


def build_examples(cfg: TrainJobConfig, kind: str, tokenizer, labels: LabelTokens) -> tuple[list, list, dict]:
    """(train examples, eval examples, stats) of a phase; eval = the held-out problems' examples."""
    d = cfg.data
    eos = tokenizer.eos_token_id if d.append_eos else None
    if kind == "ssft":
        def build(rows):
            return data.ssft_examples(tokenizer, rows, d.max_len, eos)
        rows = load_rows(d.ssft, cfg.verify_inputs)
    elif kind.startswith("prm"):
        def build(rows):
            return data.prm_examples(tokenizer, rows, labels.step_tag, d.max_len, cfg.prm.targets)
        rows = load_rows(d.step_labels, cfg.verify_inputs)
    else:
        vs = labels.verifier_suffix
        builder = {"verifier_xent": lambda r: data.verifier_examples(tokenizer, r, d.per_problem, d.max_len, d.seed,
                                                                     vs),
                   "verifier_margin": lambda r: data.verifier_pair_examples(tokenizer, r, d.per_problem, d.max_len,
                                                                            d.seed, vs),
                   "orm": lambda r: data.orm_examples(tokenizer, r, labels.step_tag, d.per_problem, d.max_len,
                                                      d.seed),
                   "contrastive": lambda r: data.generator_pair_examples(tokenizer, r, d.per_problem, d.max_len,
                                                                         eos, d.seed)}[kind]

        def build(rows):
            return builder(rows)
        rows = load_rows(d.samples, cfg.verify_inputs)
    train_rows, eval_rows = data.split_by_problem(rows, d.eval_fraction, d.seed)
    train, stats = build(train_rows)
    held, eval_stats = build(eval_rows) if eval_rows else ([], {})
    if kind == "contrastive" and cfg.sequential.mle_data == "references":   # L_mle on the SSFT references
        references, ref_stats = data.ssft_examples(tokenizer, load_rows(d.ssft, cfg.verify_inputs), d.max_len, eos)
        if not references:
            raise ValueError(f"phase contrastive: mle_data=references but data.ssft gives no SSFT example "
                             f"({ref_stats}); set data.ssft or sequential.mle_data=pairs")
        stats["pairs"], stats["references"] = len(train), len(references)
        train = data.with_references(train, references, d.seed)
        held = data.with_references(held, references, d.seed, cycle_pairs=False)
    stats = {**stats, "examples": len(train), "eval_examples": len(held),
             **{f"eval_{k}": v for k, v in eval_stats.items()}}
    if not train:
        raise ValueError(f"phase {kind}: no training example (data stats: {stats})")
    return train, held, stats


def _rank() -> int:
    import torch.distributed as dist

    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def _barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def _lora(cfg: TrainJobConfig):
    from peft import LoraConfig

    lo = cfg.lora
    return LoraConfig(task_type="CAUSAL_LM", r=lo.r, lora_alpha=lo.alpha, lora_dropout=lo.dropout,
                      target_modules=lo.target_modules)


def export(trainer, cfg: TrainJobConfig, tokenizer, labels: LabelTokens, dest: str, info: dict) -> None:
    """Gather the full weights (a collective under FSDP/ZeRO-3), then on rank 0 rebuild the model on the meta
    device, load them, merge LoRA, cast to the export dtype and ``publish_model`` with the tokenizer and the
    label ids."""
    import torch
    from transformers import AutoModelForCausalLM

    from mathray.runtime.models import publish_model

    state = trainer.accelerator.get_state_dict(trainer.model_wrapped)
    if _rank() == 0:
        config = trainer.accelerator.unwrap_model(trainer.model)
        config = config.get_base_model().config if hasattr(config, "get_base_model") else config.config
        with torch.device("meta"):
            fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        if cfg.lora is not None:
            from peft import get_peft_model

            fresh = get_peft_model(fresh, _lora(cfg))
        fresh.load_state_dict({k: v.float() for k, v in state.items()}, strict=True, assign=True)
        if cfg.lora is not None:
            fresh = fresh.merge_and_unload()
        fresh.tie_weights()
        dtype = cfg.compute_dtype() if cfg.export_dtype == "auto" else cfg.export_dtype
        fresh = fresh.to(getattr(torch, dtype))
        fresh.config.dtype = dtype
        with tempfile.TemporaryDirectory() as tmp:
            fresh.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            save_labels(tmp, labels)
            publish_model(tmp, dest, {**info, "export_dtype": dtype, "labels": labels.to_json()})
    del state
    _barrier()


def upload_logs(local_dir: str, dest: str) -> None:
    """TensorBoard event files (HF writes them under ``<output_dir>/runs``) to ``dest``, rank 0."""
    import pyarrow.fs as pafs

    src = Path(local_dir, "runs")
    if _rank() == 0 and src.is_dir():
        fs, path = resolve(dest)
        fs.create_dir(path, recursive=True)
        pafs.copy_files(str(src), path, source_filesystem=pafs.LocalFileSystem(), destination_filesystem=fs)


def run_phase(cfg: TrainJobConfig, index: int, phase: Phase, base_uri: str, resume: str | None, on_ray: bool,
              offset: int, identity: dict) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed

    from mathray.runtime.models import fetch_model, model_fingerprint

    base = fetch_model(base_uri)
    set_seed(cfg.seed)   # LoRA init and new label-token rows come from here
    tokenizer = AutoTokenizer.from_pretrained(base, trust_remote_code=False)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    weights = torch.bfloat16 if cfg.resolved_precision() == "bf16" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(base, dtype=weights, trust_remote_code=False)
    labels = resolve_labels(tokenizer, cfg.labels, model)
    train, held, stats = build_examples(cfg, phase.kind, tokenizer, labels)
    if cfg.lora is not None:
        from peft import get_peft_model

        model = get_peft_model(model, _lora(cfg))
    layer_cls = list(getattr(model, "_no_split_modules", None) or [])
    out_dir = tempfile.mkdtemp(prefix=f"mathray-train-{index}-")
    cbs = callbacks.job_callbacks(cfg, index, phase.kind, offset, on_ray)
    common = dict(steps=phase.steps, lr=phase.lr, out_dir=out_dir, layer_cls=layer_cls, has_eval=bool(held))
    if phase.kind == "ssft":
        from trl import SFTConfig

        args = callbacks.training_arguments(cfg, args_cls=SFTConfig, max_length=None, packing=False,
                                            completion_only_loss=True, **common)
        trainer = trainers.sft_trainer(model, args, train, held, tokenizer, cbs)
    else:
        args = callbacks.training_arguments(cfg, **common)
        label_ids = labels.verifier if phase.kind.startswith("verifier") else labels.prm
        s = cfg.sequential if phase.kind == "contrastive" else cfg.verifier
        trainer = TRAINERS[phase.kind](
            model=model, args=args, train_dataset=train, eval_dataset=held or None, data_collator=trainers.collate,
            compute_metrics=trainers.eval_metrics, callbacks=cbs, label_ids=label_ids,
            pad_id=tokenizer.pad_token_id, settings=s.model_dump())
    if on_ray:
        from ray.train.huggingface.transformers import prepare_trainer

        trainer = prepare_trainer(trainer)
    result = trainer.train(resume_from_checkpoint=resume)
    metrics = {"phase": phase.kind, "step": trainer.state.global_step, "global_step": offset + phase.steps,
               "loss": next((h["loss"] for h in reversed(trainer.state.log_history) if "loss" in h), None),
               "train_loss": result.training_loss, **{k: v for k, v in result.metrics.items()}}
    seen = [h["num_tokens"] for h in trainer.state.log_history if "num_tokens" in h]   # TRL: tokens trained on
    if seen:
        metrics["num_tokens"] = seen[-1]
    metrics.update({f"data_{k}": v for k, v in stats.items() if k.startswith("skipped_")})   # rows left out, why
    if held:
        metrics.update(trainer.evaluate())
    info = {"job": "train", "config": resolved_config(cfg), "result_hash": result_hash(cfg),
            "code_version": code_version(), "phase": phase.kind, "phase_index": index,
            "steps": phase.steps, "data_stats": stats, "metrics": metrics,
            "phase_model": model_fingerprint(base_uri), "lineage": identity}
    export(trainer, cfg, tokenizer, labels, join(cfg.output, phase.export), info)
    upload_logs(out_dir, join(cfg.output, "logs", phase.export))
    del trainer, model
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    shutil.rmtree(out_dir, ignore_errors=True)
    return metrics


def _report_phase_done(index: int, metrics: dict) -> None:
    import ray.train

    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, callbacks.PHASE_FILE).write_text(json.dumps({"phase": index, "done": True}))
        ckpt = ray.train.Checkpoint.from_directory(tmp) if _rank() == 0 else None
        ray.train.report({k: v for k, v in metrics.items() if isinstance(v, (int, float, str))}, checkpoint=ckpt)


def run_phases(cfg: TrainJobConfig, on_ray: bool, identity: dict) -> dict:
    import torch

    if not cfg.use_gpu:
        torch.set_num_threads(cfg.cpus_per_worker)
    plan = phases(cfg)
    metrics: dict = {}
    ckpt = None
    if on_ray:
        import ray.train

        ckpt = ray.train.get_checkpoint()
    with (ckpt.as_directory() if ckpt else contextlib.nullcontext(None)) as restored:
        state = json.loads(Path(restored, callbacks.PHASE_FILE).read_text()) if restored else None
        for i, phase in enumerate(plan):
            if state and (i < state["phase"] or (i == state["phase"] and state["done"])):
                continue
            resume = (str(Path(restored, callbacks.HF_CHECKPOINT))
                      if state and i == state["phase"] and not state["done"] else None)
            base = cfg.model if i == 0 else join(cfg.output, plan[i - 1].export)
            offset = sum(p.steps for p in plan[:i])
            metrics = run_phase(cfg, i, phase, base, resume, on_ray, offset, identity)
            if on_ray:
                _report_phase_done(i, metrics)
    return metrics


def train_func(config: dict) -> None:
    """Ray Train worker entry: ``config = {"job": resolved TrainJobConfig, "identity": run identity,
    "identity_uri": where the run records it}``."""
    import ray.train

    if ray.train.get_context().get_world_rank() == 0 and config.get("identity_uri"):
        from mathray.jobs.training.job import record_identity

        record_identity(config["identity_uri"], config["identity"])
    run_phases(TrainJobConfig.model_validate(config["job"]), True, config.get("identity", {}))


def run_local(cfg: TrainJobConfig, identity: dict | None = None) -> dict:
    """The same phases and trainers in this process without Ray (benchmark baseline, debugging); HF
    checkpoints stay in a temporary directory."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    return run_phases(cfg, False, identity or {})
