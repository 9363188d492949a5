"""Answers whose last sentence names them in a closing clause or around an aside, each with an equal case and a
near miss: a bold heading label before the solution sentence, steps of one solution joined by "and", a count
verb, a confirmation, a counterfactual with "were", a letter before an earlier mention of its value, "only (X)
works", an interval restated after "i.e.", a numeral restated in decimal, e-notation, a commitment after a
hedge; and answers from different closing forms cluster by value."""
from __future__ import annotations

import pytest

from mathray.grading import cluster_answers, extract_answer, grade

CASES = [
    # a bold label that the solution sentence follows is not the answer
    ("**Solution.** Dividing both sides by 4 gives $y = 3$.", "3", True),
    ("**Solution.** Dividing both sides by 4 gives $y = 3$.", "4", False),
    ("We checked every case.\n**Yes.**", "\\text{Yes}", True),  # a bold answer alone on its line still counts
    # steps of one solution joined by "and": the solved one
    ("Wait, that's wrong. Redo: $3y + 1 = 10$, so $3y = 9$ and $y = 3$.", "3", True),
    ("Wait, that's wrong. Redo: $3y + 1 = 10$, so $3y = 9$ and $y = 3$.", "9", False),
    ("So $x = 1$ and $x = 2$.", "1, 2", True),  # two solved items stay a list
    # a count verb closing the sentence
    ("Oops, I miscounted. The multiples of 7 below 100 number 14.", "14", True),
    ("Oops, I miscounted. The multiples of 7 below 100 number 14.", "7", False),
    # a confirmation after rechecking
    ("Let me double-check: $6 \\times 7 = 42$, so the product $42$ is correct.", "42", True),
    ("Let me double-check: $6 \\times 7 = 42$, so the product $42$ is correct.", "6", False),
    # a counterfactual with "were ... would" after the answer is set aside
    ("The trip takes 4 hours. If the car were twice as fast, it would take 2 hours.", "4", True),
    ("The trip takes 4 hours. If the car were twice as fast, it would take 2 hours.", "2", False),
    # the letter before an earlier mention of the value in the sentence
    ("So it's (C) 12, since 12 is the only common multiple listed.", "C", True),
    ("So it's (C) 12, since 12 is the only common multiple listed.", "B", False),
    # "only (X) works"
    ("Testing the choices one by one, only (B) satisfies the equation.", "B", True),
    ("Testing the choices one by one, only (B) satisfies the equation.", "A", False),
    # an interval restated after "i.e."
    ("The function is positive for every input smaller than 2, i.e. $(-\\infty, 2)$.", "(-\\infty,2)", True),
    ("The function is positive for every input smaller than 2, i.e. $(-\\infty, 2)$.", "(-\\infty,2]", False),
    # a numeral in another base restated in decimal: the numeral is the answer
    ("So the product is $1210_3$, which is 48 in decimal.", "1210_3", True),
    ("So the product is $1210_3$, which is 48 in decimal.", "1201_3", False),
    # e-notation in prose
    ("That gives 4.5e-4.", "0.00045", True),
    ("That gives 4.5e-4.", "0.0045", False),
    # a commitment after a hedge, and a hedge without one
    ("It could be 15 or 16; I'll go with 16.", "16", True),
    ("It could be 15 or 16; I'll go with 16.", "15", False),
    ("It could be 15 or 16.", "16", False),
]


@pytest.mark.parametrize("prediction, reference, expected", CASES)
def test_closing_clauses(prediction, reference, expected):
    result = grade(prediction, reference, timeout=30)
    assert result.is_correct is expected, result


def test_closing_forms_cluster_by_value():
    texts = ["It could be 15 or 16; I'll go with 16.", "The total is $\\boxed{16}$.",
               "Oops, I miscounted. The pairs number 16.", "The answer is 15."]
    assert cluster_answers([extract_answer(a) for a in texts]) == [0, 0, 0, 1]
