"""The planner: parameter counts of the Qwen2.5 configs against the published ones, every recipe loads, is
runnable and fits the GPU type it is written for, and ``mathray plan`` prints it."""
from pathlib import Path

import pytest
import yaml

from mathray.config import load_config
from mathray.jobs.training.config import TrainJobConfig
from mathray.jobs.training.plan import GIB, build_meta_model, model_config_path, plan

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "rayjobs" / "configs" / "recipes" / "models"
# the per-stage train recipes (a top-level task:); other recipe folders (quickstart) hold other jobs' configs
RECIPES = sorted(p for p in (REPO / "rayjobs" / "configs" / "recipes").glob("*/*.yaml")
                 if "task" in (yaml.safe_load(p.read_text()) or {}))


@pytest.mark.parametrize("name,published", [("Qwen2.5-0.5B", 0.49e9), ("Qwen2.5-1.5B", 1.54e9),
                                            ("Qwen2.5-7B", 7.61e9)])
def test_parameter_counts_match_the_published_ones(name, published):
    model = build_meta_model(MODELS / f"{name}.json")
    params = sum(p.numel() for p in model.parameters())
    assert abs(params / published - 1) < 0.01
    assert all(p.device.type == "meta" for p in model.parameters())


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_recipes_are_runnable_and_fit_an_a100_40gb(recipe):
    cfg = load_config(TrainJobConfig, recipe)
    cfg.check_runnable()
    assert cfg.use_gpu and cfg.precision == "bf16-mixed" and cfg.gradient_checkpointing
    p = plan(cfg, model_config_path(cfg, recipe))
    assert p["fits"]["A100 40 GB (p4d.24xlarge)"]
    assert not p["fits"]["A10G 24 GB (g5.2xlarge)"]          # full fine-tuning of >= 1.5B: no single A10G
    assert 0 < p["gpu_hours"]["A100 40 GB (p4d.24xlarge)"] < 100


def test_plan_responds_to_sharding_and_checkpointing():
    cfg = load_config(TrainJobConfig, REPO / "rayjobs/configs/recipes/math-qwen2.5-7b/ssft.yaml")
    path = MODELS / "Qwen2.5-7B.json"
    sharded = plan(cfg, path)["bytes"]
    ddp = plan(cfg.model_copy(update={"sharding": "ddp"}), path)["bytes"]
    assert ddp["total"] > 80 * GIB > 40 * GIB > sharded["total"]   # 7B full fine-tuning needs sharding
    no_ckpt = plan(cfg.model_copy(update={"gradient_checkpointing": False}), path)["bytes"]
    assert no_ckpt["activations"] > 5 * sharded["activations"]


def test_cli_plan_prints_the_fit(capsys):
    from mathray.cli import main

    assert main(["plan", str(REPO / "rayjobs/configs/recipes/gsm8k-qwen2.5-1.5b/ssft.yaml")]) == 0
    out = capsys.readouterr().out
    assert "1.544B parameters" in out and "A100 40 GB (p4d.24xlarge): fits" in out and "GPU-hours" in out
