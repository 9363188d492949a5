from __future__ import annotations

import random

import pytest

from mathray.grading import compare, grade, is_equivalent
from mathray.grading.equivalence import canonical_key, compare_normalized, parse_structure
from mathray.grading.normalize import normalize

EQUAL = [
    ("0.5", r"\frac12"), ("0.5", "1/2"), (r"\dfrac{1}{2}", r"\tfrac12"), (r"\frac{2}{4}", "0.5"),
    (r"2\frac12", "5/2"), ("1,000,000", "1000000"), (r"10,\!000", "10000"), ("14{,}916", "14916"),
    (r"25\%", "25"), (r"1.5\times10^{3}", "1500"), (r"2\sqrt2", r"\sqrt8"), (r"2\sqrt{2}", r"\sqrt{8}"),
    (r"\frac{\pi}{2}", r"\frac12\pi"), (r"90^\circ", "90"), (r"\$32,\!348", "32348"), (r"5.4 \text{ cents}", "5.4"),
    (r"\left( 3, \frac{\pi}{2} \right)", r"(3,\pi/2)"), ("(3,4]", r"\left(3, 4\right]"), (r"\{1,2\}", "2,1"),
    ("1,-2", "-2,1"), (r"1 \pm \sqrt{19}", r"1-\sqrt{19}, 1+\sqrt{19}"), ("x=5", "5"), ("x > 3", "3 < x"),
    (r"x \ge 3", r"3 \le x"), (r"\text{(C)}", "C"), ("(A)", "a"), (r"\text{Evelyn}", "evelyn"),
    ("52_8", "52_{8}"), ("(x+1)^2", "x^2+2x+1"), ("y = 2x + 3", "2x - y + 3 = 0"), ("y = 2x + 3", "2y = 4x + 6"),
    (r"0.\overline{3}", r"\frac13"), (r"x \in [-2,7]", "[-2,7]"), (r"\frac{270}7\text{ degrees}", r"\frac{270}{7}"),
    (".0000672", r"6.72\times10^{-5}"), (r"(0,9) \cup (9,36)", r"(9,36)\cup(0,9)"),
    (r"\{1\pm\sqrt{5},-2\}", r"-2, 1+\sqrt5, 1-\sqrt5"), ("6 - 5i", "-5i+6"), (r"11\sqrt2", r"\sqrt{242}"),
    (r"\frac{11+9a}{20}", r"\frac{9a+11}{20}"), ("x>3", r"(3,\infty)"), ("2", "2.0"),
    (r"\begin{pmatrix} -1/3 \\ 2/3 \end{pmatrix}", r"\begin{pmatrix} -\frac13 \\ \frac23 \end{pmatrix}"),
    (r"\begin{pmatrix} 1 & 0 \\ 0 & 1 \end{pmatrix}", r"\begin{bmatrix} 1 & 0 \\ 0 & 1 \end{bmatrix}"),
    ("9" * 5000, "9" * 5000), ("123456789012345678901234567890", "123,456,789,012,345,678,901,234,567,890"),
    (r"\sqrt{2}/2", r"\frac{1}{\sqrt{2}}"), (r"\text{Monday}", "monday"), (r"3\sqrt{13}", r"\sqrt{117}"),
    (r"x^2 - 1", "(x-1)(x+1)"), (r"e^{-x^2}", r"\frac{1}{e^{x^2}}"), (r"\$18.90", "18.9"), ("2", r"\text{two}"),
    ("five", "5"), ("5 apples", "5"), (r"\$18 per day", "18"), ("1,000.99€", "1000.99"), (r"(1, +\infty)", r"(1,\infty)"),
    (r"\mathbb{R}", r"(-\infty,\infty)"), (r"\varnothing", r"\emptyset"), (r"x = 2 \text{ or } x = 3", "2, 3"),
    (r"\{-2021, 2021\}", r"\pm 2021"), (r"1 \text{ and } 2", "2,1"), (r"5 \geq x", r"x \le 5"), (r"x \neq 3", r"x \ne 3"),
    ("-2 < x < 3", "(-2,3)"), ("x > 1", r"(1,\infty)"), (r"x \ne 3", r"(-\infty,3)\cup(3,\infty)"), ("(p,q)=(3,2)", "(3,2)"),
    ("p = 3, q = 2", "(3,2)"), (r"\left[\begin{array}{cc} 1 & 2 \\ 3 & 4 \end{array}\right]",
                                r"\begin{pmatrix} 1 & 2 \\ 3 & 4 \end{pmatrix}"),
    (r"e^{i\pi}", "-1"), (r"\sqrt{-1}", "i"), ("2^{-2}", "0.25"), (r"\frac{7}{2}=3.5", r"\frac72"),
    (r"3 \cdot 2 + 4 \cdot 5", r"5 \cdot 4 + 2 \cdot 3"), ("ab+c", "c+ba"), (r"x \geqslant 2", r"[2, \infty)"),
]
NOT_EQUAL = [
    ("3.14", r"\pi"), ("0.333", r"\frac13"), ("0.25", "25"), (r"25\%", "0.25"), ("1,2", "12"), ("(1,2)", "(2,1)"),
    ("[1,2)", "(1,2)"), ("3 or 4", "3"), ("101_2", "101"), ("101_2", "5"), ("x>3", r"x\ge3"),
    ("(x+1)^2", "x^2+1"), (r"\sqrt2", "1.414"), ("A", "B"), ("1,2", "1,2,3"), ("5", None), (None, None),
    ("9" * 5000, "9" * 4999 + "8"), (r"\frac{1}{2}", r"\frac{1}{3}"), ("y = 2x + 3", "y = 2x - 3"),
    (r"\begin{pmatrix} 1 \\ 2 \end{pmatrix}", r"\begin{pmatrix} 1 & 2 \end{pmatrix}"), ("x < 3", "x > 3"),
    (r"\text{Monday}", r"\text{Tuesday}"), ("1", ""), ("3 or 4", "4"), (r"x = 2 \text{ or } x = 3", "2"),
    ("x > 1", r"[1,\infty)"), ("-2 < x < 3", "(-3,2)"), (r"x \le 5", r"x \ge 5"), ("(p,q)=(3,2)", "(2,3)"),
    (r"\pm 2021", "2021"), (r"e^{i\pi}", "1"), ("2^{-2}", "0.2"), ("five", "6"), ("1,000.99", "1000.9"),
]


