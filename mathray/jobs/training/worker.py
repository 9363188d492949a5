"""What every Ray Train worker runs (``train_func``), and the same phases in one plain process (``run_local``).

A run is the list of phases its task declares (``tasks``: one for most, three for sequential, two for its
control), each a trainer run of its own. A phase loads its starting weights through
``runtime.models.fetch_model`` (the job's ``model`` for the first phase, the previous phase's export after
that), resolves the label tokens (``core.label_tokens``), builds its examples (its ``PhaseSpec``), trains with TRL's
``SFTTrainer`` or with ``trainers.ObjectiveTrainer`` on the spec's loss, evaluates on the held-out problems,
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
from pathlib import Path

from mathray.config import code_version, resolved_config, result_hash
from mathray.core.label_tokens import LabelTokens, resolve_labels, save_labels
from mathray.jobs.training import callbacks, data, trainers
from mathray.jobs.training.config import TrainJobConfig
from mathray.jobs.training.lineage import record_identity
from mathray.jobs.training.tasks import phases
from mathray.jobs.training.tasks.spec import Phase, PhaseSpec, load_rows
from mathray.runtime.models import fetch_model, model_fingerprint, publish_model
from mathray.runtime.storage import join, resolve


def build_examples(cfg: TrainJobConfig, spec: PhaseSpec, tokenizer, labels: LabelTokens) -> tuple[list, list, dict]:
    """(train examples, eval examples, stats) of a phase; eval = the held-out problems' examples."""
    rows = load_rows(getattr(cfg.data, spec.reads), cfg.verify_inputs)
    build = spec.examples(cfg, tokenizer, labels)
    train_rows, eval_rows = data.split_by_problem(rows, cfg.data.eval_fraction, cfg.data.seed)
    train, stats = build(train_rows)
    held, eval_stats = build(eval_rows) if eval_rows else ([], {})
    if spec.extend is not None:
        train, held, stats = spec.extend(cfg, tokenizer, train, held, stats)
    stats = {**stats, "examples": len(train), "eval_examples": len(held),
             **{f"eval_{k}": v for k, v in eval_stats.items()}}
    if not train:
        raise ValueError(f"phase {spec.name}: no training example (data stats: {stats})")
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

    base = fetch_model(base_uri)
    set_seed(cfg.seed)   # LoRA init and new label-token rows come from here
    tokenizer = AutoTokenizer.from_pretrained(base, trust_remote_code=False)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    weights = torch.bfloat16 if cfg.resolved_precision() == "bf16" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(base, dtype=weights, trust_remote_code=False)
    labels = resolve_labels(tokenizer, cfg.labels, model)
    train, held, stats = build_examples(cfg, phase.spec, tokenizer, labels)
    if cfg.lora is not None:
        from peft import get_peft_model

        model = get_peft_model(model, _lora(cfg))
    layer_cls = list(getattr(model, "_no_split_modules", None) or [])
    out_dir = tempfile.mkdtemp(prefix=f"mathray-train-{index}-")
    cbs = callbacks.job_callbacks(cfg, index, phase.kind, offset, on_ray)
    common = dict(steps=phase.steps, lr=phase.lr, out_dir=out_dir, layer_cls=layer_cls, has_eval=bool(held))
    if phase.spec.loss is None:
        from trl import SFTConfig

        args = callbacks.training_arguments(cfg, args_cls=SFTConfig, max_length=None, packing=False,
                                            completion_only_loss=True, **common)
        trainer = trainers.sft_trainer(model, args, train, held, tokenizer, cbs)
    else:
        args = callbacks.training_arguments(cfg, **common)
        settings = getattr(cfg, phase.spec.settings).model_dump() if phase.spec.settings else {}
        trainer = trainers.ObjectiveTrainer(
            model=model, args=args, train_dataset=train, eval_dataset=held or None, data_collator=trainers.collate,
            compute_metrics=trainers.eval_metrics, callbacks=cbs, phase=phase.spec,
            label_ids=getattr(labels, phase.spec.label_tokens), pad_id=tokenizer.pad_token_id, settings=settings)
    if on_ray:
        from ray.train.huggingface.transformers import prepare_trainer

        trainer = prepare_trainer(trainer)
    result = trainer.train(resume_from_checkpoint=resume)
    metrics = _phase_metrics(trainer, result, phase, offset, stats, evaluate=bool(held))
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


def _phase_metrics(trainer, result, phase: Phase, offset: int, stats: dict, evaluate: bool) -> dict:
    """The finished phase's metrics: steps, last and mean loss, tokens trained on (TRL), rows the data left out
    and why, and the held-out evaluation when there is held-out data."""
    history = trainer.state.log_history
    metrics = {"phase": phase.kind, "step": trainer.state.global_step, "global_step": offset + phase.steps,
               "loss": next((h["loss"] for h in reversed(history) if "loss" in h), None),
               "train_loss": result.training_loss, **{k: v for k, v in result.metrics.items()}}
    seen = [h["num_tokens"] for h in history if "num_tokens" in h]
    if seen:
        metrics["num_tokens"] = seen[-1]
    metrics.update({f"data_{k}": v for k, v in stats.items() if k.startswith("skipped_")})
    if evaluate:
        metrics.update(trainer.evaluate())
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
        record_identity(config["identity_uri"], config["identity"])
    run_phases(TrainJobConfig.model_validate(config["job"]), True, config.get("identity", {}))


def run_local(cfg: TrainJobConfig, identity: dict | None = None) -> dict:
    """The same phases and trainers in this process without Ray (benchmark baseline, debugging); HF
    checkpoints stay in a temporary directory."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    return run_phases(cfg, False, identity or {})
