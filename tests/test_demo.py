"""The embedded demo (rayjobs/configs/demo.yaml) reduced to seconds per stage, through every stage of the
pipeline (SSFT, sampling, Math-Shepherd labels, verifier, PRM, ORM, sequential + control, test sampling of
every generator, scoring, evaluation) on the session's local Ray cluster. Asserts the report's STRUCTURE:
every selector row, the evaluator table, every finding row with its paired interval and verdict; never its
numbers (a model trained for a few steps shows nothing)."""
import json

import pytest

from conftest import REPO

pytestmark = pytest.mark.slow

REDUCED = ["data.train.toy.num_train=200", "data.test.toy.num_test=6", "data.label.toy.num_train=8",
           "ssft.optim.steps=20", "ssft.checkpoint_every=20", "sample_train.sampling.n=4",
           "sample_train.sampling.max_tokens=48", "shepherd.labeling.k=2", "shepherd.labeling.max_tokens=48",
           "verifier.train.optim.steps=4", "prm.optim.steps=4", "orm.optim.steps=4",
           "sequential.train.sequential.stage_steps=[0,2,2]", "sample_test.sampling.n=4",
           "sample_test.sampling.max_tokens=48", "evaluate.trials=2", "evaluate.bootstrap_resamples=20",
           "progress_every_s=120"]


def test_reduced_demo_report_structure(ray_cluster, tmp_path):
    from mathray.config import load_config
    from mathray.core import selectors
    from mathray.jobs.report import SOURCE_ORDER
    from mathray.pipeline import PipelineConfig, build_graph, run_pipeline

    cfg = load_config(PipelineConfig, REPO / "rayjobs/configs/demo.yaml", [f"root={tmp_path / 'run'}", *REDUCED])
    stages = {n.name for n in build_graph(cfg)}
    assert {"ssft", "sample_train", "shepherd", "verifier_xent", "prm", "orm", "sequential", "control",
            "sample_test", "greedy_test", "sample_test_sequential", "sample_test_control", "score_xent",
            "evaluate"} <= stages
    summary = run_pipeline(cfg, echo=lambda s: None)
    assert {s.state for s in summary.states.values()} == {"done"}, summary.states

    report_dir = tmp_path / "run" / "report"
    rep = json.loads((report_dir / "report.json").read_text())
    k = cfg.evaluate.k
    rows = {r["selector"] for r in rep["table"]}
    expected = {"Pass@1 (greedy)", *selectors.build_selectors(k, cfg.evaluate.top_n, "min", True, True, True)}
    expected |= {f"{g}: {r}" for g in ("Sequential", "Control")
                 for r in ("Pass@1 (greedy)", "Pass@1 (sample avg)", "Maj1@N", "Pass@N (oracle)")}
    assert expected <= rows, expected - rows

    evaluators = {r["evaluator"]: r for r in rep["evaluators"]}
    assert set(evaluators) == {"Verifier (S_cls)", "ORM", "PRM (min)", "PRM (product)", "PRM (last)",
                               "Generator mean log-prob (baseline)"}
    for r in evaluators.values():
        assert {"auroc", "auroc_ci_low", "auroc_ci_high", "within_auroc", "within_ci_low", "within_ci_high",
                "mixed_problems"} <= set(r)

    claims = {r["claim"] for r in rep["findings"] if r["n"] is None}
    assert {f"RR.Top-{k} > Pass@1 (sample avg)", "Maj1@N > Pass@1 (sample avg)", f"RR.Top-{k} >= Maj1@N",
            "W.RR >= Maj1@N", f"gap closure (RR.Top-{k} - Pass@1) / (Pass@N - Pass@1)",
            "Sequential: Pass@1 (sample avg) > Pass@1 (sample avg)",
            "Sequential: Pass@1 (sample avg) > Control: Pass@1 (sample avg)", "PRM BoN (product) > ORM BoN",
            "ORM BoN > Maj1@N", "PRM BoN (product) > Maj1@N", "PRM vote (min) >= Maj1@N"} <= claims, claims
    for r in rep["findings"]:
        assert r["source"] in SOURCE_ORDER and r["verdict"] in ("shown", "not shown"), r
        if r.get("difference") is not None:
            assert r["ci_low"] <= r["difference"] <= r["ci_high"], r
    assert {r["n"] for r in rep["findings"] if r["n"] is not None} == {2, 4}   # the curves' N >= 2

    md = (report_dir / "report.md").read_text()
    assert "## Evaluators" in md and "## Findings" in md
    assert md.count("| shown") + md.count("| not shown") >= len(rep["findings"])
