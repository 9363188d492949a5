from __future__ import annotations

from fractions import Fraction

import pytest

from mathray.grading.normalize import normalize
from mathray.grading.number_strings import integer_digits, parse_base, parse_number, text_key


@pytest.mark.parametrize("text, value", [
    ("1,000,000", 1_000_000), (r"10,\!000", 10_000), (r"1\,000\,000", 1_000_000), ("14{,}916", 14916),
    ("0.5", Fraction(1, 2)), (".35625", Fraction(35625, 100000)), ("-3", -3), (r"\frac{3}{6}", Fraction(1, 2)),
    (r"\dfrac12", Fraction(1, 2)), ("1/2", Fraction(1, 2)), (r"2\frac12", Fraction(5, 2)),
    (r"-2\frac{1}{2}", Fraction(-5, 2)), ("2 1/2", Fraction(5, 2)), (r"0.\overline{3}", Fraction(1, 3)),
    (r"0.1\overline{6}", Fraction(1, 6)), ("1.5e3", 1500), (r"6.72\times10^{-5}", Fraction(672, 10**7)),
    (r"25\%", 25), (r"\$18.90", Fraction(189, 10)), (r"90^\circ", 90), (r"5.4 \text{ cents}", Fraction(27, 5)),
    (r"864 \mbox{ inches}^2", 864), ("x = 3", 3), ("18 dollars", 18),
])
def test_numbers(text, value):
    assert parse_number(normalize(text)) == value


@pytest.mark.parametrize("text", ["1,2", "1,23", r"\sqrt{2}", "x", "1e100000", r"\frac{1}{0}", "3 or 4", ""])
def test_not_plain_numbers(text):
    assert parse_number(normalize(text)) is None


def test_huge_integers_compare_by_digits():
    big = "9" * 6000
    assert parse_number(big) is None
    assert integer_digits("000" + big) == big


def test_base_and_text_keys():
    assert parse_base("1011_{2}") == ("1011", 2)
    assert parse_base("52_8") == ("52", 8)
    assert text_key(normalize(r"\text{(A)}")) == "a"
    assert text_key(normalize(r"\text{ Monday }")) == "monday"
    assert text_key("x") is None  # a lone variable is math


@pytest.mark.parametrize("text, expected", [
    (r"5 \geq x", r"5\ge x"), (r"x \geqslant 2", r"x \ge2"), (r"x \neq 3", r"x \ne3"), ("x != 3", r"x \ne3"),
    ("5!=120", "5!=120"), (r"\mathbb{R}", r"(-\infty,\infty)"), (r"\varnothing", r"\emptyset"), (r"\{\}", r"\emptyset"),
    (r"(1, +\infty)", r"(1,\infty)"), ("five", "5"), ("Twenty-one", "21"), ("5 apples", "5"), (r"\$18 per day", "18"),
    ("1,000.99€", "1,000.99"), (r"(p,q)=(3,2)", "(3,2)"), (r"x \in (-\infty, 2)", r"(-\infty,2)"),
    (r"\left[\begin{array}{cc} 1 & 2 \\ 3 & 4 \end{array}\right]", r"\begin{array}{cc}1&2\cr3&4\end{array}"),
    (r"\boxed{5}", "5"), (r"x = 2 \text{ or } x = 3", "x=2 or x=3"), (r"1 \text{ and } 2", "1,2"),
])
def test_spellings(text, expected):
    assert normalize(text) == expected


def test_equation_of_a_line_keeps_its_left_side():
    assert normalize("y = 2x + 3") == "y=2x+3"
    assert normalize("x = 5") == "5"
