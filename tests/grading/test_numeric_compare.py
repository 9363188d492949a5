from __future__ import annotations

import math

import pytest

from mathray.grading.numeric_compare import evaluate, numerically_equal


@pytest.mark.parametrize("text, value", [
    (r"3\sqrt{13}", 3 * math.sqrt(13)), (r"\frac{\pi}{2}", math.pi / 2), ("2^{10}-1", 1023), ("-(1+2)(3)", -9),
    (r"\frac{3\sqrt{3}}{4}", 3 * math.sqrt(3) / 4), (r"\sqrt[3]{-8}", -2), (r"2\cdot3", 6), (".5", 0.5),
    (r"\sin^{2}x+\cos^{2}x", 1), (r"\log_{2}8", 3), ("5!", 120), (r"\binom{5}{2}", 10), ("|-3|", 3),
    (r"e^{i\pi}", -1), (r"\sqrt{-4}", 2j), (r"2^{-2}", 0.25),
])
def test_evaluates(text, value):
    point = {"x": 0.7} if "x" in text else None
    assert complex(evaluate(text, point)) == pytest.approx(value)


@pytest.mark.parametrize("text", ["x", r"\infty", "2^{100000}", "1,2", r"\frac{1}{0}", "(1", r"\log 5", "(-8)^{1/3}",
                                  r"\text{A}", "3!!!!!!!!!!" * 3, "1000!!"])
def test_undecided_outside_the_vocabulary_or_bounds(text):
    assert evaluate(text) is None


@pytest.mark.parametrize("a, b", [
    (r"2\sqrt{2}", r"\sqrt{8}"), ("x+1", "1+x"), ("(x+1)^{2}", "x^{2}+2x+1"), (r"3\cdot2+4\cdot5", r"5\cdot4+2\cdot3"),
    ("0.25", "2^{-2}"), (r"\frac{ab}{c}", r"a\cdot\frac{b}{c}"), (r"\sqrt{-1}", "i"), (r"\tan^{2}(5x)\cos^{2}(5x)", r"\sin^{2}(5x)"),
])
def test_equal(a, b):
    assert numerically_equal(a, b) is True


@pytest.mark.parametrize("a, b", [
    ("3.14", r"\pi"), ("0.333", r"\frac{1}{3}"), ("0.3333333333333333", r"\frac{1}{3}"), (r"\sqrt{x^{2}}", "x"),
    ("x+1", "y+1"), ("x", "7"), ("1.414", r"\sqrt{2}"),
])
def test_not_equal(a, b):
    assert numerically_equal(a, b) is False


def test_undecided_when_a_point_is_outside_the_domain():
    assert numerically_equal("x^{1/3}", r"\sqrt[3]{x}") is None  # negative points: conventions differ
