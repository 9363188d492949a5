"""The train configs load, and a config missing its model or data says what is missing."""
from pathlib import Path

import pytest

from mathray.config import load_config
from mathray.training.config import TrainJobConfig

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
