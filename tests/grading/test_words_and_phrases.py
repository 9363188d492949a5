"""Numbers, times and verdicts in words, totals and calendar names in closing clauses, named angles,
counterfactual sentences and unsure endings, mixed numbers in digits, a value for each of two conditions, remarks
that compare the answer with another amount (also in a clause of its sentence), a condition after "holds when" and a
conic named as a verdict: each rule with the case it reads
and a near miss."""
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
    # a mixed number in digits is one amount: "4 2/3", and "5 and 1/4" before the noun it measures; without such a
    # noun, or as a range, the "and" joins two values
    ("So the board is 4 2/3 feet long.", "\\frac{14}{3}", True),
    ("So the board is 4 2/3 feet long.", "4", False),
    ("Altogether the hike takes 2 1/4 hours.", "\\frac94", True),
    ("Altogether the hike takes 2 1/4 hours.", "2", False),
    ("Tripling the batch, she needs 5 and 1/4 cups of sugar.", "\\frac{21}{4}", True),
    ("Tripling the batch, she needs 5 and 1/4 cups of sugar.", "5", False),
    ("The plank is 3 and 5/8 inches thick.", "3\\frac58", True),
    ("The solutions of the equation are 3 and 2/5.", "\\frac{17}{5}", False),
    ("Both 4 and 1/2 satisfy the equation.", "\\frac92", False),
    ("The dose lies between 2 and 3/4 cups.", "\\frac{11}{4}", False),
    # a value under a condition and another under the opposite one leave the answer open
    ("The number of handshakes is 15 if the host shakes hands too, or 10 if she does not.", "15", False),
    ("The number of handshakes is 15 if the host shakes hands too, or 10 if she does not.", "10", False),
    ("So the answer is $24$ when order matters and $12$ when it does not.", "24", False),
    ("The answer is 9 if the last page counts; otherwise it is 8.", "9", False),
    ("The answer is 9 if the last page counts; otherwise it is 8.", "8", False),
    ("The tank fills in 6 hours if both pipes are open.", "6", True),
    ("If both pipes are open, the tank fills in 6 hours, or 360 minutes.", "6", True),
    # a remark that compares the stated answer with another amount is set aside
    ("The shop sold 48 bikes in June. That's 12 more than in May.", "48", True),
    ("The shop sold 48 bikes in June. That's 12 more than in May.", "12", False),
    ("Mia is 14 years old. That is 9 years younger than her brother, who is 23.", "14", True),
    ("Mia is 14 years old. That is 9 years younger than her brother, who is 23.", "23", False),
    ("The farm has 30 goats. This is 3 times as many as last spring's 10.", "30", True),
    ("June's sales were 48 bikes and May's 36, so June sold 12 more than May.", "12", True),
    # one relation of one variable after "holds when"/"is true exactly when" is the solution set
    ("Factoring, $x^2 - 4x - 12 = (x-6)(x+2) < 0$, which is true exactly when $-2 < x < 6$.", "(-2, 6)", True),
    ("Factoring, $x^2 - 4x - 12 = (x-6)(x+2) < 0$, which is true exactly when $-2 < x < 6$.", "[-2, 6]", False),
    ("The inequality $2x + 1 \\ge 7$ holds for $x \\ge 3$.", "[3, \\infty)", True),
    ("The inequality $2x + 1 \\ge 7$ holds for $x \\ge 3$.", "(3, \\infty)", False),
    ("The system $x + y = 3$ holds when $x = 1$ and $y = 2$.", "1", False),
    # a clause after the answer that compares it with another amount: its amounts are not the answer
    ("Tom reads 15 + 20 = 35 pages, which is 5 more than Ann's 30.", "35", True),
    ("Tom reads 15 + 20 = 35 pages, which is 5 more than Ann's 30.", "5", False),
    ("Tom reads 15 + 20 = 35 pages, which is 5 more than Ann's 30.", "30", False),
    ("The van holds 12 boxes, 3 fewer than the truck.", "12", True),
    ("The van holds 12 boxes, 3 fewer than the truck.", "3", False),
    ("So the shop earns $240, which is $40 less than it spent.", "240", True),
    ("So the shop earns $240, which is $40 less than it spent.", "40", False),
    # a conic named as the verdict about an equation
    ("Both squares have the same coefficient, so the graph of $x^2 + y^2 = 9$ is a circle.", "\\text{circle}", True),
    ("Both squares have the same coefficient, so the graph of $x^2 + y^2 = 9$ is a circle.", "\\text{ellipse}", False),
    ("One square term is negative, so $x^2 - y^2 = 1$ is a hyperbola.", "\\text{hyperbola}", True),
    ("One square term is negative, so $x^2 - y^2 = 1$ is a hyperbola.", "\\text{parabola}", False),
]


@pytest.mark.parametrize("prediction, reference, expected", CASES)
def test_words_phrases_and_counterfactuals(prediction, reference, expected):
    assert grade(prediction, reference).is_correct is expected
