"""Amounts in another unit of the reference's kind, clock times with am/pm or in 24-hour form, scientific notation
(superscript exponents and "× 10^n" in prose), decimals with trailing dots that repeat, an exact value glossed by an
approximation or restated as approximately a decimal, a percent restating a chain's value, counts in words ("twice"),
mixed numbers with a unit, amounts in two units of one kind ("1 hour and 50 minutes", "5 feet 6 inches"), cents
against dollars and fraction characters ("1¾"): the correct side and the near miss of each rule, from new
examples."""
from __future__ import annotations

from fractions import Fraction

import pytest

from mathray.grading import grade
from mathray.grading.context import repeating_decimal
from mathray.grading.extract import tidy
from mathray.grading.quantities import clock_minutes, quantities_verdict, quantity, with_unit_after

CASES = [
    # an amount whose unit differs from the reference's is compared converted: equal amounts match, a bare number
    # that matches only after the unit is stripped does not
    ("A printer making 3 pages a minute needs 30 minutes for 90 pages.", "30\\text{ minutes}", True),
    ("A printer making 3 pages a minute needs 30 minutes for 90 pages.", "30\\text{ seconds}", False),
    ("A printer making 3 pages a minute needs 30 minutes for 90 pages.", "0.5\\text{ hours}", True),
    ("The cyclist rides 36 km in 2 hours, so her speed is 18 km/h, which is 5 m/s.", "5\\text{ m/s}", True),
    ("The cyclist rides 36 km in 2 hours, so her speed is 18 km/h, which is 5 m/s.", "18\\text{ km/h}", True),
    ("The cyclist rides 36 km in 2 hours, so her speed is 18 km/h, which is 5 m/s.", "18\\text{ m/s}", False),
    ("The rope is 6 feet long.", "72\\text{ inches}", True),
    ("The rope is 6 feet long.", "6\\text{ inches}", False),
    ("So the bag weighs $\\boxed{3\\text{ kg}}$.", "3000\\text{ g}", True),
    ("So the bag weighs $\\boxed{3\\text{ kg}}$.", "3\\text{ g}", False),
    ("The pool fills in 8 hours, so the answer is $\\boxed{8}$.", "8\\text{ minutes}", False),
    ("It takes 12 hours.", "12", True),  # no unit in the reference: nothing to convert
    ("Altogether the hike takes 2 1/4 hours.", "135\\text{ minutes}", True),
    ("Altogether the hike takes 2 1/4 hours.", "2\\text{ hours}", False),
    # an amount restated in another unit is set aside; a second amount that is not the same is an alternative
    ("Filling both tanks takes 150 minutes, or 2.5 hours.", "150\\text{ minutes}", True),
    ("Filling both tanks takes 150 minutes, or 2.5 hours.", "2.5\\text{ hours}", True),
    ("Filling both tanks takes 150 minutes, or 2.5 hours.", "150\\text{ hours}", False),
    ("So the walk takes 2 hours, or 200 minutes.", "2\\text{ hours}", False),
    # clock times compare as times of day when both say their half of the day
    ("The flight leaves at 10:40 pm and lasts 3 hours 35 minutes, so it lands at 2:15 am.", "2:15\\text{ AM}", True),
    ("The flight leaves at 10:40 pm and lasts 3 hours 35 minutes, so it lands at 2:15 am.", "2:15\\text{ PM}", False),
    ("Counting 50 minutes on from 16:25 gives 17:15.", "5:15\\text{ PM}", True),
    ("Counting 50 minutes on from 16:25 gives 17:15.", "5:15\\text{ AM}", False),
    ("Starting at 9:20 am and working 4 hours, she stops at 1:20 pm.", "1:20\\text{ PM}", True),
    ("Starting at 9:20 am and working 4 hours, she stops at 1:20 pm.", "9:20\\text{ AM}", False),
    ("The alarm rings at 6:45.", "6:45\\text{ AM}", True),  # no half of the day stated: not contradicted
    # scientific notation in prose, with superscript or caret exponents, and "gives the answer X"
    ("The sample's mass works out to 3.6 × 10⁻⁴ kg.", "0.00036", True),
    ("The sample's mass works out to 3.6 × 10⁻⁴ kg.", "0.0036", False),
    ("In scientific notation the count is 7.5 × 10^6.", "7500000", True),
    ("In scientific notation the count is 7.5 × 10^6.", "750000", False),
    ("Dividing 3 by 4000 gives the answer 7.5e-4.", "0.00075", True),
    ("Dividing 3 by 4000 gives the answer 7.5e-4.", "0.0075", False),
    # trailing dots after a repeated block make a repeating decimal; other dots leave the decimal as written
    ("Long division gives 5 ÷ 6 = 0.8333...", "\\frac56", True),
    ("Long division gives 5 ÷ 6 = 0.8333", "\\frac56", False),
    ("So $\\frac{7}{11} = 0.636363\\ldots$.", "\\frac{7}{11}", True),
    ("So $\\frac{7}{11} = 0.636363\\ldots$.", "\\frac{7}{10}", False),
    ("The ratio is 3.14159...", "\\pi", False),
    ("The quotient is 0.66...", "\\frac23", False),  # two digits: too short to show a repeating block
    # "exactly" commits to the exact side of a chain that ends in an approximation
    ("The chance is exactly $\\frac{5}{8} \\approx 0.63$.", "\\frac58", True),
    ("The chance is exactly $\\frac{5}{8} \\approx 0.63$.", "0.63", False),
    ("The chance is $\\frac{5}{8} \\approx 0.63$.", "\\frac58", False),
    # a value restated "which is approximately" a decimal ends in the approximation, as a chain with \\approx does
    ("The volume of the cone is $12\\pi$, which is approximately 37.70 cubic inches.", "12\\pi", False),
    ("The volume of the cone is $12\\pi$, which is approximately 37.70 cubic inches.", "37.70", True),
    ("The answer is $\\sqrt{20}$, or roughly 4.47.", "2\\sqrt5", False),
    ("The ratio is 1/3, which is about 0.33.", "\\frac13", False),
    ("The probability is exactly $\\frac{2}{7}$, which is about 0.29.", "\\frac27", True),
    ("The answer is $\\frac{9}{4}$, which is 2.25.", "\\frac94", True),
    ("The bag weighs 2 kg, which is about 4.4 pounds.", "2\\text{ kg}", True),
    ("Her brother is 12, or about 5 more than her.", "12", True),
    # a percent that restates the value a chain ends with
    ("The share is $\\frac{18}{24} = 0.75$, i.e. 75%.", "75", True),
    ("The share is $\\frac{18}{24} = 0.75$, i.e. 57%.", "57", False),
    # a count in a word that ends the clause
    ("The parabola meets the line at $(1, 2)$ and $(4, 5)$, so they intersect twice.", "2", True),
    ("The parabola meets the line at $(1, 2)$ and $(4, 5)$, so they intersect twice.", "4", False),
    ("In that hour the two hands overlap once.", "1", True),
    ("Each digit must be used at least once.", "1", False),
    # an amount in two units of one kind is their sum; neither part alone is the amount
    ("The movie runs 1 hour and 50 minutes.", "110\\text{ minutes}", True),
    ("The movie runs 1 hour and 50 minutes.", "1\\text{ hour}", False),
    ("The movie runs 1 hour and 50 minutes.", "50\\text{ minutes}", False),
    ("The movie runs 1 hour and 50 minutes.", "1", False),
    ("So the relay team needs 3 h 20 min.", "\\frac{10}{3}\\text{ hours}", True),
    ("So the relay team needs 3 h 20 min.", "3\\text{ hours}", False),
    ("The shelf is 5 feet 6 inches tall.", "66\\text{ inches}", True),
    ("The shelf is 5 feet 6 inches tall.", "5.5\\text{ feet}", True),
    ("The shelf is 5 feet 6 inches tall.", "5\\text{ feet}", False),
    ("**The parcel weighs 2 kg 250 g.**", "2.25\\text{ kg}", True),
    ("**The parcel weighs 2 kg 250 g.**", "250\\text{ g}", False),
    ("The movie runs 110 minutes, or 1 hour and 50 minutes.", "110\\text{ minutes}", True),
    ("The movie runs 1 hour and 50 minutes, or 110 minutes.", "110\\text{ minutes}", True),
    ("The movie runs 1 hour and 50 minutes, or 110 minutes.", "1\\text{ hour}", False),
    # amounts in one unit, or in units that do not shrink, are a list, never summed
    ("The two legs are 3 cm and 4 cm.", "7\\text{ cm}", False),
    ("The two rides take 20 minutes and 1 hour.", "80\\text{ minutes}", False),
    # cents and dollars are one kind of amount: compared converted, never by the bare number
    ("Buying five pencils at 45 cents each costs 225 cents.", "\\$2.25", True),
    ("Buying five pencils at 45 cents each costs 225 cents.", "\\$225", False),
    ("The stamps cost $\\$1.80$ in all.", "180\\text{ cents}", True),
    ("The stamps cost $\\$1.80$ in all.", "1.80\\text{ cents}", False),
    ("The change she gets back is 75¢.", "\\$0.75", True),
    ("The change she gets back is 75¢.", "\\$75", False),
    ("Altogether she saved 4 dollars and 50 cents.", "\\$4.50", True),
    ("Altogether she saved 4 dollars and 50 cents.", "\\$4", False),
    ("Each ticket costs 3.50 dollars.", "\\$3.50", True),
    # fraction characters are fractions, after a whole number a mixed number
    ("The recipe calls for 1¾ cups of milk.", "\\frac74", True),
    ("The recipe calls for 1¾ cups of milk.", "1", False),
    ("The recipe calls for 1¾ cups of milk.", "\\frac34", False),
    ("Each friend gets ⅓ of the pizza.", "\\frac13", True),
    ("Each friend gets ⅓ of the pizza.", "3", False),
    ("The drive takes 1½ hours.", "90\\text{ minutes}", True),
    ("The drive takes 1½ hours.", "1\\text{ hour}", False),
]


