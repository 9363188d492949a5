"""The pipeline's graph (pure: no Ray): every stage's inputs and outputs derived from one root, the whole
method present, dependencies in order; the shipped pipeline configs and recipes load and plan."""
from pathlib import Path
from types import SimpleNamespace

import pytest

from mathray.config import load_config
from mathray.pipeline import PipelineConfig, build_graph, stage_table, NodeState

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted([REPO / "rayjobs/configs/demo.yaml", *REPO.glob("rayjobs/configs/demo_*.yaml"),
                  *REPO.glob("rayjobs/configs/recipes/pipeline_*.yaml")])


def test_graph_is_the_whole_method_under_one_root():
    cfg = load_config(PipelineConfig, REPO / "rayjobs/configs/demo.yaml",
                      ["root=s3://bucket/run7", "sequential.enabled=true"])
    nodes = build_graph(cfg)
    names = [n.name for n in nodes]
    assert {"base_model", "problems_train", "problems_test", "ssft", "sample_train", "shepherd", "verifier_xent",
            "prm", "orm", "sequential", "control", "sample_test", "sample_test_sequential", "sample_test_control",
            "score_xent", "evaluate"} <= set(names)
    assert not [n for n in names if "greedy" in n]      # each generator's greedy decodes come with its samples
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
    for name in ("sample_test", "sample_test_sequential", "sample_test_control"):
        assert by[name].cfg.sampling.greedy_pass and not by[name].cfg.sampling.greedy
    assert not by["sample_train"].cfg.sampling.greedy_pass
    assert by["evaluate"].cfg.greedy_samples is None and by["evaluate"].cfg.samples == by["sample_test"].output
    assert {g.samples for g in by["evaluate"].cfg.generators.values()} == {
        by["sample_test_sequential"].output, by["sample_test_control"].output}
    scorer = by["score_xent"].cfg.scorer
    assert (scorer.verifier, scorer.prm, scorer.orm) == tuple(by[k].output + "/final" for k in ("verifier_xent", "prm", "orm"))
    assert set(by["evaluate"].cfg.generators) == {"Sequential", "Control"}
    exact = by["exact_labels_test"].cfg                 # the toy task's true first errors of the SSFT test samples
    assert (exact.input, exact.problems) == (by["sample_test"].output, by["problems_test"].output)
    assert by["evaluate"].cfg.step_labels == by["exact_labels_test"].output


def test_two_verifier_losses_give_two_scores_and_reports():
    cfg = load_config(PipelineConfig, REPO / "rayjobs/configs/demo.yaml", ["verifier.losses=[xent,margin]"])
    by = {n.name: n for n in build_graph(cfg)}
    assert by["verifier_margin"].cfg.verifier.loss == "margin" and by["verifier_xent"].cfg.verifier.loss == "xent"
    assert by["evaluate"].output.endswith("/report") and by["evaluate_margin"].output.endswith("/report_margin")


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_pipeline_configs_load_and_build(path):
    """Each shipped config builds a graph in dependency order whose stages write distinct places under its
    root (two stages on one output would resume from, or overwrite, each other's shards) and ends in a report."""
    cfg = load_config(PipelineConfig, path)
    nodes = build_graph(cfg)
    root = cfg.root if "://" in cfg.root else str(Path(cfg.root).resolve())
    names, outputs = [n.name for n in nodes], [n.output for n in nodes]
    assert len(set(names)) == len(names) and len(set(outputs)) == len(outputs), outputs
    seen = set()
    for node in nodes:
        assert set(node.deps) <= seen, (node.name, node.deps)
        assert node.output.startswith(root.rstrip("/") + "/"), (node.name, node.output)
        seen.add(node.name)
    assert "evaluate" in names and {n.kind for n in nodes} >= {"ingest", "train", "sample", "score", "evaluate"}


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


