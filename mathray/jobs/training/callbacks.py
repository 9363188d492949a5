"""``TrainingArguments`` from a ``TrainJobConfig`` phase, and the callbacks the job adds to every trainer.

Ray Train V2 registers a reported checkpoint when its controller polls the worker (every
``controller_poll_s``; each worker's report queue holds one report, so the next ``ray.train.report`` waits
for that poll). A worker that dies within that window after reporting loses the checkpoint and the restore
starts from the one before. ``RayCheckpointCallback`` therefore reports once more at the first log after a
checkpoint (returning only once the checkpoint is registered), which bounds the window to ``log_every``
steps; no other step calls ``ray.train.report`` (each call costs a controller poll).
"""
from __future__ import annotations

import importlib
import json
import shutil
import tempfile
from pathlib import Path

from transformers import TrainerCallback

from mathray.jobs.training.config import TrainJobConfig
from mathray.jobs.training.progress import write_progress
from mathray.jobs.training.tasks import phases

PHASE_FILE = "mathray_phase.json"
HF_CHECKPOINT = "checkpoint"   # the subdirectory RayTrainReportCallback uses


def deepspeed_zero3(cfg: TrainJobConfig) -> dict:
    """ZeRO-3 with parameters, gradients and optimizer state partitioned; "auto" values are filled in by the
    Trainer from ``TrainingArguments``; 16-bit weights gathered on save (the export needs full weights)."""
    return {"zero_optimization": {"stage": 3, "overlap_comm": True, "contiguous_gradients": True,
                                  "stage3_gather_16bit_weights_on_model_save": True},
            "bf16": {"enabled": "auto"}, "train_micro_batch_size_per_gpu": "auto",
            "gradient_accumulation_steps": "auto", "gradient_clipping": "auto"}


def training_arguments(cfg: TrainJobConfig, steps: int, lr: float, out_dir: str, layer_cls: list[str],
                       args_cls=None, has_eval: bool = False, **extra):
    """The phase's ``TrainingArguments`` (or ``args_cls``, e.g. TRL's ``SFTConfig``)."""
    from transformers import TrainingArguments

    o, precision = cfg.optim, cfg.resolved_precision()
    kwargs = dict(
        output_dir=out_dir, max_steps=steps, learning_rate=lr, weight_decay=o.weight_decay,
        lr_scheduler_type=o.lr_scheduler, warmup_steps=o.warmup_steps or o.warmup_ratio,
        max_grad_norm=o.max_grad_norm, per_device_train_batch_size=o.batch_size,
        per_device_eval_batch_size=o.batch_size, gradient_accumulation_steps=o.grad_accum, optim=o.optimizer,
        adam_beta2=o.adam_beta2,
        bf16=precision in ("bf16-mixed", "bf16"), use_cpu=not cfg.use_gpu, seed=cfg.seed, data_seed=cfg.data.seed,
        logging_steps=cfg.log_every, save_strategy="steps", save_steps=cfg.checkpoint_every, save_total_limit=1,
        eval_strategy=("steps" if cfg.eval_every and has_eval else "no"), eval_steps=cfg.eval_every or None,
        report_to=[r for r in cfg.report_to if r != "none"] or "none", disable_tqdm=True,
        remove_unused_columns=False, ddp_find_unused_parameters=False, dataloader_num_workers=0,
        gradient_checkpointing=cfg.gradient_checkpointing and cfg.sharding != "fsdp",
        gradient_checkpointing_kwargs={"use_reentrant": False})
    if cfg.sharding == "fsdp":
        # FSDP2 FULL_SHARD: each decoder layer is a unit, embeddings/norm/head are the root unit; activation
        # checkpointing through FSDP (transformers prefers it over gradient_checkpointing under FSDP)
        kwargs.update(fsdp="full_shard", fsdp_config={
            "version": 2, "transformer_layer_cls_to_wrap": layer_cls, "reshard_after_forward": True,
            "activation_checkpointing": cfg.gradient_checkpointing, "state_dict_type": "SHARDED_STATE_DICT",
            "cpu_ram_efficient_loading": False})
    elif cfg.sharding == "deepspeed":
        kwargs["deepspeed"] = deepspeed_zero3(cfg)
    kwargs.update(extra)
    return (args_cls or TrainingArguments)(**kwargs)


def _ray_report_base():
    from ray.train.huggingface.transformers import RayTrainReportCallback

    return RayTrainReportCallback


class RayCheckpointCallback(_ray_report_base()):
    """Ray's ``RayTrainReportCallback`` (every HF checkpoint reported as ``checkpoint/``), plus
    ``mathray_phase.json`` saying which phase the checkpoint belongs to, and the confirming report."""

    def __init__(self, phase: int):
        super().__init__()
        self.phase, self.unconfirmed = phase, False

    def on_save(self, args, state, control, **kwargs):
        import ray.train
        from transformers.trainer_utils import get_last_checkpoint

        metrics = {k: v for log in state.log_history for k, v in log.items()}
        with tempfile.TemporaryDirectory() as tmp:
            source = get_last_checkpoint(args.output_dir)
            if source is not None:
                shutil.copytree(source, Path(tmp, self.CHECKPOINT_NAME))
            Path(tmp, PHASE_FILE).write_text(json.dumps({"phase": self.phase, "done": False,
                                                         "step": state.global_step}))
            ray.train.report({**metrics, "phase": self.phase}, checkpoint=ray.train.Checkpoint.from_directory(tmp))
        self.unconfirmed = True

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.unconfirmed:
            import ray.train

            ray.train.report({**(logs or {}), "phase": self.phase})   # returns once the checkpoint is registered
            self.unconfirmed = False


class ProgressCallback(TrainerCallback):
    """Rank 0 records the run's global step at every log (``training.progress``: the pipeline's stage table)."""

    def __init__(self, output: str, phase: str, offset: int, total: int):
        self.output, self.phase, self.offset, self.total = output, phase, offset, total

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero:
            write_progress(self.output, self.offset + state.global_step, self.total, self.phase)


def job_callbacks(cfg: TrainJobConfig, phase_index: int, phase_kind: str, offset: int, on_ray: bool) -> list:
    out: list = [RayCheckpointCallback(phase_index)] if on_ray else []
    out.append(ProgressCallback(cfg.output, phase_kind, offset, sum(p.steps for p in phases(cfg))))
    for spec in cfg.callbacks:
        module, _, name = spec.cls.partition(":")
        out.append(getattr(importlib.import_module(module), name)(phase=phase_kind, step_offset=offset, **spec.kwargs))
    return out
