"""Trainer callbacks the training tests add through ``TrainJobConfig.callbacks`` (importable on Ray Train workers:
the test cluster puts ``tests/`` on their path)."""
from __future__ import annotations

import json
import os
import time

from transformers import TrainerCallback


class StepLog(TrainerCallback):
    """One JSON line per logged training step on rank 0, appended to ``path`` (a local file)."""

    def __init__(self, path: str, phase: str, step_offset: int):
        self.path, self.phase, self.offset = path, phase, step_offset

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs and "loss" in logs:
            line = {"phase": self.phase, "step": state.global_step, "global_step": self.offset + state.global_step,
                    "loss": logs["loss"], "pid": os.getpid(), "time": time.time()}
            with open(self.path, "a") as f:
                f.write(json.dumps(line) + "\n")


class PauseEachStep(TrainerCallback):
    """Every rank sleeps ``seconds`` after each optimizer step, so a run lasts long enough for a test to act
    between its checkpoints."""

    def __init__(self, seconds: float, phase: str, step_offset: int):
        self.seconds = seconds

    def on_step_end(self, args, state, control, **kwargs):
        time.sleep(self.seconds)


def step_log(path) -> dict:
    return {"cls": "helpers.train_callbacks:StepLog", "kwargs": {"path": str(path)}}


def pause_each_step(seconds: float) -> dict:
    return {"cls": "helpers.train_callbacks:PauseEachStep", "kwargs": {"seconds": seconds}}
