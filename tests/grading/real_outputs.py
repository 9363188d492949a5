"""The labeled real-output set: (prediction text, reference answer, expected verdict, why).

The development set, from files under ``tests/grading/real_outputs/``:
- ``handwritten.jsonl``: answers and output endings written the way models and datasets write them, one
  or more per kind of the grader's rules (bare answers, Minerva few-shot endings, run-ons into a new turn,
  plain GSM8K sentences, currency, intervals and sets, inequalities, named tuples, matrices, values that
  need algebra) and the deliberate semantics (approximations, percent, bases, hedging), each with
  ``expected`` and ``why``.
- ``from_shared_data.jsonl``: real texts from a data folder (never copied here), named by source file,
  row and (GSM8K) model, with a ``variant`` that rewrites only how the final answer is written
  (``VARIANTS`` below), ``expected`` and ``why``. The GSM8K rows carry OpenAI's ``is_correct`` flag of the
  model solution as ``expected``. One flag is wrong: in row 454 the GSM8K gold itself is wrong (150 for
  "Marin and Nancy each eat 4 apples a day... in 30 days?", which is 240), so the models' 240 is flagged
  wrong. Graded against the dataset's reference that stays not equal (a grader cannot know); a row with
  the corrected ``reference`` 240 is graded correct. ``why`` says so on each of them.

``load_real_outputs(data_dir)`` materializes them (and ``reasoning_3.jsonl`` to ``reasoning_14.jsonl`` below) into
``Case`` tuples (the tests and benchmarks/grader.py use it). A folder of the full data sets gives every case;
tests/fixtures/data holds the rows of some of them (its ``source_rows.json`` maps each record to its row), and
the cases whose rows it lacks are left out.

``reasoning_<n>.jsonl`` (3 to 14) are part of the development set, read with the hand-written cases: endings of
reasoning-model and chat outputs (self-corrections, reasoning blocks, hypotheticals, equations, root lists,
choices, words, bases, units, clock times, nesting). Each was written as a held-out batch
(``heldout_reasoning_<n>.jsonl``) by someone who had not read the grader, graded once as one, and then joined
the set; its failures were then fixed, so every case must get its verdict. A label changed when or after a
batch joined was changed to follow the grader's documented semantics, and its ``why`` says so: a root listed
more often than in the reference is a set (equal); a numeral with its base written against a base-ten reference
names that value (equal); a base-ten value, or digits without their base, against a reference written in
another base does not give the numeral it asks for (not equal). benchmarks/RESULTS.md gives each batch's
held-out score.

``heldout_reasoning.jsonl`` and ``heldout_reasoning_2.jsonl`` (``load_earlier_batches()``) are earlier batches
of the same kinds whose failures were seen when the rules were written; benchmarks/grader.py reports them and
no test asserts them. ``heldout_reasoning_15.jsonl`` (``load_heldout()``) is the held-out batch: written and
labelled by hand independently of the rules for batch 14's failures, graded once by benchmarks/grader.py; no test
asserts its verdicts and no rule is tuned on it. It is merged separately; ``missing_heldout()`` names it while it
is absent.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tests.helpers.data_dirs import records_by_row

HERE = Path(__file__).resolve().parent / "real_outputs"
GSM8K_MODELS = ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification")


@dataclass(frozen=True)
class Case:
    prediction: str
    reference: str
    expected: bool
    kind: str
    why: str


def _read_jsonl(path: Path) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def _split_a_line(solution: str) -> tuple[str, str]:
    """(body, n) for a GSM8K example model solution that ends ``\\nA: n``."""
    body, n = solution.rsplit("\nA:", 1)
    return body.rstrip(), n.strip()


def _gsm8k_variant(variant: str, solution: str, next_row: dict) -> str:
    if variant == "as-written":
        return solution
    body, n = _split_a_line(solution)
    nxt = next_row["175b_verification"]["solution"]
    endings = {
        "minerva": f"\nFinal Answer: The final answer is {n}. I hope it is correct.",
        "boxed": f"\nTherefore, the answer is $\\boxed{{{n}}}$.",
        "answer-is": f"\nThe answer is {n}.",
        "hash": f"\n#### {n}",
        "plain-sentence": "." if not body.endswith(".") else "",
        "currency": f"\nSo the answer is ${n}.",
        "run-on-question": f"\nA: {n}\n\nQuestion: {next_row['question']}\nAnswer: {nxt}",
        "run-on-chat": (f"\nThe answer is {n}.<|im_end|>\n<|im_start|>user\n{next_row['question']}<|im_end|>\n"
                        f"<|im_start|>assistant\n{nxt}"),
    }
    return body + endings[variant]


def _last_box(solution: str) -> tuple[int, int]:
    """(start of ``\\boxed{``, index of its closing brace) of the last box."""
    k = solution.rfind("\\boxed{")
    depth = 0
    for j in range(k + len("\\boxed"), len(solution)):
        depth += {"{": 1, "}": -1}.get(solution[j], 0)
        if depth == 0:
            return k, j
    raise ValueError("unclosed box")


def _math_variant(variant: str, solution: str) -> str:
    """MATH solutions as models without a box write them: the last ``\\boxed{X}`` as plain ``X``
    (``unboxed``), or that plus a Minerva few-shot final line (``minerva``)."""
    if variant == "as-written":
        return solution
    k, j = _last_box(solution)
    answer = solution[k + len("\\boxed{") : j]
    unboxed = solution[:k] + answer + solution[j + 1 :]
    if variant == "unboxed":
        return unboxed
    if variant == "minerva":
        return f"{unboxed}\nFinal Answer: The final answer is ${answer}$. I hope it is correct."
    raise ValueError(variant)


VARIANTS = {
    "gsm8k": ("as-written", "minerva", "boxed", "answer-is", "hash", "plain-sentence", "currency",
              "run-on-question", "run-on-chat"),
    "math500": ("as-written", "unboxed", "minerva"),
}


def _shepherd_text(row: dict) -> str:
    """A Math-Shepherd solution as the policy wrote it: the question's steps without the ``ки`` tags."""
    text = row["input"]
    return text[text.index("Step 1:") :].replace(" ки", "").replace("ки", "")


def _prm800k_text(row: dict) -> str:
    """The PRM800K phase-1 solution the labeler settled on: each step's chosen completion, in order."""
    steps = []
    for step in row["label"]["steps"]:
        k = step.get("chosen_completion")
        if k is not None:
            steps.append(step["completions"][k]["text"])
        elif step.get("human_completion"):  # the labeler wrote this step
            steps.append(step["human_completion"]["text"])
        else:  # gave up here
            break
    return "\n\n".join(steps)


DEVELOPMENT_BATCHES = tuple(f"reasoning_{n}" for n in range(3, 15))
EARLIER_BATCHES = ("heldout_reasoning", "heldout_reasoning_2")
HELDOUT_BATCHES = ("heldout_reasoning_15",)


def load_real_outputs(data_dir: Path) -> list[Case]:
    """Every case of the set (hand-written first), with texts rebuilt from ``data_dir``."""
    cases = [Case(r["prediction"], r["reference"], r["expected"], r["kind"], r["why"])
             for name in ("handwritten", *DEVELOPMENT_BATCHES)
             for r in _read_jsonl(HERE / f"{name}.jsonl")]
    cache: dict[str, tuple[dict[int, dict], int]] = {}

    def rows(source: str) -> tuple[dict[int, dict], int]:
        if source not in cache:
            cache[source] = records_by_row(data_dir, source)
        return cache[source]

    for r in _read_jsonl(HERE / "from_shared_data.jsonl"):
        src, i, variant = r["source"], r["row"], r["variant"]
        data, rows_in_source = rows(src)
        # a GSM8K case also reads the following row (run-on variants); a fixture folder holds only some rows
        needed = {i, r.get("reference_row", i), (i + 1) % rows_in_source if src.startswith("gsm8k/") else i}
        if not needed <= data.keys():
            continue
        if src == "gsm8k/example_model_solutions.jsonl":
            row = data[i]
            text = _gsm8k_variant(variant, row[r["model"]]["solution"], data[(i + 1) % rows_in_source])
            reference = r.get("reference") or row["ground_truth"].rsplit("A:", 1)[-1].strip()
        elif src == "math500/test.jsonl":
            text = _math_variant(variant, data[i]["solution"])
            reference = data[r.get("reference_row", i)]["answer"]
        elif src == "math_shepherd_sample/samples_math-shepherd.jsonl":
            text = _shepherd_text(data[i])
            reference = r["reference"]
        elif src == "prm800k_sample/samples_prm800k.jsonl":
            question = data[i]["question"]
            text = question["pre_generated_answer"] if variant == "pre-generated-answer" else _prm800k_text(data[i])
            reference = question["ground_truth_answer"]
        else:
            raise ValueError(f"unknown source {src}")
        cases.append(Case(text, reference, r["expected"], f"{src.split('/')[0]}:{variant}", r["why"]))
    return cases


def _batches(names: tuple[str, ...]) -> dict[str, list[Case]]:
    return {name: [Case(r["prediction"], r["reference"], r["expected"], r["kind"], r["why"])
                   for r in _read_jsonl(HERE / f"{name}.jsonl")] for name in names}


def load_earlier_batches() -> dict[str, list[Case]]:
    """The earlier reasoning batches by name: seen, reported, not asserted (see the module docstring)."""
    return _batches(EARLIER_BATCHES)


def missing_heldout() -> list[Path]:
    """The held-out batch files that are not there yet."""
    return [HERE / f"{name}.jsonl" for name in HELDOUT_BATCHES if not (HERE / f"{name}.jsonl").exists()]


def load_heldout() -> dict[str, list[Case]]:
    """The held-out batches by name (see the module docstring)."""
    return _batches(HELDOUT_BATCHES)
