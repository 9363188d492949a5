"""Endings of reasoning-model and chat outputs, each kind with the value it states (equal) and a near miss
(not equal): answer tags, "Final:" lines, the Unicode minus, parenthesised and prepositional hypotheticals,
equations of curves against their right side, repeated roots, tuples in prose, choice letters named in
prose or next to their value, number words without a link, and set phrases."""
from __future__ import annotations

import pytest

from mathray.grading import grade

CASES = [
    # an <answer> part after the reasoning is read alone
    ("<reasoning>\nTry 6: 6*7 = 42. Try 7: 7*8 = 56.\n</reasoning>\n<answer>\n7\n</answer>", "7", True),
    ("<reasoning>\nTry 6: 6*7 = 42. Try 7: 7*8 = 56.\n</reasoning>\n<answer>\n7\n</answer>", "6", False),
    ("<answer>The total is 84 cents.</answer>", "84", True),
    # a "Final:" line
    ("So 3 * 14 = 42 legs... no wait, spiders have 8 legs: 3 * 8 = 24.\n\nFinal: 24", "24", True),
    ("So 3 * 14 = 42 legs... no wait, spiders have 8 legs: 3 * 8 = 24.\n\nFinal: 24", "42", False),
    # U+2212 minus sign
    ("The balance ends at −35 dollars.", "-35", True),
    ("The balance ends at −35 dollars.", "35", False),
    # hypotheticals after the answer: parenthesised, "assuming ... 'd", a prepositional clause with "would"
    ("So the recipe needs 9 eggs. (Doubling it, she would need 18.)", "9", True),
    ("So the recipe needs 9 eggs. (Doubling it, she would need 18.)", "18", False),
    ("Each friend pays $12. Assuming two more friends joined, they'd each pay $8.", "12", True),
    ("Each friend pays $12. Assuming two more friends joined, they'd each pay $8.", "8", False),
    ("The printer finishes in 10 minutes; at double speed it would finish in 5.", "10", True),
    ("The printer finishes in 10 minutes; at double speed it would finish in 5.", "5", False),
    # equations of lines, curves and surfaces are compared as equations, never by their constant right side
    ("The circle is $x^2 + (y-3)^2 = 16$.", "16", False),
    ("The circle is $x^2 + (y-3)^2 = 16$.", "x^2 + y^2 - 6y - 7 = 0", True),
    ("The hyperbola is $\\frac{x^2}{9} - \\frac{y^2}{7} = 1$.", "1", False),
    ("The plane is $x + 2y - 2z = 9$.", "9", False),
    ("Hence $m + n = 17$.", "17", True),  # a sum of names states its value
    ("Hence $pq = 30$.", "30", True),
    ("The line is $y = -\\frac12 x + 4$.", "-\\frac{1}{2}x + 4", True),
    ("The line is $y = -\\frac12 x + 4$.", "4", False),
    # root lists: a multiset only where the reference repeats a value
    ("The roots are $5, 5, -2$.", "-2, 5", True),
    ("The roots are $5, -2$.", "5, 5, -2", False),
    ("The roots are $5, -2, -2$.", "5, 5, -2", False),
    # a tuple of numbers in prose is one answer
    ("The coordinates of the midpoint are (4, -1).", "(4,-1)", True),
    ("The coordinates of the midpoint are (4, -1).", "(-1,4)", False),
    # choices: a letter named in prose, after its value, or with its value in a command
    ("A) 9 B) 12 C) 15 D) 18. Since 3 * 5 = 15, the right option is C.", "C", True),
    ("A) 9 B) 12 C) 15 D) 18. Since 3 * 5 = 15, the right option is C.", "D", False),
    ("Thus the answer is 12, which matches option (B).", "B", True),
    ("Thus the answer is 12, which matches option (B).", "A", False),
    ("$\\boxed{\\mathrm{(B)}\\ 40}$", "B", True),
    ("$\\boxed{\\mathrm{(B)}\\ 40}$", "40", True),
    ("$\\boxed{\\mathrm{(B)}\\ 40}$", "4", False),
    ("Options: (A) 30, (B) 35, (C) 40. So the answer is (B) 40.", "40", False),  # B is 35 in its own list
    ("Options: (A) 30, (B) 35, (C) 40. So the answer is $\\boxed{C}$.", "40", True),
    ("Options: (A) 30, (B) 35, (C) 40. So the answer is $\\boxed{C}$.", "35", False),
    # numbers in words without a linking verb
    ("Roughly two thirds of the jar remained.", "\\frac23", True),
    ("Roughly two thirds of the jar remained.", "\\frac32", False),
    ("The drive took six and a half hours.", "6.5", True),
    ("The drive took six and a half hours.", "6", False),
    ("Then pick a third point on the circle.", "\\frac13", False),  # "a third" names no number here
    # set phrases
    ("The statement holds for every real $t$.", "(-\\infty,\\infty)", True),
    ("The statement holds for every real $t$.", "\\emptyset", False),
    ("No such prime exists.", "\\text{none}", True),
    ("The set of solutions is empty.", "\\emptyset", True),
    ("The set of solutions is empty.", "\\{0\\}", False),
]


@pytest.mark.parametrize("prediction, reference, expected", CASES)
def test_reasoning_and_chat_endings(prediction, reference, expected):
    result = grade(prediction, reference, timeout=30)
    assert result.is_correct is expected, (result.reason, result.answer)