@pytest.mark.parametrize("prediction, reference, expected", CASES)
def test_units_times_and_notation(prediction, reference, expected):
    result = grade(prediction, reference, timeout=30)
    assert result.is_correct is expected, result


@pytest.mark.parametrize("text, parsed", [
    ("15 m/s", (15, "speed", 1)), ("54\\text{ km/h}", (54, "speed", Fraction(5, 18))),
    ("$1.5$ hours", (Fraction(3, 2), "time", 3600)), ("2 ft", (2, "length", Fraction(3048, 10000))),
    ("2 1/2 hours", (Fraction(5, 2), "time", 3600)),
    ("1 hour and 50 minutes", (110, "time", 60)), ("5 ft 6 inches", (66, "length", Fraction(254, 10000))),
    ("350 cents", (350, "money", 1)), ("\\$3.50", (Fraction(7, 2), "money", 100)),
    ("$3.50", (Fraction(7, 2), "money", 100)), ("75¢", (75, "money", 1)), ("4 dollars and 50 cents", (450, "money", 1)),
    ("3 m and 4 m", None), ("20 minutes and 1 hour", None), ("2 hours and 15 kg", None), ("$3$", None),
    ("12 in", None), ("12", None), ("12 apples", None), ("3 m^2", None),
])
def test_quantity(text, parsed):
    assert quantity(text) == parsed


