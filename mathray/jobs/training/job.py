"""The driver: ``TorchTrainer`` over ``train_func`` (``worker.train_func``, imported on the workers only) with
the run's storage, failure and checkpoint policy.

Run identity: the run's lineage (``lineage.run_identity``): the result-affecting config (knobs left
out) plus the fingerprints of the inputs (each data set's committed shards, the starting model's
``model_fingerprint``). The default run name is ``train-<task>-<identity hash>``, so re-running the same
identity resumes from its latest checkpoint and a changed identity starts a new run; an explicit ``name`` whose
stored identity differs is refused with the differing keys named (resuming someone else's checkpoints would
silently mix two trainings).

    result = run_training(load_config(TrainJobConfig, "rayjobs/configs/train_ssft.yaml"))
"""
from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from mathray.config import code_version, resolved_config
from mathray.jobs.training.config import TrainJobConfig
from mathray.jobs.training.lineage import claim_run, run_identity, run_name
from mathray.runtime import env, retries
from mathray.runtime.lease import OutputLease
from mathray.runtime.models import check_model
from mathray.runtime.startup import heavy_imports
from mathray.runtime.storage import ShardStore, absolute, exists, join, resolve

IDENTITY_FILE = "mathray_run.json"
log = logging.getLogger(__name__)
OUTAGE_RESTARTS = 10


@dataclass
class TrainResult:
    final_model: str           # URI of the exported model
    checkpoint: str | None     # the latest Ray Train checkpoint's path
    metrics: dict
    run_name: str

    def lines(self) -> list[str]:
        return [f"[train] run {self.run_name}: final model {self.final_model}",
                f"[train] last metrics: {self.metrics}"]


def identity_uri(cfg: TrainJobConfig, name: str) -> str:
    return join(storage_uri(cfg), name, IDENTITY_FILE)


def train_func(config: dict) -> None:
    """What each Ray Train worker runs: ``worker.train_func``, whose module (transformers, peft) is imported
    here, on the worker, with the garbage collector paused (``runtime.startup``); the driver never loads it."""
    with heavy_imports():
        from mathray.jobs.training import worker   # transformers, peft: on the workers only
    worker.train_func(config)


def build_trainer(cfg: TrainJobConfig, identity: dict):
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    # S3 and other remote stores: an explicit pyarrow filesystem (pyarrow ignores AWS_ENDPOINT_URL_S3) and
    # the prefix-stripped path.
    fs, path = resolve(storage_uri(cfg))
    return TorchTrainer(
        train_func,
        train_loop_config={"job": resolved_config(cfg), "identity": identity,
                           "identity_uri": identity_uri(cfg, run_name(cfg, identity))},
        scaling_config=ScalingConfig(num_workers=cfg.num_workers, use_gpu=cfg.use_gpu,
                                     resources_per_worker={"CPU": cfg.cpus_per_worker}),
        run_config=RunConfig(
            name=run_name(cfg, identity), storage_path=path, storage_filesystem=fs,
            failure_config=FailureConfig(max_failures=cfg.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=cfg.keep_checkpoints),
            worker_runtime_env={"env_vars": worker_env()}),
    )


# Ray Train replaces print() in its workers with one that logs the line and, where stdout is redirected (as
# in every Ray worker), also prints it: each line the Trainer prints would reach the console twice, and output
# a library captures (dill disassembling a function while datasets fingerprints it) would leak out. Workers
# keep the plain print unless the user set the variable.
PRINT_PATCH_VAR = "RAY_TRAIN_ENABLE_PRINT_PATCH"


def worker_env() -> dict[str, str]:
    """The environment of the training workers: storage endpoint/region/cache, and the plain print."""
    return {**env.storage_env(), PRINT_PATCH_VAR: os.environ.get(PRINT_PATCH_VAR, "0")}


def storage_uri(cfg: TrainJobConfig) -> str:
    return cfg.storage or join(cfg.output, "ray_train")


def absolute_paths(cfg: TrainJobConfig) -> TrainJobConfig:
    """Ray Train workers do not run in the driver's cwd: pin relative local paths to it."""
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


def _fit(cfg: TrainJobConfig, identity: dict):
    """``fit()``, with a run that Ray Train gave up because its storage was unreachable raised as a
    ``ConnectionError`` (retried by the caller: a new fit resumes from the latest checkpoint). Ray Train's
    controller writes to the storage without retrying beyond the AWS SDK's own few attempts, and treats such
    a failure as fatal: when it starts (the run's directory and a marker file) and after each checkpoint (its
    snapshot of the checkpoints kept), so an S3 outage at one of those moments would fail the whole run."""
    from ray.exceptions import ActorDiedError
    from ray.train import ControllerError

    try:
        return build_trainer(cfg, identity).fit()
    except ActorDiedError as e:
        if "TrainController.__init__" in str(e) and retries.is_transient(OSError(str(e))):
            raise ConnectionError(f"Ray Train's controller could not reach the run's storage: {e}") from e
        raise
    except ControllerError as e:
        if retries.is_transient(e.controller_failure):
            raise ConnectionError(f"Ray Train's controller could not reach the run's storage: {e}") from e
        raise


def _fit_through_outages(cfg: TrainJobConfig, identity: dict, name: str):
    """``_fit``, started again (resuming from the latest checkpoint) after a storage outage ended it, once the
    storage answers (``exists`` waits up to the retry window, ``runtime.retries``); at most
    ``OUTAGE_RESTARTS`` times, so a failure that only looks transient cannot loop for ever."""
    uri = storage_uri(cfg)
    for restart in range(OUTAGE_RESTARTS + 1):
        try:
            return _fit(cfg, identity)
        except ConnectionError as e:
            if restart == OUTAGE_RESTARTS:
                raise
            log.warning("Ray Train run %s stopped, its storage unreachable; resuming once it answers: %s",
                        name, str(e)[:300])
            exists(uri)


def run_training(cfg: TrainJobConfig) -> TrainResult:
    """Train (or resume) the run of ``cfg``'s identity, holding the output's writer lease throughout."""
    cfg.check_runnable()

    cfg = absolute_paths(cfg)
    check_model(cfg.model)          # in the driver: a model that cannot load fails here, not in every worker
    identity = run_identity(cfg)
    name = run_name(cfg, identity)
    with OutputLease(cfg.output, "train"):
        claim_run(identity_uri(cfg, name), name, identity)
        ShardStore(cfg.output).write_run_info(resolved_config(cfg), identity["hash"], code_version(), job="train",
                                              lineage=identity)
        with _controller_poll_interval(cfg.controller_poll_s):
            result = _fit_through_outages(cfg, identity, name)
    return TrainResult(final_model=join(cfg.output, "final"),
                       checkpoint=result.checkpoint.path if result.checkpoint else None,
                       metrics=dict(result.metrics or {}), run_name=name)
