"""The embedded default task: synthetic multi-step integer arithmetic with step-by-step solutions.

A problem is an expression such as ``7 + 5 * 3 - 4`` in one of a few phrasings ("Compute 7 + 5 * 3 - 4.").
Its reference solution performs one operation per line, multiplications first (left to right), then
additions and subtractions left to right, and ends with ``The answer is \\boxed{18}.``::

    5 * 3 = 15
    7 + 15 = 22
    22 - 4 = 18
    The answer is \\boxed{18}.

Rows follow ``schemas.PROBLEMS`` (``source="toy"``, ``subject="arithmetic"``, ``level`` = number of
operations). Row i of a split is a pure function of (seed, split, i). Train and test never share an
expression: an expression belongs to the split its hash (with the seed) assigns it to, whatever
``num_train``/``num_test`` are; ``first_index`` starts a set at a later row and ``distinct`` skips rows whose
expression an earlier row already has (ids stay the row index). Difficulty is the number of operations
(``min_ops..max_ops``) and the operand range (``1..max_operand``); every intermediate result stays in
``0..max_result`` so the numbers a model sees are bounded.

``inject_error`` corrupts one step of a solution and recomputes every later step from the wrong value, so
process-label code can be tested against a known first error; ``first_error`` finds the first wrong line of
any solution against the exact arithmetic.

**A teacher with misconceptions** (``misconception_share > 0``): the training split's reference solutions are
written by a teacher who holds a wrong value for a fixed share of the facts ``a op b`` (the right value with
its tens moved by one) and writes it at ``misconception_rate``, computing on from it; the answers stay exact,
and so do the test split's references. A generator that learned these references makes confident mistakes
that vary between the samples of one problem and that its own token probabilities cannot flag, while an
evaluator trained on exactly graded samples can check each step against one memorised fact: the papers'
premise that checking is easier than writing (docs/methods.md section 7).

Sizing: ``scripts/size_tiny_model.py`` (numbers in benchmarks/RESULTS.md).

Usage::

    rows = generate_problems(ToyTaskConfig(num_train=20000), "train")
"""
from __future__ import annotations

import hashlib
import json
import random
import re
from typing import Callable, Literal

from pydantic import Field, model_validator

from mathray.config import StrictModel

Split = Literal["train", "test"]
PHRASINGS = ("Compute {e}.", "Evaluate {e}.", "What is {e}?", "Find the value of {e}.")
STEP_RE = re.compile(r"^(-?\d+) ([-+*]) (-?\d+) = (-?\d+)$")
ANSWER_LINE = "The answer is \\boxed{{{answer}}}."
_MAX_DRAWS = 10_000
_APPLY = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}


class ToyTaskConfig(StrictModel):
    # the teacher of the training split's reference solutions holds a wrong value for this share of the facts
    # ``a op b`` and writes it at ``misconception_rate`` (then computes on from it); answers stay exact
    misconception_share: float = Field(0.0, ge=0.0, le=1.0)
    misconception_rate: float = Field(0.5, ge=0.0, le=1.0)
    seed: int = 0
    num_train: int = 20000
    num_test: int = 500
    min_ops: int = Field(2, ge=1)
    max_ops: int = Field(4, ge=1)
    max_operand: int = Field(20, ge=2)      # operands are drawn from 1..max_operand
    max_result: int = Field(200, ge=2)      # every intermediate result lies in 0..max_result
    operators: str = "+-*"                  # any non-empty subset of "+-*"
    test_fraction: float = Field(0.2, gt=0.0, lt=1.0)  # share of the expression space reserved for test
    # rows first_index .. first_index + num_{train,test} - 1 of the split: e.g. verifier/PRM problems that
    # come after the SSFT problems (rows 0..num_train-1) in the same split, so they are not its rows
    first_index: int = Field(0, ge=0)
    # skip a row whose expression already appeared in an earlier row of the split (rows 0.. counted, also
    # those before first_index): test problems are then independent (a bootstrap over problems assumes it),
    # and label problems after the SSFT rows are problems the SSFT model never trained on
    distinct: bool = False

    @model_validator(mode="after")
    def _check(self) -> "ToyTaskConfig":
        if self.min_ops > self.max_ops:
            raise ValueError(f"min_ops={self.min_ops} > max_ops={self.max_ops}")
        if not self.operators or set(self.operators) - set(_APPLY):
            raise ValueError(f"operators={self.operators!r} must be a non-empty subset of '+-*'")
        return self