class _StandInStages:
    """Stands in for the stage jobs (lineage checks and ``run_node``) so that a test exercises the scheduler
    alone: which nodes run, in what order, how many at a time, and what a failure does. Nodes in ``done_before``
    have complete outputs; the node named ``fails`` raises."""

    def __init__(self, monkeypatch, done_before=(), fails=None, seconds=0.0):
        import threading

        from mathray import pipeline

        self.done_before, self.fails, self.seconds = set(done_before), fails, seconds
        self.lock, self.running, self.peak = threading.Lock(), [], 0
        self.calls, self.spans = [], {}      # node names in call order; name -> (start, end)
        monkeypatch.setattr(pipeline, "node_lineage", lambda node: SimpleNamespace(hash=f"h-{node.name}"))
        monkeypatch.setattr(pipeline, "output_lineage",
                            lambda node: f"h-{node.name}" if node.name in self.done_before else None)
        monkeypatch.setattr(pipeline, "stale_output", lambda node, lineage: False)
        monkeypatch.setattr(pipeline, "run_node", self.run_node)

    def run_node(self, node, overwrite):
        import time

        with self.lock:
            self.calls.append(node.name)
            self.running.append(node)
            self.peak = max(self.peak, len(self.running))
            data = [n.name for n in self.running if n.kind in ("sample", "shepherd", "score")]
            assert len(data) <= 1, f"data stages side by side: {data}"
        start = time.time()
        time.sleep(self.seconds)
        with self.lock:
            self.running.remove(node)
            self.spans[node.name] = (start, time.time())
        if node.name == self.fails:
            raise RuntimeError(f"{node.name} broke")
        return None, "ran"


def _downstream(nodes, name):
    """``name`` and every node that depends on it, directly or not."""
    out = {name}
    for node in nodes:   # topological order: a node's dependencies come first
        if out & set(node.deps):
            out.add(node.name)
    return out


def test_scheduler_one_at_a_time_runs_in_graph_order_and_a_failure_blocks_only_its_dependents(tmp_path, monkeypatch):
    from mathray.pipeline import PipelineFailed, run_pipeline

    cfg = load_config(PipelineConfig, REPO / "rayjobs/configs/demo.yaml",
                      [f"root={tmp_path / 'run'}", "max_parallel=1", "progress_every_s=600", "sequential.enabled=true"])
    nodes = build_graph(cfg)
    stages = _StandInStages(monkeypatch, done_before={"base_model", "problems_train"}, fails="prm")
    blocked = _downstream(nodes, "prm") - {"prm"}
    assert blocked and "sample_test_sequential" not in blocked
    lines = []
    with pytest.raises(PipelineFailed, match=r"^stages failed: prm; first error: RuntimeError: prm broke$"):
        run_pipeline(cfg, echo=lines.append)
    assert stages.calls == [n.name for n in nodes if n.name not in {"base_model", "problems_train"} | blocked]
    assert "[pipeline] base_model: skipped (complete with lineage h-base_model)" in lines
    assert "[pipeline] prm: FAILED: RuntimeError: prm broke" in lines
    table = {line.split()[1]: line.split()[2] for line in lines[-1].splitlines()[1:]}   # the last stage table
    assert table == {n.name: "skipped" if n.name in ("base_model", "problems_train") else "failed" if n.name == "prm"
                     else "blocked" if n.name in blocked else "done" for n in nodes}

    stages.calls.clear()
    stages.done_before, stages.fails = set(), None
    summary = run_pipeline(cfg, echo=lines.append, only=["sample_train"])
    assert stages.calls == list(summary.states) == ["base_model", "problems_train", "problems_label", "ssft",
                                                    "sample_train"]
    with pytest.raises(PipelineFailed, match="unknown stage 'nope'"):
        run_pipeline(cfg, echo=lines.append, only=["nope"])


def test_scheduler_runs_independent_stages_side_by_side_after_their_inputs(tmp_path, monkeypatch):
    from mathray.pipeline import run_pipeline

    cfg = load_config(PipelineConfig, REPO / "rayjobs/configs/demo.yaml",
                      [f"root={tmp_path / 'run'}", "max_parallel=3", "progress_every_s=600"])
    stages = _StandInStages(monkeypatch, seconds=0.2)
    summary = run_pipeline(cfg, echo=lambda line: None)
    nodes = build_graph(cfg)
    assert sorted(stages.calls) == sorted(n.name for n in nodes)
    assert {s.state for s in summary.states.values()} == {"done"}
    assert 2 <= stages.peak <= 3
    for node in nodes:
        assert all(stages.spans[d][1] <= stages.spans[node.name][0] for d in node.deps), node.name
