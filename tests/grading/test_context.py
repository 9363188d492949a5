"""Choice letters and stated bases: graded from what the prediction's text says around its answer."""
from __future__ import annotations

import pytest

from mathray.grading import grade
from mathray.grading.context import choice_letter, options, stated_base


@pytest.mark.parametrize("reference, letter", [
    ("C", "C"), ("(C)", "C"), ("\\text{(C)}", "C"), ("\\textbf{(C)}", "C"), ("$\\text{C}$", "C"),
    ("c", None), ("CD", None), ("12", None), ("(C) 12", None),
])
def test_choice_letter(reference, letter):
    assert choice_letter(reference) == letter


@pytest.mark.parametrize("prediction, reference, correct", [
    ("So the answer is $\\boxed{\\textbf{(C)}\\ \\frac{5}{2}}$.", "C", True),
    ("So the answer is $\\boxed{\\textbf{(C)}\\ \\frac{5}{2}}$.", "E", False),
    ("The correct choice is (D) 81.", "\\text{(D)}", True),
    ("The correct choice is (D) 81.", "\\text{(B)}", False),
    ("**Answer: (A)**", "A", True),
    # a value counts as the letter the prediction's own list names for it
    ("The choices are (A) 12, (B) 16, (C) 18, (D) 24.\nThe count is 18, so the answer is $\\boxed{18}$.", "C", True),
    ("The choices are (A) 12, (B) 16, (C) 18, (D) 24.\nThe count is 18, so the answer is $\\boxed{18}$.", "D", False),
    ("The choices are (A) 12, (B) 16, (C) 18, (D) 24.\nThe count is 20, so the answer is $\\boxed{20}$.", "C", False),
    ("The count is 18, so the answer is $\\boxed{18}$.", "C", False),  # no list: a value picks no letter
    # a letter whose value contradicts the prediction's own list
    ("The choices are (A) 12, (B) 16, (C) 18.\nSo the answer is $\\boxed{\\text{(B) } 18}$.", "B", False),
    ("The choices are (A) 12, (B) 16, (C) 18.\nSo the answer is $\\boxed{\\text{(B) } 16}$.", "B", True),
])
def test_choices(prediction, reference, correct):
    assert grade(prediction, reference).is_correct is correct


def test_options_need_two_letters():
    assert options("(A) 3, (B) $\\frac{1}{2}$, (C) 7") == {"A": "3", "B": "\\frac{1}{2}", "C": "7"}
    assert options("The answer is (A) 3.") == {}


@pytest.mark.parametrize("prediction, reference, correct", [
    ("Written in base 7, the number is 246.", "246_7", True),
    ("Written in base 7, the number is 246.", "246_8", False),
    ("The sum is 10110 in binary.", "10110_2", True),
    ("In octal the result is $\\boxed{755}$.", "755_8", True),
    ("From base 3 to base 9 the number becomes 84.", "84_9", True),  # the base nearest to the digits
    ("From base 3 to base 9 the number becomes 84.", "84_3", False),
    ("The number is 246.", "246_7", False),  # no base stated: the subscript stays significant
])
def test_stated_base(prediction, reference, correct):
    assert grade(prediction, reference).is_correct is correct


def test_stated_base_reads_the_base_nearest_to_the_digits():
    assert stated_base("11 in base 10 is 1011 in base 2", "1011") == 2
    assert stated_base("1011", "1011") is None
