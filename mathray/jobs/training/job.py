"""The driver: ``TorchTrainer`` over ``loop.train_func`` with the run's storage, failure and checkpoint
policy. Re-running the same config (same run ``name``) resumes from its latest checkpoint.

    result = run_training(load_config(TrainJobConfig, "rayjobs/configs/train_ssft.yaml"))
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from mathray.runtime import env
from mathray.config import code_version, config_hash, resolved_config
from mathray.runtime.storage import ShardStore, join, resolve
from mathray.jobs.training.config import TrainJobConfig


@dataclass
class TrainResult:
    final_model: str           # URI of the exported HF model directory
    checkpoint: str | None     # the latest Ray Train checkpoint's path
    metrics: dict
    run_name: str


def run_name(cfg: TrainJobConfig) -> str:
    return cfg.name or f"train-{cfg.task}-{config_hash(cfg)}"


def build_trainer(cfg: TrainJobConfig, lineage: dict | None = None):
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from mathray.jobs.training.loop import train_func

    # S3 and other remote stores: an explicit pyarrow filesystem (pyarrow ignores AWS_ENDPOINT_URL_S3) and
    # the prefix-stripped path (SYSTEMS.md section 3).
    fs, path = resolve(cfg.storage or join(cfg.output, "ray_train"))
    return TorchTrainer(
        train_func,
        train_loop_config={"job": resolved_config(cfg), "lineage": lineage},
        scaling_config=ScalingConfig(num_workers=cfg.num_workers, use_gpu=cfg.use_gpu,
                                     resources_per_worker={"CPU": cfg.cpus_per_worker}),
        run_config=RunConfig(
            name=run_name(cfg), storage_path=path, storage_filesystem=fs,
            failure_config=FailureConfig(max_failures=cfg.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=cfg.keep_checkpoints),
            worker_runtime_env={"env_vars": env.storage_env()}),
    )


def _absolute_paths(cfg: TrainJobConfig) -> TrainJobConfig:
    """Ray Train workers do not run in the driver's cwd: pin relative local paths to it."""
    from mathray.runtime.storage import absolute

    data = cfg.data.model_copy(update={k: [absolute(u) for u in getattr(cfg.data, k)]
                                       for k in ("ssft", "samples", "step_labels")})
    update = {"output": absolute(cfg.output), "data": data}
    if cfg.model and Path(cfg.model).exists():
        update["model"] = absolute(cfg.model)
    if cfg.storage:
        update["storage"] = absolute(cfg.storage)
    return cfg.model_copy(update=update)


@contextlib.contextmanager
def _controller_poll_interval(seconds: float):
    """The controller reads its poll interval from the driver's environment when ``fit`` starts it (Ray
    passes this variable on); set for this fit only, unless the user set it."""
    key = "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"
    if key in os.environ:
        yield
        return
    os.environ[key] = str(seconds)
    try:
        yield
    finally:
        os.environ.pop(key, None)


def run_training(cfg: TrainJobConfig) -> TrainResult:
    cfg.check_runnable()
    cfg = _absolute_paths(cfg)
    from mathray.jobs.training.lineage import training_lineage
    from mathray.runtime.models import check_model

    check_model(cfg.model)
    lineage = training_lineage(cfg).record()
    ShardStore(cfg.output).write_run_info(resolved_config(cfg), config_hash(cfg), code_version(), job="train",
                                          lineage=lineage)
    with _controller_poll_interval(cfg.controller_poll_s):
        result = build_trainer(cfg, lineage).fit()
    return TrainResult(final_model=join(cfg.output, "final"),
                       checkpoint=result.checkpoint.path if result.checkpoint else None,
                       metrics=dict(result.metrics or {}), run_name=run_name(cfg))