@pytest.mark.parametrize("a, b", EQUAL)
def test_equal(a, b):
    assert compare(a, b).equal
    assert is_equivalent(b, a)


@pytest.mark.parametrize("a, b", NOT_EQUAL)
def test_not_equal(a, b):
    assert not is_equivalent(a, b)
    assert not is_equivalent(b, a)


def test_structure():
    assert parse_structure(normalize("(1, 2)"))[0] == "seq"
    assert parse_structure(normalize("1, 2"))[0] == "set"
    assert parse_structure(normalize(r"\{1, 2\}"))[0] == "set"
    assert parse_structure(normalize("1,000"))[0] == "atom"


def test_in_process_path_decides_numbers_text_and_closed_forms_without_workers():
    assert compare_normalized(normalize(r"\frac{3}{6}"), normalize("0.5")) is True
    assert compare_normalized(normalize("(A)"), normalize(r"\text{A}")) is True
    assert compare_normalized(normalize(r"\sqrt{8}"), normalize(r"2\sqrt{2}")) is True
    assert compare_normalized(normalize("(x+1)^{1000}"), normalize("x^{1000}")) is False
    assert compare_normalized(normalize("x^2 > 4"), normalize(r"(-\infty,-2)\cup(2,\infty)")) is None  # sympy


def test_canonical_key_groups_numbers_by_value():
    assert canonical_key("0.5") == canonical_key(r"\frac{1}{2}") == canonical_key("1/2")
    assert canonical_key(r"\text{(B)}") == canonical_key("b")


def test_grade_reports_reasons():
    assert grade(r"so \boxed{\frac{6}{8}}", "0.75").reason == "equal"
    assert grade(r"so \boxed{4}", "5").reason == "not-equal"
    assert grade("There is no final answer in this text.", "5").reason == "no-answer"
    assert grade(r"\boxed{5}", "").reason == "no-reference"
    needs_sympy = (r"\boxed{x^{2} > 4}", r"(-\infty,-2)\cup(2,\infty)")
    assert grade(*needs_sympy, timeout=0.001).reason == "timeout"  # the budget is spent before any call
    assert grade(r"\boxed{(x+1)^{1000}}", r"x^{1000}").reason == "not-equal"  # decided in process
    assert grade(r"\boxed{10^{10^{10}}}", r"10^{10^{10}} + 1").reason == "refused"


