import json
import random

import pyarrow as pa
import pytest

from mathray.grading.extract import last_boxed
from mathray.core.schemas import PROBLEMS, split_valid
from mathray.core.toy import ToyTaskConfig, generate_problems, inject_error, make_problem, parse_step, solve

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
    valid, quarantined = split_valid(table.to_pylist(), PROBLEMS, "toy")
    assert len(valid) == len(rows) and not quarantined
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
    with pytest.raises(ValueError):
        ToyTaskConfig(min_ops=3, max_ops=2)
    with pytest.raises(ValueError):
        ToyTaskConfig(operators="+/")
    with pytest.raises(ValueError):
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
    with pytest.raises(ValueError):
        inject_error(steps, 2, random.Random(0))  # the answer line is not an arithmetic step
    with pytest.raises(ValueError):
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
