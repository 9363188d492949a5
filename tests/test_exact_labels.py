"""Exact first errors of toy-task samples (pure logic) and the first-error table they give the evaluate report."""
import json

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
