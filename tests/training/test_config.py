"""The train configs load, and a config missing its model or data says what is missing."""
import os
from pathlib import Path

import pytest

from mathray.config import load_config
from mathray.jobs.training.config import TrainJobConfig

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "rayjobs" / "configs").glob("train_*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_load_and_are_runnable(path):
    cfg = load_config(TrainJobConfig, path)
    assert path.stem == f"train_{cfg.task}"
    cfg.check_runnable()


def test_missing_inputs_are_named():
    with pytest.raises(ValueError, match="model"):
        TrainJobConfig().check_runnable()
    with pytest.raises(ValueError, match="data.samples"):
        TrainJobConfig(task="sequential", model="m", data={"ssft": ["x"]}).check_runnable()
    TrainJobConfig(task="sequential", model="m", data={"ssft": ["x"]}, sequential={"control": True}).check_runnable()


def test_controller_poll_interval_set_for_the_fit_only_and_user_value_wins(monkeypatch):
    from mathray.jobs.training.job import _controller_poll_interval

    key = "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"
    monkeypatch.delenv(key, raising=False)
    with _controller_poll_interval(0.5):
        assert os.environ[key] == "0.5"
    assert key not in os.environ
    monkeypatch.setenv(key, "3")
    with _controller_poll_interval(0.5):
        assert os.environ[key] == "3"
    assert os.environ[key] == "3"
