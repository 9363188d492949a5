"""Answers stated in forms the grader reads by their meaning, each with an equal case and a near miss: a choice
letter with only its closing parenthesis, a letter named before its value with a comma or followed by the
reasons the other letters fail, an equation of one coordinate against another letter, the roots listed with
multiplicity against the set of roots, a condition on "all $x$", a set named by set operations, a value
restated as a percent, "all real numbers $x$", "does not exist", an expectation or variance with square brackets
(``E[X] = 3.5``), an equation a claim is about ("the equation ... has no real solutions", "the line $y = -x$ meets
the $x$-axis at ...") and the residue a congruence of a constant states."""
from __future__ import annotations

import pytest

from mathray.grading import cluster_answers, compare, grade

CASES = [
    # an expectation or variance written with square brackets names what the equation states, like E(X) does
    ("So $E[X] = 1.75$.", "\\frac74", True),
    ("So $E[X] = 1.75$.", "\\frac72", False),
    ("Summing over the outcomes, $\\mathbb{E}[Y] = \\frac{5}{2}$.", "2.5", True),
    ("Summing over the outcomes, $\\mathbb{E}[Y] = \\frac{5}{2}$.", "5", False),
    ("Hence $\\operatorname{Var}[X] = E[X^2] - E[X]^2 = 2$.", "2", True),
    ("So $2E[X] = 7$.", "7", False),  # a coefficient on the left: the equation states 2E[X], not a value
    # a letter with only a closing parenthesis picks that letter, and against a value stands for its value
    ("Hence the answer is **C) 12**.", "C", True),
    ("Hence the answer is **C) 12**.", "D", False),
    ("Hence the answer is **C) 12**.", "12", True),
    ("Hence the answer is **C) 12**.", "13", False),
    # a letter named right before its value, with a comma between them
    ("Choice (B), 17, is the only prime among them.", "B", True),
    ("Choice (B), 17, is the only prime among them.", "A", False),
    # the named letter, not the letters a reason clause rules out
    ("The best option is D, because A, B and C each exceed the budget.", "D", True),
    ("The best option is D, because A, B and C each exceed the budget.", "A", False),
    # a reference x = c names its letter: y = c is another line, while x = c and a bare c state the same value
    ("The vertical asymptote is $x = -4$.", "x=-4", True),
    ("The horizontal asymptote is $y = -4$.", "x=-4", False),
    ("The plane is $z = \\frac{3}{2}$.", "y=\\frac32", False),
    ("Solving, $t = 9$.", "9", True),
    # roots listed with multiplicity are the set of roots against a reference that lists each once
    ("Counting multiplicity, the roots are $-1, -1, 4$.", "4, -1", True),
    ("Counting multiplicity, the roots are $-1, -1, 4$.", "4, 1", False),
    # "all $x$ with / such that <relation of x>" states the relation
    ("The solution set is all $t$ such that $t > -2$.", "(-2,\\infty)", True),
    ("The solution set is all $t$ such that $t > -2$.", "[-2,\\infty)", False),
    ("The range is all $y$ satisfying $0 \\le y < 5$.", "[0,5)", True),
    ("The range is all $y$ satisfying $0 \\le y < 5$.", "(0,5)", False),
    # a set named by set operations states the set on its right side
    ("Therefore $P \\cup Q = \\{1, 4, 9\\}$.", "\\{9, 4, 1\\}", True),
    ("Therefore $P \\cup Q = \\{1, 4, 9\\}$.", "\\{1, 4\\}", False),
    ("So $S \\setminus T = \\{7\\}$.", "\\{7\\}", True),
    ("So $S \\setminus T = \\{7\\}$.", "\\{8\\}", False),
    # a value restated as a percent names both, when the percent is exactly 100 times the value
    ("The chance of rain is 0.15, i.e., 15%.", "15", True),
    ("The chance of rain is 0.15, i.e., 15%.", "0.15", True),
    ("The chance of rain is 0.15, i.e., 15%.", "1.5", False),
    ("The chance of rain is 0.15, or 20%.", "20", False),  # not a restatement: 20% is not 0.15
    # "all real numbers $x$" names the set of all reals
    ("The equation holds for all real numbers $y$.", "\\mathbb{R}", True),
    ("The equation holds for all real numbers $y$.", "\\emptyset", False),
    ("It is defined for every real number $x$.", "(-\\infty,\\infty)", True),
    ("It is defined for all real numbers $x$ except $x = 1$.", "(-\\infty,\\infty)", False),
    # "does not exist" is DNE, not the empty set and not a number
    ("Since the one-sided limits differ, the limit doesn't exist.", "\\text{DNE}", True),
    ("Since the one-sided limits differ, the limit doesn't exist.", "DNE", True),
    ("Since the one-sided limits differ, the limit doesn't exist.", "\\emptyset", False),
    ("Since the one-sided limits differ, the limit doesn't exist.", "0", False),
    # an equation that gives no variable its value is what a claim is about, not the stated value
    ("Since $x^2 \\geq 0$, the equation $x^2 + 4 = 0$ has no real solutions.", "\\emptyset", True),
    ("Solving, $x = 2$, so there is no other solution.", "\\emptyset", False),
    ("The line $y = -x$ meets the $x$-axis at an angle of $135^\\circ$.", "\\frac{3\\pi}{4}", True),
    ("The line $y = -x$ meets the $x$-axis at an angle of $135^\\circ$.", "\\frac{\\pi}{4}", False),
    ("The $n$-th term is $2n+1$.", "2n+1", True),
    ("The $n$-th term is $2n+1$.", "2n-1", False),
    # a congruence of a constant states its residue; one of a variable states a class, not a value
    ("Therefore $2^{10} \\equiv 4 \\pmod{5}$.", "4", True),
    ("Therefore $2^{10} \\equiv 4 \\pmod{5}$.", "5", False),
    ("So $7^{3} \\equiv 1 \\pmod 9$.", "1", True),
    ("So $7^{3} \\equiv 1 \\pmod 9$.", "9", False),
    ("So $x \\equiv 4 \\pmod{9}$.", "4", False),
]


@pytest.mark.parametrize("prediction, reference, expected", CASES)
def test_stated_forms(prediction, reference, expected):
    result = grade(prediction, reference, timeout=30)
    assert result.is_correct is expected, result


def test_a_reference_equation_of_one_letter_is_compared_with_its_letter():
    assert compare("y = 7", "x = 7").equal is False
    assert compare("x = 7", "x = 7.0").equal is True
    assert compare("7", "x = 7").equal is True
    assert compare("y = 2x + 1", "y = 1 + 2x").equal is True


def test_clusters_keep_lines_of_different_letters_apart_and_merge_dne():
    answers = ["x = 3", "y = 3", "x=3.0", "y = \\frac{6}{2}", "does not exist", "\\text{DNE}", "\\emptyset"]
    assert cluster_answers(answers) == [0, 1, 0, 1, 2, 2, 3]
