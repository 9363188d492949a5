"""Answers that are reconsidered after they are stated (also in a GSM8K ``####`` line), followed by a hypothetical or
a chat aside, committed to a choice letter (also a lowercase one in parentheses, or one named for the value just
before it), answered yes or no (also before a claim about a value), written with a base (also at the end of a chain),
or nested in set braces: the correct side and the near miss of each rule, from new examples."""
from __future__ import annotations

import pytest

from mathray.grading import compare, extract_answer, grade

CASES = [
    # a sentence that reconsiders ("Wait", "Hold on", "Actually") and concludes anew revises an earlier marker or box
    ("The deck has 36 cards, so the answer is 36.\n\nHold on — the box also held 4 jokers, so the total is 40.",
     "40", True),
    ("The deck has 36 cards, so the answer is 36.\n\nHold on — the box also held 4 jokers, so the total is 40.",
     "36", False),
    ("So $x = \\boxed{7}$.\n\nActually, the equation was $3x = 24$, so $x = 8$.", "8", True),
    ("So $x = \\boxed{7}$.\n\nActually, the equation was $3x = 24$, so $x = 8$.", "7", False),
    ("The mean is $\\boxed{14}$.\n\nWait — there are six scores, not five. Thus the mean is $\\frac{84}{6} = 14$... "
     "no, the sum is 90, so the mean is $15$.", "15", True),
    # a part that only checks does not revise, and one that concludes nothing new leaves the answer
    ("The answer is 45.\n\nWait, let me verify: $9 \\times 5 = 45$ and $45 / 3 = 15$. So it checks out.", "45", True),
    ("The answer is 45.\n\nWait, let me verify: $9 \\times 5 = 45$ and $45 / 3 = 15$. So it checks out.", "15", False),
    ("The number of edges is $\\boxed{12}$.\n\nActually, a cube also has 8 vertices.", "12", True),
    # a check that finds a contradiction does revise
    ("The answer is 19.\n\nWait, let me check: $4 \\cdot 19 = 76 \\ne 80$. So the answer is 20.", "20", True),
    ("The answer is 19.\n\nWait, let me check: $4 \\cdot 19 = 76 \\ne 80$. So the answer is 20.", "19", False),
    # admissions of an error are corrections even without "Wait"
    ("Three bags of 8 gives 24 marbles. The answer is 24.\n\nI forgot the 5 loose marbles: 24 + 5 = 29.",
     "29", True),
    ("Three bags of 8 gives 24 marbles. The answer is 24.\n\nI forgot the 5 loose marbles: 24 + 5 = 29.",
     "24", False),
    ("So there are $\\boxed{11}$ handshakes. I double-counted the host, so there are 10.", "10", True),
    # a later GSM8K "####" counts after a correction of the first; without one, the first counts (a run-on)
    ("She bakes 4 trays of 12 = <<4*12=48>>48 cookies.\n#### 48\n\nWait, she ate 3 of them, so 48 - 3 = 45.\n#### 45",
     "45", True),
    ("She bakes 4 trays of 12 = <<4*12=48>>48 cookies.\n#### 48\n\nWait, she ate 3 of them, so 48 - 3 = 45.\n#### 45",
     "48", False),
    ("He buys 3 packs of 6, so 3 * 6 = 18 eggs.\n#### 18\nA farmer has 10 cows and sells 4, keeping 6.\n#### 6",
     "18", True),
    ("He buys 3 packs of 6, so 3 * 6 = 18 eggs.\n#### 18\nA farmer has 10 cows and sells 4, keeping 6.\n#### 6",
     "6", False),
    # a changed scenario after the answer sentence is set aside
    ("Each ticket costs $9, so the family pays $45. If two more cousins came, they would pay $63.", "45", True),
    ("Each ticket costs $9, so the family pays $45. If two more cousins came, they would pay $63.", "63", False),
    ("She paid $24 with the coupon. Without the coupon, she would have paid $30.", "24", True),
    ("She paid $24 with the coupon. Without the coupon, she would have paid $30.", "30", False),
    ("Therefore Ana has 17 shells. If she finds 6 more next week, she'll have 23.", "17", True),
    ("Therefore Ana has 17 shells. If she finds 6 more next week, she'll have 23.", "23", False),
    # ... but a conditional that computes the result (no concluding sentence before it) is the answer
    ("Ana has 17 shells. If she finds 6 more, she will have 23.", "23", True),
    ("She saves 15 dollars a week, so in 4 weeks she saves 60 dollars.", "60", True),
    # a chat aside after the answer is set aside; one before any number is not
    ("The garden's area is 48 square meters. By the way, fencing it would take 28 meters.", "48", True),
    ("The garden's area is 48 square meters. By the way, fencing it would take 28 meters.", "28", False),
    ("The train covers 150 km. Fun fact: at that speed it would cross France in 9 hours!", "150", True),
    ("Sure! Great question. The area is $6 \\times 8 = 48$ square meters.", "48", True),
    # a commitment to a choice letter after a hedge
    ("Both (A) and (D) look plausible, but I'll go with (D).", "D", True),
    ("Both (A) and (D) look plausible, but I'll go with (D).", "A", False),
    ("It is B or E; I will pick option E.", "E", True),
    ("It's either (A) or (D).", "D", False),
    # a lowercase letter in parentheses is that choice letter
    ("Only the third graph passes the vertical line test, so the answer is (c).", "\\text{(C)}", True),
    ("Only the third graph passes the vertical line test, so the answer is (c).", "B", False),
    ("Thus the answer is (e) 35.", "E", True),
    ("Thus the answer is (e) 35.", "(D)", False),
    ("Thus the answer is (e) 35.", "35", True),
    ("The options are (A) 30, (B) 35, (C) 40, so the answer is (c) 35.", "C", False),
    # a letter written with a closing parenthesis only, or after "option"/"choice" with a colon, before its value
    ("Hence the right choice is D) $7\\sqrt{2}$.", "D", True),
    ("Hence the right choice is D) $7\\sqrt{2}$.", "C", False),
    ("So the answer is choice **C**: $\\frac{3}{8}$.", "(C)", True),
    ("So the answer is choice **C**: $\\frac{3}{8}$.", "(B)", False),
    # a letter named for the value right before it ("16, which corresponds to choice (C)") picks nothing when the
    # prediction's own options give that letter another value; an intermediate value before "so the answer is" does
    # not name the letter
    ("Choices: (A) 8 (B) 12 (C) 16 (D) 20\n\nThe perimeter is 4 × 4 = 16, which corresponds to choice **(B)**.",
     "B", False),
    ("Choices: (A) 8 (B) 12 (C) 16 (D) 20\n\nThe perimeter is 4 × 4 = 16, which corresponds to choice **(B)**.",
     "12", False),
    ("Choices: (A) 8 (B) 12 (C) 16 (D) 20\n\nThe perimeter is 4 × 4 = 16, which corresponds to choice **(C)**.",
     "C", True),
    ("Choices: (A) 8 (B) 12 (C) 16 (D) 20\n\nThe perimeter is 4 × 4 = 16, which corresponds to choice **(C)**.",
     "16", True),
    ("The options are (A) 3, (B) 5, (C) 7.\nThe root is $x = 5$, which is option (C).", "C", False),
    ("The options are (A) 3, (B) 5, (C) 7.\nThe root is $x = 5$, which is option (B).", "B", True),
    ("(A) 9 (B) 16 (C) 25\nThe side is 4, so the answer is (B).", "B", True),
    # a clause without a value that opens with a yes or no
    ("No, such a triangle cannot exist.", "\\text{No}", True),
    ("No, such a triangle cannot exist.", "\\text{Yes}", False),
    ("Yes, it can be done.", "No", False),
    ("None of the options work.", "No", False),
    # ... also when a value is the subject of the claim it makes; a value right after its verb is the answer
    ("Its digits sum to $3 + 4 + 5 = 12$, a multiple of 3.\n\nYes, 345 is divisible by 3.", "\\text{Yes}", True),
    ("Its digits sum to $3 + 4 + 5 = 12$, a multiple of 3.\n\nYes, 345 is divisible by 3.", "\\text{No}", False),
    ("Its digits sum to $3 + 4 + 5 = 12$, a multiple of 3.\n\nYes, 345 is divisible by 3.", "345", False),
    ("No, $x = -2$ isn't in the domain of $f$.", "No", True),
    ("No, $x = -2$ isn't in the domain of $f$.", "-2", False),
    ("No, the sum is 14.", "14", True),
    ("No, the sum is 14.", "\\text{No}", False),
    ("Is the total 44? No, 45.", "45", True),
    ("No, she still has 12 left.", "12", True),
    # a numeral with its base written is its value against a base-ten reference
    ("$372_8$", "250", True),
    ("$372_8$", "372", False),
    ("$372_8$", "372_8", True),
    ("The result is $1111_2$.", "15", True),
    ("$29_8$", "25", False),  # 9 is no octal digit
    ("5", "101_2", False),  # a reference in base 2 asks for base 2
    ("Converting, the sum is 5 in decimal.", "101_2", False),
    # ... also when the numeral ends a chain
    ("Adding in base 3: $12_3 + 21_3 = 110_3$.", "12", True),
    ("Adding in base 3: $12_3 + 21_3 = 110_3$.", "110", False),
    ("Adding in base 3: $12_3 + 21_3 = 110_3$.", "110_3", True),
    ("So $7 \\cdot 6 = 52_8$.", "42", True),
    ("So $7 \\cdot 6 = 52_8$.", "52", False),
    # digits stated in a base, restated in decimal, are in that base
    ("In base 5 the result is 44, which is 24 in decimal.", "24", True),
    ("In base 5 the result is 44, which is 24 in decimal.", "44", False),
    ("In base 5 the result is 44, which is 24 in decimal.", "44_5", True),
    # set braces nested deeper than an answer writes them are refused; a set of sets is not its element
    ("$\\boxed{\\{\\{\\{\\{\\{7\\}\\}\\}\\}\\}}$", "7", False),
    ("$\\boxed{\\{\\{7\\}\\}}$", "7", False),
    ("$\\boxed{\\{7\\}}$", "7", True),
    ("$\\boxed{\\{\\{1,2\\},\\{3\\}\\}}$", "\\{\\{3\\},\\{2,1\\}\\}", True),
]


@pytest.mark.parametrize("prediction,reference,expected", CASES)
def test_revisions_hypotheticals_asides_letters_replies_bases_nesting(prediction, reference, expected):
    result = grade(prediction, reference, timeout=30)
    assert result.is_correct is expected, (result, prediction, reference)


def test_extraction_of_revised_and_set_aside_answers():
    assert extract_answer("The answer is 45.\n\nHmm, actually the rows have 6 seats, so the total is 54.") == "54"
    assert extract_answer("The answer is 45.\n\nHmm, let me double-check: 5 rows of 9 is 45. Yes.") == "45"
    assert extract_answer("It has 12 legs. By the way, a spider has 8.") == "12"
    assert extract_answer("No, it cannot be tiled.") == "No"


def test_deeply_nested_set_braces_are_refused_by_compare():
    assert compare("\\{\\{\\{\\{\\{3\\}\\}\\}\\}\\}", "3").reason == "refused"
    assert compare("\\{\\{3\\}\\}", "\\{\\{3\\}\\}").equal
