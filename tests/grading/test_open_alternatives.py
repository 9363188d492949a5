"""Answers around an alternative left open, a choice named as "option X" or after "must be", a markdown heading
"Answer" over a sentence with a bold value, and an angle in the other unit than the reference's; each with an
equal case and a near miss; and answers of these forms cluster by value."""
from __future__ import annotations

import pytest

from mathray.grading import cluster_answers, extract_answer, grade

CASES = [
    # an alternative left open after the answer is a hedge; a remark without a value is not
    ("My best guess is 27, though it could also be 28.", "27", False),
    ("My best guess is 27, though it could also be 28.", "28", False),
    ("The total is $40$, but it might be easier to write it as $8 \\cdot 5$.", "40", True),
    ("The total is $40$, but it might be easier to write it as $8 \\cdot 5$.", "8", False),
    # a choice named as "option X" / "choice X"
    ("Only the third expression is positive, so the answer is choice C.", "C", True),
    ("Only the third expression is positive, so the answer is choice C.", "A", False),
    # "the answer must be"
    ("Both (B) and (C) fail the parity check. The answer must be (E).", "E", True),
    ("Both (B) and (C) fail the parity check. The answer must be (E).", "B", False),
    ("Since the sum is odd, the answer has to be $15$.", "15", True),
    ("Since the sum is odd, the answer has to be $15$.", "16", False),
    # a markdown heading "Answer" over a sentence whose value is bold
    ("## Final Answer\nThe least common multiple is **84**.", "84", True),
    ("## Final Answer\nThe least common multiple is **84**.", "12", False),
    ("## Answer\nA convex octagon has **20** diagonals.", "20", True),
    ("## Answer\nA convex octagon has **20** diagonals.", "8", False),
    ("# Answer\n\n84", "84", True),  # PRM800K's own answer block still reads its next line
    # an angle in radians with pi against degrees, and degrees against radians
    ("Hence $\\alpha = \\frac{2\\pi}{3}$.", "120^\\circ", True),
    ("Hence $\\alpha = \\frac{2\\pi}{3}$.", "60^\\circ", False),
    ("The angle between the vectors is $150^\\circ$.", "\\frac{5\\pi}{6}", True),
    ("The angle between the vectors is $150^\\circ$.", "\\frac{\\pi}{6}", False),
    ("The angle between the vectors is $150^\\circ$.", "150", True),  # same unit: the sign is stripped
]


@pytest.mark.parametrize("prediction, reference, expected", CASES)
def test_open_alternatives_and_choices(prediction, reference, expected):
    result = grade(prediction, reference, timeout=30)
    assert result.is_correct is expected, result


def test_hedge_is_read_as_the_list_it_leaves_open():
    assert extract_answer("My best guess is 27, though it could also be 28.") == "27 or 28"


def test_these_forms_cluster_by_value():
    texts = ["## Final Answer\nThe least common multiple is **84**.", "The answer must be $84$.",
             "The lcm is $\\boxed{84}$.", "My best guess is 84, though it could also be 86."]
    assert cluster_answers([extract_answer(a) for a in texts]) == [0, 0, 0, 1]
