"""The pipeline's graph (pure: no Ray): every stage's inputs and outputs derived from one root, the whole
method present, dependencies in order; the shipped pipeline configs and recipes load and plan."""
from pathlib import Path

import pytest

from mathray.config import load_config
from mathray.pipeline import PipelineConfig, build_graph, stage_table, NodeState

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted([REPO / "rayjobs/configs/demo.yaml", *REPO.glob("rayjobs/configs/demo_*.yaml"),
                  *REPO.glob("rayjobs/configs/recipes/pipeline_*.yaml")])


def test_graph_is_the_whole_method_under_one_root():
    cfg = load_config(PipelineConfig, REPO / "rayjobs/configs/demo.yaml", ["root=s3://bucket/run7"])
    nodes = build_graph(cfg)
    names = [n.name for n in nodes]
    assert {"base_model", "problems_train", "problems_test", "ssft", "sample_train", "shepherd", "verifier_xent",
            "prm", "orm", "sequential", "control", "sample_test", "greedy_test", "sample_test_sequential",
            "greedy_test_control", "score_xent", "evaluate"} <= set(names)
    seen = set()
    for node in nodes:                                  # topological: every dependency comes first
        assert set(node.deps) <= seen, (node.name, node.deps)
        seen.add(node.name)
        assert node.output.startswith("s3://bucket/run7/")
    by = {n.name: n for n in nodes}
    assert by["ssft"].cfg.model == by["base_model"].output
    assert by["prm"].cfg.data.step_labels == [by["shepherd"].output]
    assert by["orm"].cfg.data.samples == by["verifier_xent"].cfg.data.samples == [by["sample_train"].output]
    assert by["sequential"].cfg.model == by["ssft"].output + "/final"
    assert by["control"].cfg.sequential.control and not by["sequential"].cfg.sequential.control
    assert by["greedy_test"].cfg.sampling.greedy and by["greedy_test"].cfg.sampling.n == 1
    scorer = by["score_xent"].cfg.scorer
    assert (scorer.verifier, scorer.prm, scorer.orm) == tuple(by[k].output + "/final" for k in ("verifier_xent", "prm", "orm"))
    assert set(by["evaluate"].cfg.generators) == {"Sequential", "Control"}


def test_two_verifier_losses_give_two_scores_and_reports():
    cfg = load_config(PipelineConfig, REPO / "rayjobs/configs/demo.yaml", ["verifier.losses=[xent,margin]"])
    by = {n.name: n for n in build_graph(cfg)}
    assert by["verifier_margin"].cfg.verifier.loss == "margin" and by["verifier_xent"].cfg.verifier.loss == "xent"
    assert by["evaluate"].output.endswith("/report") and by["evaluate_margin"].output.endswith("/report_margin")


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_pipeline_configs_load_and_build(path):
    nodes = build_graph(load_config(PipelineConfig, path))
    assert [n.name for n in nodes if n.kind == "evaluate"]


@pytest.mark.parametrize("path", [p for p in CONFIGS if "recipes" in p.parts], ids=lambda p: p.name)
def test_recipes_plan_every_training_stage(path, capsys):
    from mathray.cli import plan_recipe

    assert plan_recipe(str(path), []) == 0
    out = capsys.readouterr().out
    trains = [n for n in build_graph(load_config(PipelineConfig, path)) if n.kind == "train"]
    assert out.count("per-GPU memory") == len(trains) and "A100 40 GB (p4d.24xlarge): fits" in out


def test_stage_table_lines():
    lines = stage_table({"ssft": NodeState(state="done", detail="1200 steps"), "prm": NodeState()})
    assert lines[0].split()[1:] == ["stage", "state", "progress", "elapsed"]
    assert "1200 steps" in lines[1] and "waiting" in lines[2]
