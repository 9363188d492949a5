from __future__ import annotations

import pytest

from helpers.data_dirs import expected_rows

from mathray.grading import extract_answer, extract_reference, grade, last_boxed


@pytest.mark.parametrize("text, expected", [
    (r"so $\boxed{\frac{1}{2}}$.", r"\frac{1}{2}"),
    (r"first \boxed{1} then \boxed{2}", "2"),  # the last box counts; boxes are not merged
    (r"\boxed{\left\{ 1, \{2\} \right\}}", r"\left\{ 1, \{2\} \right\}"),
    (r"\fbox{7}", "7"),
    (r"The answer is $\boxed 5$.", "5"),
    (r"so \boxed{\frac{1}{2}", None),  # truncated inside the box
    ("We get 12.\n#### 1,234\n\nQuestion: next one\n#### 99", "1,234"),  # the first #### counts
    ("steps\n\n# Answer\n\n42\n", "42"),
    ("Thus the final answer is $\\frac{3}{4}$. I hope it is correct.", r"\frac{3}{4}"),
    ("The answer is 3.5.", "3.5"),
    ("The answer is 3 or 4.", "3 or 4"),
    ("She makes 9 * 2 = $18 every day\nA: 18", "18"),
    ("blah\n**12**", "12"),
    ("I could not work this one out.", None),
    ("Evelyn", "Evelyn"),  # a bare prediction is its own answer
    ("-5", "-5"),
    ("She has 5 apples and buys 7 more, and gives away 2.", None),  # several numbers, none linked: no guess
    ("", None),
    (None, None),
    ("Natalia sold 48/2 = 24 clips.\n24\nQuestion: Weng earns $12 an hour. The answer is 10", None),
    ("Final Answer: The largest $n$ is 34.", "34"),
    ("So the answer is $(7, 6)$. <|im_start|>user\nThe answer is 5.", "(7, 6)"),  # cut at the chat token
    ("<think>maybe \\boxed{3}</think>\nThe answer is 4.", "4"),  # the answer follows the reasoning block
    ("So she earns \\$18.", "\\$18"),  # the only number of the last sentence
    ("So she earns \\$18 and then", None),  # no sentence end: a truncated output states nothing
    ("We conclude that there are 6 ways.", "6"),  # the item after the link
    ("So the number of boys is 9.\n\nI hope this helps!", "9"),
    ("#### 5 apples", "5 apples"),
    ("x = \\boxed{2} or x = \\boxed{3}", "2 or 3"),  # boxes joined by "or" form a list
    ("The final answer is:\n\\[\n\\frac{3}{4}\n\\]", "\\frac{3}{4}"),
])
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


def test_number_fallback_is_opt_in():
    text = "She has 5 apples and buys 7 more, so 12 in total"
    assert extract_answer(text) is None
    assert extract_answer(text, number_fallback=True) == "12"


def test_last_boxed_skips_escaped_braces():
    assert last_boxed(r"\boxed{\{1,2\}}") == r"\{1,2\}"


def test_overlong_text_has_no_answer():
    assert extract_answer("x" * 300_000 + r"\boxed{1}") is None
    assert grade("x" * 300_000 + r"\boxed{1}", "1").reason == "too-long"


def test_math500_reference_answers(math500_rows, data_dir):
    rows = math500_rows
    assert len(rows) == expected_rows(data_dir, "math500/test.jsonl")
    wrong = [(r["unique_id"], g.answer, r["answer"]) for r in rows
             if not (g := grade(r["solution"], r["answer"])).is_correct]
    assert wrong == []


def test_gsm8k_reference_answers(gsm8k_rows, data_dir):
    rows = gsm8k_rows
    assert len(rows) == expected_rows(data_dir, "gsm8k/test.jsonl")
    wrong = []
    for r in rows:
        gold = r["answer"].split("####")[-1].strip()
        if not grade(r["answer"], gold).is_correct or extract_reference(r["answer"]) != gold:
            wrong.append((r["question"][:40], gold))
    assert wrong == []


