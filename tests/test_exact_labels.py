"""Exact first errors of toy-task samples (pure logic) and the first-error table they give the evaluate report."""
import json

import pytest

from helpers.quarantine import read_all_quarantine
from mathray.core.toy import ToyTaskConfig
from mathray.jobs.exact_labels import exact_row

TASK = ToyTaskConfig()
EXPR = "7 + 5 * 3 - 4"          # 5 * 3 = 15, 7 + 15 = 22, 22 - 4 = 18


def row(text: str) -> dict:
    return {"problem_id": "p", "sample_id": 0, "problem": "What is 7 + 5 * 3 - 4?", "text": text, "prompt": None}


def test_a_correct_solution_has_no_first_error():
    labels, why = exact_row(row("5 * 3 = 15\n7 + 15 = 22\n22 - 4 = 18\nThe answer is \\boxed{18}."), EXPR, TASK, "auto")
    assert why == "" and labels["first_error_step"] is None and labels["hard_labels"] == [1, 1, 1, 1]
    assert labels["label_source"] == "toy-exact" and len(labels["steps"]) == 4


def test_the_first_wrong_line_is_the_label_and_later_lines_are_bad():
    # the second line adds wrongly; the third is right given the second (but the solution is already wrong)
    labels, _ = exact_row(row("5 * 3 = 15\n7 + 15 = 23\n23 - 4 = 19\nThe answer is \\boxed{19}."), EXPR, TASK, "auto")
    assert labels["first_error_step"] == 1 and labels["hard_labels"] == [1, 0, 0, 0]
    assert json.loads(labels["metadata"]) == {"kind": "result"}


def test_a_solution_that_stops_before_its_answer_has_no_step_to_label():
    labels, why = exact_row(row("5 * 3 = 15\n7 + 15 = 22"), EXPR, TASK, "auto")
    assert labels is None and "after the last step" in why


@pytest.mark.cluster
def test_exact_labels_job_on_a_local_cluster(ray_cluster, tmp_path):
    """The stage job: one STEP_LABELS row per sample, first errors where a sample first departs from the
    reference solution (an independent check: the injected errors change one line's result), and a sample
    that stops before its answer quarantined with the reason."""
    from helpers.score_data import commit_samples, sample_rows

    from mathray.core import schemas
    from mathray.core.toy import generate_problems
    from mathray.jobs.exact_labels import ExactLabelConfig, run_exact_labels
    from mathray.runtime.storage import ShardStore

    samples = sample_rows(3, 4, seed=2)
    problems = generate_problems(ToyTaskConfig(seed=2, num_train=0, num_test=3), "test")
    store = ShardStore(str(tmp_path / "problems"))
    store.commit_shard("part-00000", schemas.to_table(problems, schemas.PROBLEMS))
    store.write_manifest()
    commit_samples(str(tmp_path / "samples"), samples, shards=2)
    summary = run_exact_labels(ExactLabelConfig(input=str(tmp_path / "samples"), output=str(tmp_path / "out"),
                                                problems=str(tmp_path / "problems"), toy={"seed": 2}))
    out = ShardStore(str(tmp_path / "out"))
    rows = {(r["problem_id"], r["sample_id"]): r for r in out.read_all().to_pylist()}
    reference = {p["problem_id"]: p["reference_solution"].split("\n") for p in problems}
    for s in samples:
        lines = s["text"].split("\n")
        if len(lines) < len(reference[s["problem_id"]]):      # the last sample of each problem has no answer line
            assert (s["problem_id"], s["sample_id"]) not in rows
            continue
        departs = next((i for i, (a, b) in enumerate(zip(lines, reference[s["problem_id"]])) if a != b), None)
        assert rows[(s["problem_id"], s["sample_id"])]["first_error_step"] == departs
    quarantined = read_all_quarantine(ShardStore(str(tmp_path / "out"))).column("reason").to_pylist()
    assert len(quarantined) == 3 and all("after the last step" in q for q in quarantined)
    assert summary.rows_quarantined == 3
