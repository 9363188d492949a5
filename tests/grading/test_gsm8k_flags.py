"""Agreement with the correctness flags OpenAI published for real GSM8K model solutions (4 models per test
problem)."""
from __future__ import annotations

from helpers.data_dirs import expected_rows

from mathray.grading import grade

MODELS = ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification")


def test_agrees_with_published_flags(gsm8k_model_solutions, data_dir):
    rows = gsm8k_model_solutions
    assert len(rows) == expected_rows(data_dir, "gsm8k/example_model_solutions.jsonl")
    disagreements = []
    for i, row in enumerate(rows):
        gold = row["ground_truth"].rsplit("A:", 1)[-1].strip()
        for model in MODELS:
            sol = row[model]
            result = grade(sol["solution"], gold)
            if result.is_correct != sol["is_correct"]:
                disagreements.append((i, model, result.answer, gold, sol["is_correct"]))
    for d in disagreements:  # listed in the test output (pytest -rA / -s) for review
        print("disagreement:", d)
    total = len(rows) * len(MODELS)
    assert len(disagreements) <= 0.01 * total, disagreements
    # measured: 0 of 5276 (solutions end "A: <n>"; truncated ones have no answer and are flagged incorrect)
    assert disagreements == []
