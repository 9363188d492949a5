from __future__ import annotations

from fractions import Fraction

import pytest

from mathray.grading.words import set_phrase_value, words_value


@pytest.mark.parametrize("text, value", [
    ("eleven", 11), ("Forty-two", 42), ("one hundred", 100), ("three hundred and six", 306),
    ("twelve hundred", 1200), ("five thousand two hundred", 5200), ("a half", Fraction(1, 2)),
    ("two fifths", Fraction(2, 5)), ("a quarter", Fraction(1, 4)), ("negative seven", -7),
    ("4 and a half", Fraction(9, 2)), ("twenty and one half", Fraction(41, 2)),
])
def test_number_phrases(text, value):
    assert words_value(text) == value


@pytest.mark.parametrize("text", ["seven five", "hundred", "and two", "twenty thirty", "zero one", "nine quarters",
                                  "apples", "one two three", "a"])
def test_words_that_are_no_number(text):
    assert words_value(text) is None


@pytest.mark.parametrize("text, value", [
    ("no solution", "\\emptyset"), ("There are no real roots", "\\emptyset"), ("No such integer", "\\emptyset"),
    ("all reals", "(-\\infty,\\infty)"), ("every real number", "(-\\infty,\\infty)"),
    ("infinitely many", "\\infty"), ("There are infinitely many solutions.", "\\infty"), ("Infinity", "\\infty"),
    ("one solution", None), ("no", None), ("all integers", None),
])
def test_set_phrases(text, value):
    assert set_phrase_value(text) == value


@pytest.mark.parametrize("text, value", [
    ("infinitely many lattice points on the line", "\\infty"), ("There are infinitely many primes", "\\infty"),
    ("infinitely many, 3 of them even", None),
])
def test_infinitely_many_with_a_noun_phrase(text, value):
    assert set_phrase_value(text) == value