@pytest.mark.parametrize("text, expected", [
    # reasoning blocks: the answer after the block; the block itself only when nothing follows it
    ("<think>\nIt could be 30. No: 5 * 7 = 35.\n</think>\n\nSo the answer is 35.", "35"),
    ("<think>\nIt could be 30. No: 5 * 7 = 35, so the answer is 35.\n</think>\n", "35"),
    ("<think>\nSo the answer is 9", "9"),  # an unclosed block is all the model wrote
    ("<thinking>\n\\boxed{2}\n</thinking>\n**Answer:** 3", "3"),
    ("<|begin_of_thought|>\nguess 11\n<|end_of_thought|>\n<|begin_of_solution|>\nThe answer is 12.\n"
     "<|end_of_solution|>\nQuestion: next", "12"),
    ("◁think▷maybe 4◁/think▷The answer is $5$.", "5"),
    ("<|channel|>analysis<|message|>Answer 6.<|end|><|start|>assistant<|channel|>final<|message|>The answer is 7.",
     "7"),
    # self-corrections: the corrected statement wins, a confirming check changes nothing
    ("The answer is 9.\n\nWait, I made an error: the last term is 5, so the sum is 11.", "11"),
    ("So the answer is $\\boxed{40}$.\n\nOops, I doubled the wrong side: the perimeter is 2(8 + 6) = 28.", "28"),
    ("The answer is 18.\n\nHmm, that's wrong. Recounting, there are 17 tiles.", "17"),
    ("The answer is 18.\n\nLet me check: 9 * 2 = 18. Yes, 18 is right.", "18"),
    ("The answer is 18.\n\nWait, I made an error", "18"),  # the correction states nothing: the earlier answer
    # hypotheticals after the answer sentence
    ("She bakes 4 trays of 9, so she has 36 cookies. Had she baked 5 trays, she would have 45.", "36"),
    ("So he walks 12 miles. If he had walked 3 more miles each day, he would have walked 21.", "12"),
    ("The bill is $40, but if they had split it five ways each would pay $8.", "$40"),
    ("If she sells 4 more boxes, then she will have sold 4 + 9 = 13 boxes.", "13"),  # a computing conditional
    ("The rent is $900 a month. Supposing it rose by 10%; they would pay $990.", "$900"),
    # prose equations, set phrases, number phrases
    ("Therefore the plane is 3x + 2y - z - 6=0.", "3x + 2y - z - 6=0"),
    ("Hence the total is 4 + 5 = 9.", "9"),
    ("The equation has no real solutions.", "no real solutions"),
    ("So there are $3$ values of $n$ for which the system has no solutions.", "3"),
    ("Thus the sequence converges for all real numbers.", "all real numbers"),
    ("The answer is four fifths.", "four fifths"),
    ("He has one hundred and five stamps.", "one hundred and five"),
])
def test_extract_reasoning_model_endings(text, expected):
    assert extract_answer(text) == expected


@pytest.mark.parametrize("text, reference, correct", [
    # a conditional or contrast clause with would/could/might after the answer is set aside
    ("The fence is 64 feet long, though if each side were 3 feet longer it would be 76 feet.", "64", True),
    ("The fence is 64 feet long, though if each side were 3 feet longer it would be 76 feet.", "76", False),
    ("So she saves $35 a week; had she skipped lunch too, she'd save $50.", "35", True),
    ("So she saves $35 a week; had she skipped lunch too, she'd save $50.", "50", False),
    ("Each box holds 24 pens — and if the boxes were bigger they could hold 30.", "24", True),
    ("The ride costs $6, whereas a taxi would cost $15.", "6", True),
    ("The ride costs $6, whereas a taxi would cost $15.", "15", False),
    # a clock time or a ratio is one item; the colon between its digits links nothing
    ("So the train departs at 10:20. Had it been on time, it would have left at 10:05.", "10:20", True),
    ("So the train departs at 10:20.", "20", False),
    ("Hence the ratio of red to blue is 4:7.", "4:7", True),
    ("Hence the ratio of red to blue is 4:7.", "7", False),
    # "a total of" before the answer, in digits or words
    ("She read a total of three hundred sixty pages.", "360", True),
    ("She read a total of three hundred sixty pages.", "300", False),
    ("Altogether they collected a total of 88 shells.", "88", True),
    # a set phrase whose subject is a variable; "infinitely many" with a longer noun phrase
    ("Therefore $t$ can be any real number.", "\\mathbb{R}", True),
    ("Therefore $t$ can be any real number.", "(0,\\infty)", False),
    ("Hence $t = 3$ or any real number.", "\\mathbb{R}", False),
    ("So there are infinitely many triangles with this property.", "\\infty", True),
    ("So there are infinitely many triangles with this property.", "3", False),
    # digits and capitals in a sentence that states a base above ten
    ("Rewriting, the result is 3E in hexadecimal.", "3E_{16}", True),
    ("Rewriting, the result is 3E in hexadecimal.", "3F_{16}", False),
    ("In base 12 the sum is A7.", "A7_{12}", True),
    ("In base 12 the sum is A7.", "A7_{16}", False),
])
def test_clauses_times_totals_variables_and_letter_digits(text, reference, correct):
    assert grade(text, reference).is_correct is correct
