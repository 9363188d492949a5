import json
import random

import pyarrow as pa
import pytest

from mathray.grading.extract import last_boxed
from mathray.core.schemas import PROBLEMS, row_problem
from mathray.core.toy import (ToyTaskConfig, first_error, generate_problems, inject_error, make_problem,
                             misconception, parse_step, solve)

CFG = ToyTaskConfig(seed=3, num_train=400, num_test=200, min_ops=1, max_ops=4)
APPLY = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}


def expression_value(expression: str) -> int:
    """Independent check of the solver: Python's own precedence rules."""
    return eval(expression)  # the expression is digits and + - * only, produced by the generator


def test_same_config_same_rows_and_row_i_independent_of_count():
    rows = generate_problems(CFG, "train")
    assert rows == generate_problems(CFG, "train")
    fewer = generate_problems(CFG.model_copy(update={"num_train": 50}), "train")
    assert fewer == rows[:50]
    assert make_problem(CFG, "train", 123) == rows[123]
    other_seed = generate_problems(CFG.model_copy(update={"seed": 4}), "train")
    assert [r["problem"] for r in other_seed] != [r["problem"] for r in rows]


def test_train_and_test_share_no_expression():
    big = CFG.model_copy(update={"num_train": 3000, "num_test": 1000, "max_ops": 1, "max_operand": 9})
    train = {json.loads(r["metadata"])["expression"] for r in generate_problems(big, "train")}
    test = {json.loads(r["metadata"])["expression"] for r in generate_problems(big, "test")}
    assert len(test) > 20 and len(train) > 100  # a small space (~240 expressions): collisions would show up
    assert not train & test


def test_rows_fit_problems_schema():
    rows = generate_problems(CFG, "test")
    table = pa.Table.from_pylist(rows, schema=PROBLEMS)
    assert [row_problem(r, PROBLEMS) for r in table.to_pylist()] == [None] * len(rows)
    assert rows[7]["problem_id"] == "toy-test-000007"
    assert {r["source"] for r in rows} == {"toy"} and {r["subject"] for r in rows} == {"arithmetic"}
    assert len({r["problem_id"] for r in rows}) == len(rows)


@pytest.mark.parametrize("split", ["train", "test"])
def test_solution_format_and_arithmetic(split):
    for row in generate_problems(CFG, split):
        lines = row["reference_solution"].split("\n")
        meta = json.loads(row["metadata"])
        assert len(lines) == row["level"] + 1 == meta["ops"] + 1
        assert lines[-1] == f"The answer is \\boxed{{{row['answer']}}}."
        assert last_boxed(row["reference_solution"]) == row["answer"]
        for line in lines[:-1]:
            a, op, b, c = parse_step(line)
            assert APPLY[op](a, b) == c, line
            assert 0 <= c <= CFG.max_result
        assert int(row["answer"]) == parse_step(lines[-2])[3] == expression_value(meta["expression"])
        assert meta["expression"] in row["problem"]
        assert CFG.min_ops <= row["level"] <= CFG.max_ops


def test_difficulty_knobs():
    easy = ToyTaskConfig(num_train=200, min_ops=1, max_ops=1, max_operand=5, operators="+")
    rows = generate_problems(easy, "train")
    assert {r["level"] for r in rows} == {1}
    for r in rows:
        a, op, b, c = parse_step(r["reference_solution"].split("\n")[0])
        assert op == "+" and 1 <= a <= 5 and 1 <= b <= 5
    with pytest.raises(ValueError, match="min_ops=3 > max_ops=2"):
        ToyTaskConfig(min_ops=3, max_ops=2)
    with pytest.raises(ValueError, match="must be a non-empty subset"):
        ToyTaskConfig(operators="+/")
    with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
        generate_problems(easy, "validation")
    # 3 expressions (1 - 1, 2 - 1, 2 - 2), each in train with probability 0.001: train has none of them
    tiny_space = ToyTaskConfig(min_ops=1, max_ops=1, max_operand=2, operators="-", test_fraction=0.999)
    with pytest.raises(ValueError, match="too small"):
        generate_problems(tiny_space, "train")


def test_solve_does_multiplication_first():
    assert solve([7, 5, 3, 4], ["+", "*", "-"]) == [(5, "*", 3, 15), (7, "+", 15, 22), (22, "-", 4, 18)]
    assert solve([2, 3, 4], ["*", "*"]) == [(2, "*", 3, 6), (6, "*", 4, 24)]


