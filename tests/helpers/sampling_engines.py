"""Test helpers for the sampling fault tests: a named registry actor that engine replicas report to, so a
test can ``ray.kill`` a live engine actor (Ray Data's pool actors are unnamed, and ``list_actors`` gives
ids, not the handles ``ray.kill`` needs), and a local log of each stage's engine calls (``log_call``), beside
which a chaos test releases a stage from its pauses (``release``)."""
import hashlib
import json
import os
import time
from pathlib import Path

import ray

from mathray.jobs.sampling import SampleEngine

REGISTRY = "mathray-test-engine-registry"


@ray.remote(num_cpus=0)
class EngineRegistry:
    def __init__(self, pause_s: float = 0.3):
        self.handles, self.calls, self.pause_s = [], 0, pause_s

    def pause(self):
        return self.pause_s

    def register(self, handle):
        self.handles.append(handle)

    def called(self):
        self.calls += 1

    def state(self):
        return {"registered": len(self.handles), "calls": self.calls}

    def latest(self):
        return self.handles[-1]


def pause_s(cfg: dict, default: str) -> float:
    """Seconds a stage's actor pauses after each batch: ``MATHRAY_TEST_PAUSE_S``, a number for every stage or a
    JSON object {stage output: seconds} (a stage it does not name does not pause)."""
    value = os.environ.get("MATHRAY_TEST_PAUSE_S", default)
    if value.lstrip().startswith("{"):
        return float(json.loads(value).get(cfg.get("output"), 0))
    return float(value)


def calls_file(output: str, root: str | None = None) -> str | None:
    """The local file where a stage's actors log each finished batch (one line: its unix time), under ``root``
    (default ``MATHRAY_TEST_CALLS_DIR``); None when neither is set. A chaos test counts a stage's engine calls
    there, on the machine's disk, so it sees them while the S3 server is down."""
    root = root or os.environ.get("MATHRAY_TEST_CALLS_DIR")
    return os.path.join(root, hashlib.sha256(output.encode()).hexdigest()[:16] + ".calls") if root else None


def log_call(output: str) -> None:
    if path := calls_file(output):
        with open(path, "a") as f:
            f.write(f"{time.time()}\n")


def worker_env(**defaults: str) -> dict:
    """The env_vars a test's driver gives its Ray workers (the raylet's environment is not the driver's): the
    tests' import path, and the pause and call-log directory the driver was started with (``defaults`` where
    it was not)."""
    tests = Path(__file__).resolve().parents[1]
    forwarded = {k: os.environ.get(k, defaults.get(k)) for k in ("MATHRAY_TEST_PAUSE_S", "MATHRAY_TEST_CALLS_DIR")}
    return {"PYTHONPATH": f"{tests.parent}:{tests}", **{k: v for k, v in forwarded.items() if v is not None}}


def release(output: str, root: str) -> None:
    """Stop the pauses of the stage writing ``output``: a chaos test paces a stage only until its faults landed."""
    open(calls_file(output, root) + ".released", "a").close()


def pause_after_call(output: str, seconds: float) -> None:
    """Sleep ``seconds`` after an actor's call, unless a test has released the stage writing ``output``."""
    path = calls_file(output)
    if not (path and os.path.exists(path + ".released")):
        time.sleep(seconds)


class PausingEngine(SampleEngine):
    """The real engine, pausing after each batch so a test can kill the driver between shard commits."""

    def __init__(self, cfg: dict, device: str):
        super().__init__(cfg, device)
        self.output, self.pause = cfg.get("output"), pause_s(cfg, "1.5")

    def __call__(self, batch):
        out = super().__call__(batch)
        log_call(self.output)
        pause_after_call(self.output, self.pause)
        return out


GATE = "mathray-test-replica-gate"


@ray.remote(num_cpus=0)
class ReplicaGate:
    """Counts engine replicas as they start; opens once ``min_replicas`` have."""

    def __init__(self, min_replicas: int):
        self.min_replicas, self.replicas = min_replicas, []

    def register(self, actor_id: str):
        self.replicas.append(actor_id)

    def is_open(self) -> bool:
        return len(self.replicas) >= self.min_replicas

    def count(self) -> int:
        return len(self.replicas)


class GatedEngine(SampleEngine):
    """The real engine; it registers with the ``ReplicaGate``, waits before every batch until the gate is open
    (enough replicas started: the stage cannot finish on one replica before the pool has grown, however slow
    the machine), then pauses after each batch like ``PausingEngine`` so the run lasts a while."""

    def __init__(self, cfg: dict, device: str):
        super().__init__(cfg, device)
        self.pause = pause_s(cfg, "1.5")
        self.gate = ray.get_actor(GATE)
        ray.get(self.gate.register.remote(ray.get_runtime_context().get_actor_id()))

    def __call__(self, batch):
        while not ray.get(self.gate.is_open.remote()):
            time.sleep(0.2)
        out = super().__call__(batch)
        time.sleep(self.pause)
        return out