def test_math500_cross_problem_pairs_are_rarely_equal(math500_rows):
    """Answers of different problems that are not mathematically equal: at most 0.5% judged equal."""
    answers = [r["answer"] for r in math500_rows]
    rng = random.Random(7)
    pairs = set()
    while len(pairs) < 600:
        i, j = rng.sample(range(len(answers)), 2)
        pairs.add((min(i, j), max(i, j)))
    # Equal by an independent criterion: identical text after dropping spaces, or the same known value.
    same = {(r"10080", r"10,\!080"), (r"-2,1", r"1,-2")}
    def truly_equal(a, b):
        return a.replace(" ", "") == b.replace(" ", "") or (a, b) in same or (b, a) in same
    different = [(answers[i], answers[j]) for i, j in sorted(pairs) if not truly_equal(answers[i], answers[j])]
    judged_equal = [(a, b) for a, b in different if is_equivalent(a, b)]
    assert len(different) > 500
    assert len(judged_equal) <= 0.005 * len(different), judged_equal


@pytest.mark.parametrize("prediction, reference, equal", [
    # a reference equation is compared as an equation; a value matches only the side of y = f(x)
    ("0", "4x - y + 2z = 0", False),
    ("4x - y + 2z = 0", "-8x + 2y - 4z = 0", True),
    ("4x - y + 2z = 0", "4x - y + 2z = 1", False),
    ("x^2 - 3x", "y = x^2 - 3x", True),
    ("x^2 + 3x", "y = x^2 - 3x", False),
    ("5", "x + y = 5", False),
    ("3t - 1", "f(t) = 3t - 1", True),
    # a prediction's equation states the value of what it names; a chain of constants its last value
    ("m + n = 23", "23", True),
    ("g(2) - g(1) = 0", "0", True),
    (r"\frac{9}{3} = 3", "3", True),
    (r"\frac{9}{3} = 3", "4x - y + 2z = 0", False),
    # a bare reference list that repeats a value is a multiset; against a reference without repeats, sets
    ("4, 4, -1", "-1, 4, 4", True),
    ("4, -1", "-1, 4, 4", False),
    ("-1, 4, 4", "4, -1", True),
    ("3, 3, 3, 7", "7, 3", True),
    ("3, 7, 7", "3, 3, 7", False),
    ("3, 7", "7, 7, 3", False),
    ("4, -1, -1", "4, 4, -1", False),
    (r"\frac12, \frac12", "0.5, 0.5", True),
    ("4, -1", "-1, 4", True),
    (r"\{4, -1\}", r"\{-1, 4\}", True),
    # words
    (r"\text{one quarter}", "0.25", True),
    ("three eighths", r"\frac38", True),
    ("three eighths", r"\frac83", False),
    ("sixty-four", "64", True),
    ("two thousand and ten", "2010", True),
    ("nine and a half", "9.5", True),
    ("nine and a half", "9", False),
    (r"\text{No real solutions}", r"\text{no solution}", True),
    ("no solutions", r"\varnothing", True),
    ("no solutions", "0", False),
    (r"\text{All real numbers}", r"\mathbb{R}", True),
    ("all real numbers", r"\infty", False),
    (r"\text{infinitely many solutions}", r"\infty", True),
    (r"\text{infinitely many solutions}", r"(-\infty,\infty)", False),
    ("infinitely many", r"-\infty", False),
    # nesting beyond what answers use
    ("((((((5))))))", "5", False),
    ("[[[[[0.5]]]]]", r"\frac12", False),
    ("(((x+1)^2+1)^2)", "(((x+1)^2+1)^2)", True),
    ("h(h(h(h(h(3)))))", "h(h(h(h(h(3)))))", True),
])
def test_reasoning_model_semantics(prediction, reference, equal):
    assert compare(prediction, reference).equal is equal


def test_too_nested_answers_are_refused():
    assert compare("[[[[[[9]]]]]]", "9").reason == "refused"
