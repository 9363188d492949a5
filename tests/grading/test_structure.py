from __future__ import annotations

import pytest

from mathray.grading.normalize import normalize
from mathray.grading.structure import MAX_ELEMENTS, MAX_PM, expand_pm, inequality_intervals, last_side, parse_structure


def test_pm_expansion_is_bounded_before_it_runs():
    assert sorted(expand_pm(r"1\pm\sqrt{5}")) == [r"1+\sqrt{5}", r"1-\sqrt{5}"]
    assert len(expand_pm("1" + r"\pm1" * MAX_PM)) == 2**MAX_PM
    assert expand_pm("1" + r"\pm1" * (MAX_PM + 1)) is None
    assert parse_structure(normalize("1" + r"\pm 1" * 28))[0] == "atom"  # not 2^28 strings


def test_lists_longer_than_the_cap_are_not_split():
    assert parse_structure(",".join(["1"] * MAX_ELEMENTS))[0] == "set"
    assert parse_structure(",".join(["1"] * (MAX_ELEMENTS + 1)))[0] == "atom"
    assert parse_structure(",".join([r"\pm1"] * MAX_ELEMENTS))[0] == "atom"  # expansions count


@pytest.mark.parametrize("text, brackets, lo, hi", [
    ("x>1", "()", "1", r"\infty"), (r"5\ge x", "(]", r"-\infty", "5"), ("-2<x<3", "()", "-2", "3"),
    (r"3>x\ge-2", "[)", "-2", "3"), (r"x\le\frac{1}{2}", "(]", r"-\infty", r"\frac{1}{2}"),
])
def test_inequalities_become_intervals(text, brackets, lo, hi):
    assert inequality_intervals(text) == ("seq", brackets, [("atom", lo), ("atom", hi)])


@pytest.mark.parametrize("text", ["x^2>4", "x>y", "1<x>2", "x+1>2"])
def test_other_inequalities_are_left_to_sympy(text):
    assert inequality_intervals(text) is None


def test_or_lists_assignments_and_chains():
    assert parse_structure(normalize(r"x = 2 \text{ or } x = 3")) == ("set", [("atom", "2"), ("atom", "3")])
    assert parse_structure(normalize("p = 3, q = 2")) == ("seq", "()", [("atom", "3"), ("atom", "2")])
    assert last_side(normalize(r"\frac{7}{2}=3.5")) == "3.5"
    assert last_side(normalize(r"7!\times2!=10,\!080")) == "10,080"
    assert last_side(normalize(r"\frac{5}{36}\approx0.139")) == "0.139"
    assert last_side(normalize("x=2 or x=3")) is None
