"""Small SAMPLES tables for scoring/evaluation tests: toy problems, N candidates each (the reference
solution and copies with one injected error), graded by exact answer match; committed with ShardStore."""
from __future__ import annotations

import random

from mathray.core import schemas
from mathray.grading import last_boxed
from mathray.runtime.storage import ShardStore, shard_name
from mathray.core.toy import ToyTaskConfig, generate_problems, inject_error


def sample_rows(num_problems: int, n: int, seed: int = 0, split: str = "test") -> list[dict]:
    rng = random.Random(seed)
    problems = generate_problems(ToyTaskConfig(seed=seed, num_train=0, num_test=num_problems), split)
    rows = []
    for p in problems:
        ref = p["reference_solution"].split("\n")
        for j in range(n):
            steps = ref if j % 3 == 0 else inject_error(ref, rng.randrange(len(ref) - 1), rng)
            if j == n - 1 and n > 1:
                steps = steps[:-1]    # no final answer line: nothing to extract
            text = "\n".join(steps)
            answer = last_boxed(text)
            rows.append({
                "problem_id": p["problem_id"], "sample_id": j, "problem": p["problem"],
                "reference_answer": p["answer"], "prompt_hash": "h", "text": text, "answer": answer,
                "is_correct": answer == p["answer"], "grade_reason": "equal" if answer == p["answer"] else (
                    "no-answer" if answer is None else "not-equal"),
                "num_prompt_tokens": 10, "num_output_tokens": 20, "finish_reason": "stop",
                "cumulative_logprob": -1.0, "generator": "tiny-generator@test", "sampling_params_hash": "sp",
                "seed": seed})
    return rows


def commit_samples(uri: str, rows: list[dict], shards: int) -> ShardStore:
    store = ShardStore(uri)
    pids = sorted({r["problem_id"] for r in rows})
    for s in range(shards):
        mine = set(pids[s::shards])
        store.commit_shard(shard_name(s), schemas.to_table([r for r in rows if r["problem_id"] in mine],
                                                           schemas.SAMPLES))
    store.write_manifest()
    return store