@pytest.mark.parametrize("text, minute", [
    ("2:30 pm", 870), ("2:30\\text{ PM}", 870), ("12:10 a.m.", 10), ("12:10 pm", 730), ("14:30", 870),
    ("0:05", 5), ("3 PM", 900), ("2:30", None), ("13:30 pm", None), ("2:75 am", None), ("3", None),
])
def test_clock_minutes(text, minute):
    assert clock_minutes(text) == minute


def test_quantities_verdict_decides_only_units_of_one_kind_that_differ():
    assert quantities_verdict("90 minutes", "1.5\\text{ hours}") is True
    assert quantities_verdict("90 minutes", "90\\text{ hours}") is False
    assert quantities_verdict("90 minutes", "90\\text{ minutes}") is None  # same unit: compared as usual
    assert quantities_verdict("5 m", "5\\text{ min}") is None  # metres against minutes: no conversion
    assert quantities_verdict("90", "90\\text{ minutes}") is None
    # an amount in two units is compared converted, also against the reference's unit
    assert quantities_verdict("1 hour and 50 minutes", "110\\text{ minutes}") is True
    assert quantities_verdict("1 hour and 50 minutes", "150\\text{ minutes}") is False
    assert quantities_verdict("350 cents", "\\$3.50") is True
    assert quantities_verdict("350 cents", "\\$350") is False


def test_unit_read_after_the_answers_last_mention():
    assert with_unit_after("It takes $\\frac{1}{12}$ of a day, that is 2 hours.", "2") == "2 hours"
    assert with_unit_after("12 minutes per lap, so the total is $\\boxed{36}$.", "36") == "36"
    assert with_unit_after("She arrives at 4:05 p.m. sharp.", "4:05") == "4:05 p.m."
    assert with_unit_after("The total is 12 in all.", "12") == "12"
    assert with_unit_after("Each costs 70 cents, so five cost 350 cents.", "350") == "350 cents"


def test_repeating_decimal_and_superscripts():
    assert repeating_decimal("3 ÷ 7 = 0.428571428571...", "0.428571428571") == "0.\\overline{428571}"
    assert repeating_decimal("", "0.58333\\ldots") == "0.58\\overline{3}"
    assert repeating_decimal("The value is 0.5833.", "0.5833") is None
    assert tidy("x² + 10⁻³") == "x^{2} + 10^{-3}"
    assert tidy("2½ cups and ¾ cup, 1⁄8 inch") == "2 1/2 cups and 3/4 cup, 1/8 inch"
