"""Test helpers for the sampling fault tests: a named registry actor that engine replicas report to, so a
test can ``ray.kill`` a live engine actor (Ray Data's pool actors are unnamed, and ``list_actors`` gives
ids, not the handles ``ray.kill`` needs)."""
import os
import time

import ray

from mathray.jobs.sampling import SampleEngine

REGISTRY = "mathray-test-engine-registry"


@ray.remote(num_cpus=0)
class EngineRegistry:
    def __init__(self):
        self.handles, self.calls = [], 0

    def register(self, handle):
        self.handles.append(handle)

    def called(self):
        self.calls += 1

    def state(self):
        return {"registered": len(self.handles), "calls": self.calls}

    def latest(self):
        return self.handles[-1]


class RegisteringEngine(SampleEngine):
    """The real engine; it also reports its handle and each finished batch to the registry, and pauses
    briefly after each batch so a test can act while the run is still going."""

    def __init__(self, cfg: dict, device: str):
        super().__init__(cfg, device)
        self.registry = ray.get_actor(REGISTRY)
        ray.get(self.registry.register.remote(ray.get_runtime_context().current_actor))

    def __call__(self, batch):
        out = super().__call__(batch)
        ray.get(self.registry.called.remote())
        time.sleep(0.3)
        return out


class PausingEngine(SampleEngine):
    """The real engine, pausing after each batch so a test can kill the driver between shard commits."""

    def __call__(self, batch):
        out = super().__call__(batch)
        time.sleep(float(os.environ.get("MATHRAY_TEST_PAUSE_S", "1.5")))
        return out
