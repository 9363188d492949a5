from __future__ import annotations

from mathray.grading import cluster_answers
from mathray.grading.cluster import NO_ANSWER


def test_groups_equivalent_answers_in_order_of_first_appearance():
    answers = ["0.5", r"\frac12", "2", None, r"\sqrt8", r"2\sqrt2", "1/2", "", "(A)", r"\text{a}", "3"]
    assert cluster_answers(answers) == [0, 0, 1, NO_ANSWER, 2, 2, 0, NO_ANSWER, 3, 3, 4]


def test_unordered_sets_merge_and_tuples_do_not():
    assert cluster_answers(["1,2", "2,1", "(1,2)", "(2,1)"]) == [0, 0, 1, 2]


def test_empty():
    assert cluster_answers([]) == []
