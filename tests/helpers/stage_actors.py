"""The real shepherd and score actors, made observable for fault tests: each replica registers with the
named registry actor when one exists (so a test can ``ray.kill`` a live replica) and pauses after each batch
(so a run lasts long enough for a kill to land between commits). The pause comes from the registry, else from
``MATHRAY_TEST_PAUSE_S`` (``sampling_engines.pause_s``; drivers started as subprocesses set it in their
runtime_env)."""

import ray

from helpers.sampling_engines import REGISTRY, log_call, pause_after_call, pause_s
from mathray.jobs.labeling import ShepherdLabeler
from mathray.jobs.scoring import ScoreStageActor


class _Observable:
    def _observe_init(self, cfg: dict) -> None:
        self.output = cfg.get("output")
        try:
            self.registry = ray.get_actor(REGISTRY)
        except ValueError:
            self.registry = None
        if self.registry is not None:
            ray.get(self.registry.register.remote(ray.get_runtime_context().current_actor))
            self.pause = ray.get(self.registry.pause.remote())
        else:
            self.pause = pause_s(cfg, "0")

    def _observe_call(self) -> None:
        if self.registry is not None:
            ray.get(self.registry.called.remote())
        log_call(self.output)
        pause_after_call(self.output, self.pause)


class ObservableLabeler(ShepherdLabeler, _Observable):
    def __init__(self, cfg: dict, device: str):
        super().__init__(cfg, device)
        self._observe_init(cfg)

    def __call__(self, batch):
        out = super().__call__(batch)
        self._observe_call()
        return out


class ObservableScorer(ScoreStageActor, _Observable):
    def __init__(self, cfg: dict, device: str):
        super().__init__(cfg, device)
        self._observe_init(cfg)

    def __call__(self, batch):
        out = super().__call__(batch)
        self._observe_call()
        return out
