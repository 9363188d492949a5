"""Answers followed by a chat closing (an offer of more help, an emoji, a tip, a "Next problem" block, a changed
scenario after a bold total), answers in a box that opens with a label, answers on a labelled last line ("Perimeter = 44"),
an alternative left open with "or possibly", rate units, a verdict word ("the function is even") and a count in
words before a set phrase; each with an equal case and a near miss; and answers of these forms cluster by value."""
from __future__ import annotations

import pytest

from mathray.grading import cluster_answers, extract_answer, grade

CASES = [
    # an offer of more help after the answer is set aside, numbers in it included
    ("So the smallest such prime is $p = 7$.\n\nLet me know if you want the same check for $p = 13$ as well!",
     "7", True),
    ("So the smallest such prime is $p = 7$.\n\nLet me know if you want the same check for $p = 13$ as well!",
     "13", False),
    ("The common ratio is $\\frac{2}{3}$. 🙂\n\nWould you like me to find the sum of the first 10 terms too?",
     "\\frac23", True),
    ("The common ratio is $\\frac{2}{3}$. 🙂\n\nWould you like me to find the sum of the first 10 terms too?",
     "10", False),
    ("Hence 45 handshakes take place. Feel free to ask for the count with 12 people!", "45", True),
    ("Hence 45 handshakes take place. Feel free to ask for the count with 12 people!", "12", False),
    ("Hope this helps! Adding the two parts, the total comes to 96.", "96", True),  # an opening courtesy
    ("So the remainder is **4**. ✨\n\nIf you want, I can walk through the modular arithmetic for 7 too.", "4", True),
    ("So the remainder is **4**. ✨\n\nIf you want, I can walk through the modular arithmetic for 7 too.", "7", False),
    ("The first part is 12. If you want the total, add the 8 from the second part to get 20.", "20", True),
    # a tip after the answer is an aside, numbers in it included; a line that labels a tip amount is a result
    ("So you need **14 rolls** of tape.\n\nPro tip: buy 2 or 3 spare rolls in case some tear! 📦", "14", True),
    ("So you need **14 rolls** of tape.\n\nPro tip: buy 2 or 3 spare rolls in case some tear! 📦", "3", False),
    ("The painted area is 52 square meters. Quick tip: one liter covers about 10 of them, so get 6 liters.", "52",
     True),
    ("The painted area is 52 square meters. Quick tip: one liter covers about 10 of them, so get 6 liters.", "6",
     False),
    ("The meal costs $40.\nTip: 15% of $40 = $6.", "6", True),
    # a changed scenario after a bold total is set aside
    ("Costs:\n1. Shirt: $20\n2. Shoes: $35\n3. **Total: $55**\n\nIf she also buys socks for $5, the total would be "
     "$60.", "55", True),
    ("Costs:\n1. Shirt: $20\n2. Shoes: $35\n3. **Total: $55**\n\nIf she also buys socks for $5, the total would be "
     "$60.", "60", False),
    # a box that opens with a label in text holds the answer after it
    ("$$\\boxed{\\text{The answer is } 64}$$", "64", True),
    ("$$\\boxed{\\text{The answer is } 64}$$", "46", False),
    ("$\\boxed{\\text{Final answer: } x = 3}$", "3", True),
    # a "Next problem" block (bold, or a markdown heading) is a new turn
    ("The probability is $\\frac{5}{36}$.\n\n**Next problem:** Two dice are rolled. What is the probability that "
     "their sum is 7? **Solution:** $\\frac{6}{36} = \\frac16$", "\\frac{5}{36}", True),
    ("The probability is $\\frac{5}{36}$.\n\n**Next problem:** Two dice are rolled. What is the probability that "
     "their sum is 7? **Solution:** $\\frac{6}{36} = \\frac16$", "\\frac16", False),
    ("Therefore $m + n = 250$.\n\n### Another problem: find $m - n$. Answer: 12", "250", True),
    ("Therefore $m + n = 250$.\n\n### Another problem: find $m - n$. Answer: 12", "12", False),
    # a labelled result on the last line states its value; a truncated step line states nothing
    ("First the width: $w = 7$. Then the length is $2w + 1 = 15$.\n\nPerimeter = 44", "44", True),
    ("First the width: $w = 7$. Then the length is $2w + 1 = 15$.\n\nPerimeter = 44", "15", False),
    ("The tank drains 3 L per minute and starts with 90 L.\n\nTime: 30 minutes", "30", True),
    ("The tank drains 3 L per minute and starts with 90 L.\n\nTime: 30 minutes", "90", False),
    ("We first add the two numbers.\nStep 2: multiply 12 by", "12", False),
    # "or possibly"/"or perhaps" with a value leaves an alternative open; without a value it does not
    ("The count is 40, or possibly 41 if both endpoints are included.", "40", False),
    ("The count is 40, or possibly 41 if both endpoints are included.", "41", False),
    ("I get $x = 3$, or perhaps $x = -3$; the problem does not say which sign.", "3", False),
    ("The count is 40, or perhaps more simply $4 \\cdot 10$.", "40", True),
    # a rate unit after the number is stripped; a quotient of variables is not a unit
    ("The pump delivers $\\boxed{12\\text{ L/min}}$.", "12", True),
    ("The pump delivers $\\boxed{12\\text{ L/min}}$.", "21", False),
    ("So the car's speed is $\\boxed{88 \\text{ ft/s}}$.", "88", True),
    ("$\\boxed{3\\, x/y}$", "3", False),
    # a sentence that ends in a verdict word states that word
    ("Checking $f(-x) = f(x)$ for every $x$, we find the function is even.", "\\text{even}", True),
    ("Checking $f(-x) = f(x)$ for every $x$, we find the function is even.", "\\text{odd}", False),
    ("Since $2^{11} - 1 = 2047 = 23 \\cdot 89$, the number is composite.", "\\text{composite}", True),
    ("Since $2^{11} - 1 = 2047 = 23 \\cdot 89$, the number is composite.", "89", False),
    ("By the ratio test the series converges.", "\\text{converges}", True),
    ("By the ratio test the series converges.", "\\text{diverges}", False),
    ("The sum of two odd numbers is even, so there are 14.", "\\text{even}", False),
    # a count in words before a set phrase is the answer; a set phrase alone is the set
    ("The count is zero; there are no real roots.", "0", True),
    ("The count is zero; there are no real roots.", "2", False),
    ("So the equation has no real roots.", "\\emptyset", True),
]


@pytest.mark.parametrize("prediction, reference, expected", CASES)
def test_chat_closings_and_stated_lines(prediction, reference, expected):
    result = grade(prediction, reference, timeout=30)
    assert result.is_correct is expected, result


def test_offer_and_emoji_are_set_aside_in_extraction():
    text = "The common ratio is $\\frac{2}{3}$. 🙂\n\nWould you like me to find the sum of the first 10 terms too?"
    assert extract_answer(text) == "\\frac{2}{3}"
    assert extract_answer("So $k = 4$. Let me know if you'd like the case $k = 5$ too.") == "k = 4"


def test_these_forms_cluster_by_value():
    texts = ["Perimeter = 44", "The perimeter is 44 cm. Let me know if you want it in inches!",
             "$\\boxed{44\\text{ cm/side}}$", "The perimeter is 44, or possibly 48."]
    assert cluster_answers([extract_answer(a) for a in texts]) == [0, 0, 0, 1]
