"""Numbers, times and verdicts in words, totals and calendar names in closing clauses, named angles,
counterfactual sentences and unsure endings: each rule with the case it reads and a near miss."""
from __future__ import annotations

from fractions import Fraction

import pytest

from mathray.grading import grade
from mathray.grading.words import clock_times_in_digits, words_value


@pytest.mark.parametrize("text, value", [
    ("the ninth", 9), ("the thirty-second", 32), ("the two hundred fifth", 205), ("the thousandth", 1000),
    ("one point two five", Fraction(5, 4)), ("three point oh seven", Fraction(307, 100)),
    ("a thousand", 1000), ("a million and two", 1000002), ("forty percent", 40),
    ("two and a half per cent", Fraction(5, 2)),
])
def test_ordinals_decimals_and_percents_in_words(text, value):
    assert words_value(text) == value


@pytest.mark.parametrize("text", ["the forty tenth", "the three hundredth", "point five", "two point", "one point ten",
                                  "a twenty", "the seven"])
def test_words_that_are_no_ordinal_or_decimal(text):
    assert words_value(text) is None


@pytest.mark.parametrize("text, digits", [
    ("It ends at a quarter past eleven.", "It ends at 11:15."), ("half past 7", "7:30"),
    ("twenty minutes to three", "2:40"), ("a quarter to one", "12:45"),
    ("It opens at nine o'clock", "It opens at 9:00"),
    ("the score went from ten to four", "the score went from ten to four"),
    ("seventy past six", "seventy past six"), ("ninety minutes to two", "ninety minutes to two"),
])
def test_clock_times_in_words(text, digits):
    assert clock_times_in_digits(text) == digits


CASES = [
    # a number or time in words states the answer
    ("The bus left at 6:50 and the ride took 40 minutes, so it arrived at half past seven.", "7:30", True),
    ("The bus left at 6:50 and the ride took 40 minutes, so it arrived at half past seven.", "7:40", False),
    ("The winner is the fourteenth runner.", "14", True),
    ("The winner is the fourteenth runner.", "\\frac{1}{14}", False),
    ("So the discount is thirty percent.", "30\\%", True),
    ("So the discount is thirty percent.", "3", False),
    ("The final answer is one point seven five.", "\\frac74", True),
    ("The final answer is one point seven five.", "1.57", False),
    # a closing clause that totals states the total
    ("Each of the six boxes holds eight pens, for forty-eight pens in total.", "48", True),
    ("Each of the six boxes holds eight pens, for forty-eight pens in total.", "8", False),
    ("The first shelf has 14 books and the second 9, making 23 books altogether.", "23", True),
    ("The first shelf has 14 books and the second 9, making 23 books altogether.", "9", False),
    # a concluding verdict; neither/both, sequence kinds
    ("The terms are 2, 6, 18, so the sequence is geometric.", "\\text{geometric}", True),
    ("The terms are 2, 6, 18, so the sequence is geometric.", "\\text{arithmetic}", False),
    ("$f(-x) = -x^3 + x^2$ matches neither $f(x)$ nor $-f(x)$, so $f$ is neither odd nor even.", "\\text{neither}",
     True),
    ("$f(-x) = -x^3 + x^2$ matches neither $f(x)$ nor $-f(x)$, so $f$ is neither odd nor even.", "\\text{odd}",
     False),
    ("The total is 30, which is even.", "30", True),
    ("The total is 30, which is even.", "\\text{even}", False),
    # a calendar name that ends the phrase
    ("Since 45 = 6 \\cdot 7 + 3, the date is 3 days after Friday, which is a Monday.", "\\text{Monday}", True),
    ("Since 45 = 6 \\cdot 7 + 3, the date is 3 days after Friday, which is a Monday.", "\\text{Friday}", False),
    ("The 31st day after the start of the year falls on a Saturday.", "\\text{Saturday}", True),
    ("So the meeting is 3 days after Friday.", "3", True),
    # a named angle's equation states its measure
    ("Hence $m\\angle PQR = 115^\\circ$.", "115", True),
    ("Hence $m\\angle PQR = 115^\\circ$.", "65", False),
    ("So $\\angle A = 40^{\\circ}$.", "40", True),
    ("So $\\angle A = 40^{\\circ}$.", "140", False),
    # an inverted or stative counterfactual after the answer is set aside
    ("The tank holds 120 liters. Were it 20 percent larger, it would hold 144 liters.", "120", True),
    ("The tank holds 120 liters. Were it 20 percent larger, it would hold 144 liters.", "144", False),
    ("There are 5! = 120 orderings of the books. If the shelf had two copies of one book, there would be 60.", "120",
     True),
    ("There are 5! = 120 orderings of the books. If the shelf had two copies of one book, there would be 60.", "60",
     False),
    ("Should the price double, it would cost $50. So the price now is $25.", "25", True),
    # GSM8K computes with an if-sentence in the present tense: its result is the answer
    ("Tom has 7 apples. If he has 3 more bags of 7, he has 7 + 21 = 28 apples.", "28", True),
    # an ending that is unsure and only tentatively names a value commits to none
    ("Counting one way I get 18, the other way 20. I'm not sure which is right; maybe 18.", "18", False),
    ("I can't tell whether the endpoints count. Perhaps the answer is 11.", "11", False),
    ("I'm not sure the problem wants a decimal, but the answer is 0.5.", "\\frac12", True),
    ("I was not sure at first, but both methods give 18. So the answer is 18.", "18", True),
    # ... also when a closing remark without a value follows the tentative value
    ("I'm not completely certain, but the ratio is maybe $\\frac{3}{5}$. It is hard to tell without the diagram.",
     "\\frac35", False),
    ("I'm not entirely sure about a shortcut, but the full computation gives $\\frac{3}{5}$. It's hard to say if "
     "there is a faster way.", "\\frac35", True),
]


@pytest.mark.parametrize("prediction, reference, expected", CASES)
def test_words_phrases_and_counterfactuals(prediction, reference, expected):
    assert grade(prediction, reference).is_correct is expected