def solve(numbers: list[int], ops: list[str],
          result: Callable[[int, str, int], int] | None = None) -> list[tuple[int, str, int, int]]:
    """The solution steps ``(a, op, b, c)`` of ``n0 o0 n1 o1 ...``: ``*`` first, left to right. ``c`` is
    ``a op b``, or ``result(a, op, b)`` when given (a teacher's value); later steps compute from it."""
    items, ops, steps = list(numbers), list(ops), []
    while ops:
        i = ops.index("*") if "*" in ops else 0
        a, op, b = items[i], ops[i], items[i + 1]
        c = result(a, op, b) if result else _APPLY[op](a, b)
        steps.append((a, op, b, c))
        items[i : i + 2] = [c]
        del ops[i]
    return steps


def format_step(a: int, op: str, b: int, c: int) -> str:
    return f"{a} {op} {b} = {c}"


def format_solution(steps: list[tuple[int, str, int, int]]) -> str:
    lines = [format_step(*s) for s in steps]
    return "\n".join(lines + [ANSWER_LINE.format(answer=steps[-1][3])])


def _rng(*key: object) -> random.Random:
    digest = hashlib.sha256(":".join(map(str, key)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def misconception(cfg: ToyTaskConfig, a: int, op: str, b: int) -> int | None:
    """The wrong value the teacher holds for the fact ``a op b`` (the right value with its tens moved by one,
    kept in 0..max_result), or None when the teacher knows the fact; a fixed function of (seed, fact). A wrong
    value far from the right one keeps the generator's other facts sharp: near values (+-1) taught it that
    every result is uncertain by one."""
    if cfg.misconception_share == 0:
        return None
    rng = _rng(cfg.seed, "misconception", a, op, b)
    if rng.random() >= cfg.misconception_share:
        return None
    right = _APPLY[op](a, b)
    wrong = [right + d for d in (-10, 10) if 0 <= right + d <= cfg.max_result]
    return rng.choice(wrong) if wrong else None


def teacher_result(cfg: ToyTaskConfig, a: int, op: str, b: int, rng: random.Random) -> int:
    """What the teacher writes for ``a op b`` in one reference solution: the held wrong value at rate
    ``misconception_rate``, else the right one. One draw of ``rng`` per fact the teacher gets wrong."""
    wrong = misconception(cfg, a, op, b)
    if wrong is not None and rng.random() < cfg.misconception_rate:
        return wrong
    return _APPLY[op](a, b)


def split_of(expression: str, cfg: ToyTaskConfig) -> Split:
    """The split an expression belongs to; a fixed function of (seed, expression)."""
    digest = hashlib.sha256(f"{cfg.seed}:split:{expression}".encode()).digest()
    return "test" if int.from_bytes(digest[:8], "big") / 2**64 < cfg.test_fraction else "train"


def _draw(rng: random.Random, cfg: ToyTaskConfig):
    """One expression whose intermediate results all lie in 0..max_result, by rejection."""
    for _ in range(_MAX_DRAWS):
        k = rng.randint(cfg.min_ops, cfg.max_ops)
        numbers = [rng.randint(1, cfg.max_operand) for _ in range(k + 1)]
        ops = [rng.choice(cfg.operators) for _ in range(k)]
        steps = solve(numbers, ops)
        if all(0 <= s[3] <= cfg.max_result for s in steps):
            return numbers, ops, steps
    raise ValueError(f"no expression with all results in 0..{cfg.max_result} found in {_MAX_DRAWS} draws "
                     f"for {cfg}; raise max_result")


def make_problem(cfg: ToyTaskConfig, split: Split, index: int) -> dict:
    """Row ``index`` of ``split``: a PROBLEMS row, a pure function of (cfg, split, index)."""
    rng = _rng(cfg.seed, split, index)
    for _ in range(_MAX_DRAWS):  # draw until the expression belongs to this split
        numbers, ops, steps = _draw(rng, cfg)
        expression = " ".join(f"{n} {o}" for n, o in zip(numbers, ops)) + f" {numbers[-1]}"
        if split_of(expression, cfg) == split:
            break
    else:
        raise ValueError(f"no {split} expression found in {_MAX_DRAWS} draws: the expression space of {cfg} "
                         "is too small; raise max_operand/max_ops or widen operators")
    answer = str(steps[-1][3])
    if cfg.misconception_share > 0 and split == "train":
        steps = solve(numbers, ops, lambda a, op, b: teacher_result(cfg, a, op, b, rng))
    return {
        "problem_id": f"toy-{split}-{index:06d}",
        "source": "toy",
        "problem": rng.choice(PHRASINGS).format(e=expression),
        "reference_solution": format_solution(steps),
        "answer": answer,
        "subject": "arithmetic",
        "level": len(ops),
        "metadata": json.dumps({"ops": len(ops), "expression": expression, "seed": cfg.seed}),
    }


def generate_problems(cfg: ToyTaskConfig, split: Split) -> list[dict]:
    """``cfg.num_train`` or ``cfg.num_test`` PROBLEMS rows of the split from row ``cfg.first_index`` on (ids
    ``toy-<split>-<6 digits>``: the row index)."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    n = cfg.num_train if split == "train" else cfg.num_test
    if not cfg.distinct:
        return [make_problem(cfg, split, i) for i in range(cfg.first_index, cfg.first_index + n)]
    seen = {make_problem(cfg, split, i)["metadata"] for i in range(cfg.first_index)}
    out, i = [], cfg.first_index
    while len(out) < n:
        if i - cfg.first_index - len(out) > _MAX_DRAWS:
            raise ValueError(f"fewer than {n} distinct {split} expressions after row {cfg.first_index} for {cfg}")
        row = make_problem(cfg, split, i)
        i += 1
        if row["metadata"] not in seen:   # metadata = (ops, expression, seed): the expression decides
            seen.add(row["metadata"])
            out.append(row)
    return out


def parse_step(line: str) -> tuple[int, str, int, int]:
    """``"5 * 3 = 15"`` -> ``(5, "*", 3, 15)``; ValueError for any other line."""
    m = STEP_RE.match(line.strip())
    if not m:
        raise ValueError(f"not an arithmetic step: {line!r}")
    return int(m[1]), m[2], int(m[3]), int(m[4])


def inject_error(solution_steps: list[str], step_index: int, rng: random.Random) -> list[str]:
    """A copy of ``solution_steps`` (lines of a toy solution, the answer line last or absent) whose step
    ``step_index`` has a wrong result, and whose later steps compute correctly FROM that wrong value, so the
    first error is exactly at ``step_index`` and the final answer changes.

    Results flow by value: an operand of a later step is taken to be the most recent not-yet-used earlier
    result with the same value (how ``solve`` produces them). The wrong value is the right one moved by
    1..3 and kept >= 1, so it never vanishes through a multiplication; the final answer therefore differs.
    The answer line, if present, is rewritten to the new final result.
    """
    steps = list(solution_steps)
    has_answer = bool(steps) and "\\boxed" in steps[-1]
    arith = steps[:-1] if has_answer else steps
    if not 0 <= step_index < len(arith):
        raise ValueError(f"step_index {step_index} out of range for {len(arith)} arithmetic steps")
    parsed = [parse_step(s) for s in arith]
    live: list[tuple[int, int, int]] = []  # (original value, new value, step) of unused earlier results
    out = list(parsed)

    def take(value: int) -> int:
        for j in range(len(live) - 1, -1, -1):
            if live[j][0] == value:
                return live.pop(j)[1]
        return value  # a literal from the problem

    for i, (a, op, b, c) in enumerate(parsed):
        new_a, new_b = take(a), take(b)
        new_c = _APPLY[op](new_a, new_b)
        if i == step_index:
            deltas = [d for d in (-3, -2, -1, 1, 2, 3) if new_c + d >= 1]
            new_c = new_c + rng.choice(deltas)
        out[i] = (new_a, op, new_b, new_c)
        live.append((c, new_c, i))
    lines = [format_step(*s) for s in out]
    if has_answer:
        lines.append(ANSWER_LINE.format(answer=out[-1][3]))
    return lines


def first_error(cfg: ToyTaskConfig, expression: str, text: str) -> tuple[int | None, str | None]:
    """The first wrong line of a solution ``text`` to ``expression`` and its kind, or ``(None, None)`` for a
    correct solution. Kinds: ``taught`` (the right operands, the teacher's held wrong value), ``result``
    (another wrong result), ``operands`` (not the operation due next), ``format`` (a line that is not a step,
    a missing step or an extra line), ``answer`` (the answer line disagrees with the last result). Lines are
    checked in order, each against the operation due next on the values the solution itself wrote."""
    tokens = expression.split()
    items, ops = [int(t) for t in tokens[0::2]], tokens[1::2]
    lines = text.strip().split("\n")
    for index, line in enumerate(lines):
        if not ops:
            if line.strip() != ANSWER_LINE.format(answer=items[0]):
                return index, "answer" if "\\boxed" in line else "format"
            return (None, None) if index == len(lines) - 1 else (index + 1, "format")
        try:
            a, op, b, c = parse_step(line)
        except ValueError:
            return index, "format"
        i = ops.index("*") if "*" in ops else 0
        if (a, op, b) != (items[i], ops[i], items[i + 1]):
            return index, "operands"
        if c != _APPLY[op](a, b):
            return index, "taught" if c == misconception(cfg, a, op, b) else "result"
        items[i : i + 2] = [c]
        del ops[i]
    return len(lines), "format"
