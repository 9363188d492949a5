"""Closing forms of reasoning-model and chat outputs, each with the value it states (equal) and a near miss (not
equal): a closed reasoning block whose last line has no full stop, a closing clause that names the result,
a choice item that contradicts the options listed after it, relations of one variable joined by "or", prose
lists and root lists with a parenthesised aside, mixed numbers and dozens in words, digits said to be in
another base, chains of one integer in several bases, and braces nested far beyond any answer."""
from __future__ import annotations

import pytest

from mathray.grading import compare, grade

DEEP_ROOT = "\\sqrt{" * 12 + "1" + "}" * 12

CASES = [
    # a closed reasoning block that nothing follows: its last line is a finished statement
    ("<think>\n12 eggs per box, 7 boxes: 12*7 = 84\n</think>\n", "84", True),
    ("<think>\n12 eggs per box, 7 boxes: 12*7 = 84\n</think>\n", "12", False),
    ("<think>\n12 eggs per box, 7 boxes: so far 12*7 = 84 and", "84", False),  # never closes: no statement
    # a closing clause that names the result
    ("<think>\n50 cards into piles of 6: 6*8 = 48, remainder 2\n</think>\n\n", "2", True),
    ("<think>\n50 cards into piles of 6: 6*8 = 48, remainder 2\n</think>\n\n", "48", False),
    ("Adding the parts, 120 + 45 = 165, total 165.", "165", True),
    ("Adding the parts, 120 + 45 = 165, total 165.", "120", False),
    ("The answer is 6, not 5.", "6", True),
    ("The answer is 6, not 5.", "5", False),
    # a choice item checked against the options listed after it
    ("The answer is (B) 12, since the options are (A) 10, (B) 14, (C) 16, (D) 18.", "B", False),
    ("The answer is (B) 12, since the options are (A) 10, (B) 14, (C) 16, (D) 18.", "12", False),
    ("The answer is (B) 14, since the options are (A) 10, (B) 14, (C) 16, (D) 18.", "B", True),
    ("The answer is (B) 14, since the options are (A) 10, (B) 14, (C) 16, (D) 18.", "14", True),
    # relations of one variable joined by "or" that end the sentence
    ("The product is positive when $t < 2$ or $t > 5$.", "(-\\infty,2)\\cup(5,\\infty)", True),
    ("The product is positive when $t < 2$ or $t > 5$.", "(-\\infty,2]\\cup[5,\\infty)", False),
    ("The product is positive when $t < 2$ or $t > 5$.", "(2,5)", False),
    ("It holds exactly for $y \\le -3$ or $y \\ge 3$.", "(-\\infty,-3]\\cup[3,\\infty)", True),
    # prose lists and root lists with an aside
    ("The next three terms are 11, 14, 17.", "11, 14, 17", True),
    ("The next three terms are 11, 14, 17.", "11", False),
    ("She paid $1,250 in total.", "1250", True),
    ("The roots are $x = 2$, $x = 2$ (a double root), and $x = -5$.", "2, 2, -5", True),
    ("The roots are $x = 2$, $x = 2$ (a double root), and $x = -5$.", "2, -5, -5", False),
    # mixed numbers and dozens in words
    ("The recipe uses five and a third cups of flour.", "\\frac{16}{3}", True),
    ("The recipe uses five and a third cups of flour.", "5", False),
    ("She bought two dozen roses.", "24", True),
    ("She bought two dozen roses.", "2", False),
    ("That leaves half a dozen.", "6", True),
    ("That leaves half a dozen.", "12", False),
    # digits whose sentence says they are in another base
    ("In base 6, the result is 213.", "213_6", True),
    ("In base 6, the result is 213.", "213", False),
    ("Converting 33 from base 4 gives 15.", "15", True),
    # a true chain of one integer in several bases
    ("Therefore $44_{10} = 2C_{16}$.", "44", True),
    ("Therefore $44_{10} = 2C_{16}$.", "2C_{16}", True),
    ("Therefore $44_{10} = 2C_{16}$.", "45", False),
    ("Therefore $44_{10} = 2D_{16}$.", "44", False),  # the chain is false
    # braces nested far beyond any answer are refused, moderate nesting is read
    (f"The answer is ${DEEP_ROOT}$.", "1", False),
    ("The answer is $\\sqrt{\\sqrt{16}}$.", "2", True),
]


@pytest.mark.parametrize("prediction,reference,expected", CASES)
def test_closing_forms(prediction, reference, expected):
    assert grade(prediction, reference, timeout=30).is_correct is expected


def test_deep_nesting_is_refused_but_identical_answers_still_cluster():
    assert compare(DEEP_ROOT, "1").reason == "refused"
    assert compare(DEEP_ROOT, DEEP_ROOT).equal