def check_corrupted(original: list[str], corrupted: list[str], k: int) -> None:
    """First error exactly at k, every other step right given its operands, the final answer changed."""
    assert len(corrupted) == len(original)
    assert corrupted[:k] == original[:k]
    steps = [parse_step(s) for s in corrupted[:-1]]
    for i, (a, op, b, c) in enumerate(steps):
        assert (APPLY[op](a, b) == c) == (i != k), (i, corrupted)
    a, op, b, _ = steps[k]
    assert (a, op, b) == parse_step(original[k])[:3]  # the inputs of step k are still the right ones
    assert last_boxed(corrupted[-1]) == str(steps[-1][3]) != last_boxed(original[-1])


def test_inject_error_every_step_of_many_solutions():
    rng = random.Random(0)
    for row in generate_problems(CFG, "train")[:300]:
        original = row["reference_solution"].split("\n")
        for k in range(len(original) - 1):
            check_corrupted(original, inject_error(original, k, rng), k)


def test_inject_error_propagates_a_carried_value():
    original = ["5 * 3 = 15", "7 + 15 = 22", "22 - 4 = 18", "The answer is \\boxed{18}."]
    corrupted = inject_error(original, 0, random.Random(1))
    wrong = parse_step(corrupted[0])[3]
    assert wrong != 15
    assert corrupted[1] == f"7 + {wrong} = {7 + wrong}"
    assert corrupted[2] == f"{7 + wrong} - 4 = {7 + wrong - 4}"
    assert corrupted[3] == f"The answer is \\boxed{{{7 + wrong - 4}}}."


def test_inject_error_is_deterministic_by_rng_and_checks_its_input():
    steps = ["2 + 3 = 5", "5 * 1 = 5", "The answer is \\boxed{5}."]
    assert inject_error(steps, 0, random.Random(7)) == inject_error(steps, 0, random.Random(7))
    assert steps == ["2 + 3 = 5", "5 * 1 = 5", "The answer is \\boxed{5}."]  # input untouched
    with pytest.raises(ValueError, match="step_index 2 out of range for 2 arithmetic steps"):
        inject_error(steps, 2, random.Random(0))  # the answer line is not an arithmetic step
    with pytest.raises(ValueError, match="not an arithmetic step"):
        inject_error(["so the total is 5"], 0, random.Random(0))


def test_first_index_starts_later_rows_with_the_same_content():
    cfg = ToyTaskConfig(num_train=30, num_test=0, min_ops=1, max_ops=2, max_operand=9, max_result=99)
    rows = generate_problems(cfg, "train")
    later = generate_problems(cfg.model_copy(update={"num_train": 10, "first_index": 20}), "train")
    assert later == rows[20:30] and later[0]["problem_id"] == "toy-train-000020"


def test_distinct_rows_have_no_repeated_expression_and_skip_earlier_rows():
    import json

    cfg = ToyTaskConfig(num_train=400, num_test=200, min_ops=1, max_ops=2, max_operand=9, max_result=99)
    expr = lambda rows: [json.loads(r["metadata"])["expression"] for r in rows]  # noqa: E731
    plain = expr(generate_problems(cfg, "test"))
    assert len(set(plain)) < len(plain)          # this small space repeats expressions
    test = expr(generate_problems(cfg.model_copy(update={"distinct": True}), "test"))
    assert len(test) == len(set(test)) == 200
    ssft = set(expr(generate_problems(cfg, "train")))
    label = generate_problems(cfg.model_copy(update={"num_train": 100, "first_index": 400, "distinct": True}),
                              "train")
    assert len(label) == 100 and not ssft & set(expr(label))   # none of the first 400 rows' expressions
    assert all(int(r["problem_id"].split("-")[-1]) >= 400 for r in label)
    with pytest.raises(ValueError, match="distinct"):
        generate_problems(cfg.model_copy(update={"num_test": 5000, "distinct": True}), "test")


TAUGHT = ToyTaskConfig(seed=5, num_train=2000, num_test=300, min_ops=2, max_ops=4, max_operand=9, max_result=20,
                       operators="+-", misconception_share=0.2, misconception_rate=0.6)


