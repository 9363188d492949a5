from __future__ import annotations

import math

import pytest

from mathray.grading.numeric import clearly_different, estimate


@pytest.mark.parametrize("text, value", [
    (r"3\sqrt{13}", 3 * math.sqrt(13)), (r"\frac{\pi}{2}", math.pi / 2), ("2^{10}-1", 1023), ("-(1+2)(3)", -9),
    (r"\frac{3\sqrt{3}}{4}", 3 * math.sqrt(3) / 4), (r"\sqrt[3]{-8}", -2), (r"2\cdot3", 6), (".5", 0.5),
])
def test_estimates(text, value):
    assert estimate(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["x", r"\sqrt{-1}", "2^{1000}", "1,2", r"\sin(1)", "2^{x}", "", "(1", r"\frac{1}{0}"])
def test_unknown(text):
    assert estimate(text) is None


def test_only_rejects():
    assert clearly_different("3.14", r"\pi")
    assert not clearly_different("0.3333333333333333", r"\frac{1}{3}")  # close: left to the exact check
    assert not clearly_different("x", "1")  # unknown: left to the exact check
