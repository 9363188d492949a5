"""The ProcessBench recipe (rayjobs/configs/recipes/processbench/) as committed, on CPU: its three configs run
in order with only the paths, the model (a tiny random model in Qwen2.5-Math-PRM's layout, built here), the
device and the dtype changed, on a folder in the hub's layout holding ProcessBench's four subsets (its record
format; cases written here). So the GPU run meets the same sources, formats, convention and job chain; only
the real model and its numbers are left to it. The report's accuracies and F1 per subset are checked against
the same computed here from the scores (the metric itself: tests/test_first_error.py)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_ingest_hub import configs_readme, hub_offline

from mathray.config import load_config
from mathray.jobs.ingest import IngestConfig, run_ingest
from mathray.jobs.scoring import ScoreConfig, run_score
from mathray.jobs.step_evaluation import StepEvalConfig, run_step_evaluation
from mathray.runtime.storage import ShardStore

pytestmark = pytest.mark.slow
RECIPE = Path(__file__).resolve().parents[1] / "rayjobs" / "configs" / "recipes" / "processbench"
SUBSETS = ("gsm8k", "math", "olympiadbench", "omnimath")
CASES = [  # (steps, label: index of the earliest wrong step, -1 when none)
    (["3 + 4 = 7.", "7 * 2 = 14.", "The answer is 14."], -1),
    (["3 + 4 = 8.", "8 * 2 = 16.", "The answer is 16."], 0),
    (["5 - 2 = 3.", "3 * 3 = 10.", "The answer is 10."], 1),
    (["6 + 1 = 7.", "7 - 3 = 4.", "The answer is 4."], -1),
    (["9 - 4 = 5.", "5 + 5 = 10.", "So 10 + 1 = 12."], 2),
]


@pytest.fixture
def processbench_hub(tmp_path, monkeypatch):
    """``Qwen/ProcessBench`` as a local folder (one JSON Lines file per subset, the splits declared in its
    README), the working directory its root; the hub client offline."""
    repo = tmp_path / "hub" / "Qwen" / "ProcessBench"
    repo.mkdir(parents=True)
    for subset in SUBSETS:
        records = [{"id": f"{subset}-{i}", "generator": "tiny", "problem": f"{subset} problem {i}: {steps[0]}",
                    "steps": steps, "final_answer_correct": label == -1, "label": label}
                   for i, (steps, label) in enumerate(CASES)]
        (repo / f"{subset}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (repo / "README.md").write_text(configs_readme("default", {s: f"{s}.jsonl" for s in SUBSETS}))
    monkeypatch.chdir(tmp_path / "hub")
    hub_offline(monkeypatch, tmp_path / "hf-cache")
    return tmp_path


def hand_f1(cases: list[tuple[list[float], int]], threshold: float) -> tuple[float, float, float]:
    """ProcessBench's metric, written out: the predicted first error is the first step scoring below the
    threshold (-1 when none); the accuracy on the erroneous cases (exact index) and on the correct ones (-1), and
    their harmonic mean (F1)."""
    predicted = [next((i for i, s in enumerate(scores) if s < threshold), -1) for scores, _ in cases]
    err = [p == lab for p, (_, lab) in zip(predicted, cases) if lab != -1]
    ok = [p == -1 for p, (_, lab) in zip(predicted, cases) if lab == -1]
    a, b = sum(err) / len(err), sum(ok) / len(ok)
    return a, b, 0.0 if a + b == 0 else 2 * a * b / (a + b)


def test_processbench_recipe_runs_on_cpu_with_a_tiny_model_in_the_published_layout(processbench_hub, ray_cluster):
    from helpers.tiny_reward_models import build_separator_prm

    runs = processbench_hub / "runs"
    model = build_separator_prm(processbench_hub / "prm", seed=4)
    ingest = load_config(IngestConfig, RECIPE / "ingest.yaml", [f"output={runs}/problems"])
    run_ingest(ingest)
    score = load_config(ScoreConfig, RECIPE / "score.yaml", [
        f"input={runs}/step_labels", f"output={runs}/step_scores", f"scorer.prm={model}", "scorer.device=cpu",
        "scorer.dtype=float32", "scorer.max_length=512"])
    assert score.scorer.prm_convention == "qwen-math-prm" and score.input_kind == "step_labels"
    run_score(score)
    evaluate = load_config(StepEvalConfig, RECIPE / "evaluate_steps.yaml", [
        f"labels={runs}/step_labels", f"scores={runs}/step_scores", f"output={runs}/report"])
    report = run_step_evaluation(evaluate).report

    labels = {(r["problem_id"], r["sample_id"]): r for r in ShardStore(f"{runs}/step_labels").read_all().to_pylist()}
    scores = {(r["problem_id"], r["sample_id"]): r["step_scores"]
              for r in ShardStore(f"{runs}/step_scores").read_all().to_pylist()}
    assert scores.keys() == labels.keys() and len(labels) == len(SUBSETS) * len(CASES)
    assert all(len(scores[k]) == len(labels[k]["steps"]) for k in labels)
    assert report["solutions"] == len(labels) and report["unscored"] == 0
    table = report["at_threshold"]
    assert table["threshold"] == 0.5 and set(table["subsets"]) == set(SUBSETS)
    for subset in SUBSETS:
        cases = [(scores[k], -1 if r["first_error_step"] is None else r["first_error_step"])
                 for k, r in labels.items() if json.loads(r["metadata"])["subset"] == subset]
        row = table["subsets"][subset]
        assert (row["num_error"], row["num_correct"]) == (3, 2)
        assert [row["error_accuracy"], row["correct_accuracy"], row["f1"]] == pytest.approx(hand_f1(cases, 0.5))
    assert (runs / "report" / "report.md").exists()
