"""``runtime.startup.heavy_imports``: the collector paused in the block, what exists frozen after it, and the
collector left as the caller had it; and a training driver that never loads its workers' module."""
from __future__ import annotations

import gc
import os
import subprocess
import sys

import pytest

from mathray.runtime.startup import heavy_imports


def test_the_collector_is_paused_in_the_block_then_what_exists_is_frozen():
    gc.unfreeze()
    try:
        assert gc.isenabled()
        with heavy_imports():
            assert not gc.isenabled()
            made = [[i] for i in range(1000)]   # tracked objects created in the block
        assert gc.isenabled()
        assert gc.get_freeze_count() >= len(made)
    finally:
        gc.unfreeze()


def test_a_collector_the_caller_disabled_stays_disabled_even_when_the_block_raises():
    gc.disable()
    try:
        try:
            with heavy_imports():
                raise ImportError("no such module")
        except ImportError:
            pass
        assert not gc.isenabled() and gc.get_freeze_count() > 0
    finally:
        gc.enable()
        gc.unfreeze()


@pytest.mark.slow   # a fresh process importing Ray Train and torch: seconds
def test_a_training_driver_builds_its_trainer_without_the_workers_module(tmp_path):
    """The driver hands Ray Train ``job.train_func``, which imports ``worker`` (transformers) on the workers
    only: building the ``TorchTrainer`` in a fresh process leaves both out of it."""
    code = (
        "import sys\n"
        "from mathray.jobs.training.config import TrainJobConfig\n"
        "from mathray.jobs.training.job import build_trainer\n"
        f"cfg = TrainJobConfig(task='ssft', model='m', data={{'ssft': ['x']}}, output={str(tmp_path)!r})\n"
        "build_trainer(cfg, {'hash': '0' * 16})\n"
        "print(sorted(m for m in ('mathray.jobs.training.worker', 'transformers') if m in sys.modules))\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "RAY_ADDRESS": ""})
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip().splitlines()[-1] == "[]", run.stdout
