"""Training fixtures: the tiny model and small committed PROBLEMS / SAMPLES / STEP_LABELS stores built
from the toy task (correct samples are reference solutions, incorrect ones carry one injected error)."""
from __future__ import annotations

import random

import pytest

from mathray.core.schemas import PROBLEMS, SAMPLES, STEP_LABELS, to_table
from mathray.runtime.storage import ShardStore
from mathray.jobs.tiny_model import build_tiny_model
from mathray.core.toy import ToyTaskConfig, generate_problems, inject_error

NUM_PROBLEMS = 8


def toy_rows(n: int = NUM_PROBLEMS) -> list[dict]:
    return generate_problems(ToyTaskConfig(seed=0, num_train=n, num_test=0), "train")


def sample_row(p: dict, sample_id: int, text: str, correct: bool) -> dict:
    answer = text.rsplit("\\boxed{", 1)[-1].split("}")[0] if "\\boxed{" in text else None
    return {"problem_id": p["problem_id"], "sample_id": sample_id, "problem": p["problem"],
            "reference_answer": p["answer"], "prompt_hash": "test", "text": text, "answer": answer,
            "is_correct": correct, "grade_reason": "equal" if correct else "not-equal",
            "num_prompt_tokens": 10, "num_output_tokens": 20, "finish_reason": "stop",
            "cumulative_logprob": None, "generator": "tiny", "sampling_params_hash": "test", "seed": 0}


def build_samples(problems: list[dict], one_class_problems: int = 1) -> list[dict]:
    """Per problem: the reference solution (correct) and one injected-error solution (incorrect); the last
    ``one_class_problems`` problems only get incorrect samples (no pair possible)."""
    rng = random.Random(0)
    rows = []
    for i, p in enumerate(problems):
        steps = p["reference_solution"].split("\n")
        wrong = inject_error(steps, rng.randrange(len(steps) - 1), rng)
        # every other wrong sample stops before its answer line (a truncated, unanswered sample)
        wrong = "\n".join(wrong[:-1] if i % 2 else wrong)
        if i < len(problems) - one_class_problems:
            rows.append(sample_row(p, 0, p["reference_solution"], True))
        rows.append(sample_row(p, 1, wrong, False))
    return rows


def build_step_labels(problems: list[dict]) -> list[dict]:
    """PRM800K-style rows: the reference (all good) and an injected-error path cut after its first bad step;
    soft labels: 1.0 for good steps, 0.0 for the bad one."""
    rng = random.Random(1)
    rows = []
    for p in problems:
        steps = p["reference_solution"].split("\n")
        k = rng.randrange(len(steps) - 1)
        wrong = inject_error(steps, k, rng)[: k + 1]
        for sid, (st, hard) in enumerate([(steps, [1] * len(steps)), (wrong, [1] * k + [0])]):
            rows.append({"problem_id": p["problem_id"], "sample_id": sid, "problem": p["problem"], "steps": st,
                         "hard_labels": hard, "soft_labels": [float(h) for h in hard], "label_source": "test",
                         "rollouts": None, "tokens_generated": None, "metadata": None})
    return rows


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> str:
    return str(build_tiny_model(tmp_path_factory.mktemp("tiny_model") / "model"))


@pytest.fixture(scope="session")
def train_data(tmp_path_factory) -> dict:
    """URIs of committed PROBLEMS, SAMPLES and STEP_LABELS stores (local disk)."""
    root = tmp_path_factory.mktemp("train_data")
    problems = toy_rows()
    uris = {}
    for key, rows, schema in (("problems", problems, PROBLEMS), ("samples", build_samples(problems), SAMPLES),
                              ("step_labels", build_step_labels(problems), STEP_LABELS)):
        uris[key] = str(root / key)
        ShardStore(uris[key]).commit_shard("part-00000", to_table(rows, schema))
        ShardStore(uris[key]).write_manifest()
    return uris