def held_wrong_values(cfg: ToyTaskConfig) -> dict[tuple[int, str, int], int]:
    facts = {}
    for a in range(cfg.max_result + 1):
        for op in cfg.operators:
            for b in range(1, cfg.max_operand + 1):
                wrong = misconception(cfg, a, op, b)
                if wrong is not None:
                    facts[(a, op, b)] = wrong
    return facts


def test_misconceptions_are_a_fixed_share_of_facts_with_a_far_wrong_value():
    facts = held_wrong_values(TAUGHT)
    total = sum(1 for a in range(21) for op in "+-" for b in range(1, 10))
    assert 0.12 < len(facts) / total < 0.28                    # share 0.2 of 378 facts, drawn per fact
    for (a, op, b), wrong in facts.items():
        assert abs(wrong - APPLY[op](a, b)) == 10 and 0 <= wrong <= 20
    assert facts == held_wrong_values(TAUGHT.model_copy(update={"num_train": 5}))   # not a function of sizes
    assert held_wrong_values(TAUGHT.model_copy(update={"seed": 6})) != facts
    assert held_wrong_values(TAUGHT.model_copy(update={"misconception_share": 0.0})) == {}


def test_teacher_writes_held_values_at_its_rate_and_answers_stay_exact():
    held_facts = written_held = wrong_refs = 0
    for row in generate_problems(TAUGHT, "train"):
        expression = json.loads(row["metadata"])["expression"]
        assert int(row["answer"]) == expression_value(expression)    # the answer is the exact one
        for line in row["reference_solution"].split("\n")[:-1]:     # each step checked on its own operands
            a, op, b, c = parse_step(line)
            wrong = misconception(TAUGHT, a, op, b)
            assert c == APPLY[op](a, b) or c == wrong                # only held wrong values are ever written
            held_facts += wrong is not None
            written_held += wrong is not None and c == wrong
        wrong_refs += last_boxed(row["reference_solution"]) != row["answer"]
        assert first_error(TAUGHT, expression, row["reference_solution"])[1] in (None, "taught")
    assert held_facts > 300 and 0.55 < written_held / held_facts < 0.65   # rate 0.6 of the held facts
    assert wrong_refs > 0
    for row in generate_problems(TAUGHT, "test"):                     # test references are exact
        expression = json.loads(row["metadata"])["expression"]
        assert first_error(TAUGHT, expression, row["reference_solution"]) == (None, None)


@pytest.mark.parametrize("text, expected", [
    ("5 * 3 = 15\n7 + 15 = 22\n22 - 4 = 18\nThe answer is \\boxed{18}.", (None, None)),
    ("5 * 3 = 16\n7 + 16 = 23\n23 - 4 = 19\nThe answer is \\boxed{19}.", (0, "result")),
    ("5 * 3 = 15\n7 + 15 = 22\n22 - 4 = 17\nThe answer is \\boxed{17}.", (2, "result")),
    ("7 + 5 = 12\n12 * 3 = 36\n36 - 4 = 32\nThe answer is \\boxed{32}.", (0, "operands")),
    ("5 * 3 = 15\n7 + 15 = 22\nso 18\nThe answer is \\boxed{18}.", (2, "format")),
    ("5 * 3 = 15\n7 + 15 = 22\nThe answer is \\boxed{22}.", (2, "format")),     # a step missing
    ("5 * 3 = 15\n7 + 15 = 22\n22 - 4 = 18\nThe answer is \\boxed{19}.", (3, "answer")),
    ("5 * 3 = 15\n7 + 15 = 22\n22 - 4 = 18\nThe answer is \\boxed{18}.\nMore.", (4, "format")),
    ("5 * 3 = 15\n7 + 15 = 22\n22 - 4 = 18", (3, "format")),                     # no answer line
])
def test_first_error_by_hand(text, expected):
    assert first_error(ToyTaskConfig(), "7 + 5 * 3 - 4", text) == expected


def test_first_error_names_a_held_wrong_value_taught():
    (a, op, b), wrong = next(iter(held_wrong_values(TAUGHT).items()))
    text = f"{a} {op} {b} = {wrong}\nThe answer is \\boxed{{{wrong}}}."
    assert first_error(TAUGHT, f"{a} {op} {b}", text) == (0, "taught")
    other = APPLY[op](a, b) + (1 if wrong < APPLY[op](a, b) else -1)
    assert first_error(TAUGHT, f"{a} {op} {b}", f"{a} {op} {b} = {other}\nThe answer is \\boxed{{{other}}}.") == (
        0, "result")
