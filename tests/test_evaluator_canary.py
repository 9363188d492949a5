"""The evaluator canary: on data where correctness is trivially visible (every wrong sample carries a marker in
the step that holds its error), a verifier, an ORM and a PRM trained by the training job's phases and trainers
(in this process: ``worker.run_local``; Ray Train's part is tested in tests/training/test_job.py) and scored by
the real scoring job rank the samples of one problem almost perfectly, and the PRM's lowest step is the
marked one. A path broken on purpose (step labels one step late; a scorer reading the other label token)
fails the same checks, so the checks can fail."""
from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest

from mathray.core import metrics, schemas
from mathray.core.label_tokens import LABELS_FILE
from mathray.core.steps import step_texts
from mathray.core.toy import ToyTaskConfig, generate_problems, inject_error
from mathray.jobs.evaluation import EvaluateConfig, run_evaluate
from mathray.jobs.scoring import ScoreConfig, ScorerConfig, run_score
from mathray.jobs.tiny_model import build_tiny_model
from mathray.jobs.training.config import TrainJobConfig
from mathray.jobs.training.worker import run_local
from mathray.runtime.models import COMPLETE_MARK, publish_model_dir
from mathray.runtime.storage import ShardStore, join, shard_name

pytestmark = pytest.mark.slow

MARKER = " #"               # appended to the wrong step's line; a single byte-level token of the tiny model
TASK = ToyTaskConfig(seed=11, num_train=160, num_test=30, min_ops=2, max_ops=4, max_operand=9, max_result=99)
SAMPLES_PER_PROBLEM = 4     # two correct, two wrong (each wrong one marked at its own random step)


def marked_samples(split: str) -> tuple[list[dict], list[dict]]:
    """SAMPLES rows and their STEP_LABELS rows. Step labels follow PRM800K's convention: a wrong solution is
    labelled up to its first error (good steps, then the marked step bad), nothing after it."""
    rng = random.Random(split)
    samples, labels = [], []
    for p in generate_problems(TASK, split):
        ref = p["reference_solution"].split("\n")
        for j in range(SAMPLES_PER_PROBLEM):
            marked = None if j < 2 else rng.randrange(len(ref) - 1)
            lines = ref if marked is None else inject_error(ref, marked, rng)
            if marked is not None:
                lines = [line + MARKER if i == marked else line for i, line in enumerate(lines)]
            text = "\n".join(lines)
            answer = text.rsplit("\\boxed{", 1)[1].split("}")[0]
            samples.append({
                "problem_id": p["problem_id"], "sample_id": j, "problem": p["problem"],
                "reference_answer": p["answer"], "prompt_hash": "canary", "text": text, "answer": answer,
                "is_correct": marked is None, "grade_reason": "equal" if marked is None else "not-equal",
                "num_prompt_tokens": 10, "num_output_tokens": 20, "finish_reason": "stop",
                "cumulative_logprob": None, "generator": "canary", "sampling_params_hash": "canary", "seed": 0})
            labels.append(step_labels(p, j, step_texts(text, "auto"), marked))
    return samples, labels


def step_labels(problem: dict, sample_id: int, steps: list[str], first_error: int | None) -> dict:
    """A STEP_LABELS row labelled up to ``first_error`` (bad), all good when it is None."""
    hard = [1] * len(steps) if first_error is None else [1] * first_error + [0]
    return {"problem_id": problem["problem_id"], "sample_id": sample_id, "problem": problem["problem"],
            "steps": steps[: len(hard)], "hard_labels": hard, "label_source": "canary",
            "first_error_step": first_error}


def commit(uri: str, rows: list[dict], schema) -> str:
    store = ShardStore(uri)
    store.commit_shard(shard_name(0), schemas.to_table(rows, schema))
    store.write_manifest()
    return uri


def shifted_one_step(samples: list[dict]) -> list[dict]:
    """The labels of a labeler off by one: the bad label on the step after the marked one."""
    out = []
    for s in samples:
        steps = step_texts(s["text"], "auto")
        marked = None if s["is_correct"] else marked_step(s)
        out.append(step_labels(s, s["sample_id"], steps, None if marked is None else marked + 1))
    return out


def marked_step(sample: dict) -> int:
    return next(i for i, t in enumerate(step_texts(sample["text"], "auto")) if t.endswith(MARKER.strip()))


def train(tmp: Path, name: str, task: str, base: str, data: dict) -> str:
    cfg = TrainJobConfig.model_validate({
        "task": task, "model": base, "output": str(tmp / name), "num_workers": 1,
        "data": {"max_len": 128, "per_problem": SAMPLES_PER_PROBLEM, **data},
        "optim": {"lr": 3e-3, "steps": 150, "batch_size": 16}, "checkpoint_every": 150,
        "report_to": ["none"], "log_every": 50})
    run_local(cfg)
    return join(cfg.output, "final")


def score(tmp: Path, name: str, samples: str, **models: str) -> list[dict]:
    out = str(tmp / f"scores_{name}")
    run_score(ScoreConfig(input=samples, output=out,
                          scorer=ScorerConfig(device="cpu", batch_size=32, max_length=256, **models)))
    return ShardStore(out).read_all().to_pylist()


def within_auroc(samples: list[dict], scores: list[dict], score) -> float:
    """Mean AUROC within the problems (every problem has both classes), as the report computes it."""
    by_key = {(s["problem_id"], s["sample_id"]): s for s in scores}
    groups: dict[str, tuple[list, list]] = {}
    for s in samples:
        g = groups.setdefault(s["problem_id"], ([], []))
        g[0].append(score(by_key[(s["problem_id"], s["sample_id"])]))
        g[1].append(s["is_correct"])
    return metrics.mean(metrics.within_problem_aurocs(list(groups.values())))


def marked_step_is_lowest(samples: list[dict], scores: list[dict]) -> float:
    """Share of wrong samples whose lowest PRM step score is their marked step."""
    by_key = {(s["problem_id"], s["sample_id"]): s["step_scores"] for s in scores}
    hits = []
    for s in samples:
        if not s["is_correct"]:
            steps = by_key[(s["problem_id"], s["sample_id"])]
            hits.append(min(range(len(steps)), key=steps.__getitem__) == marked_step(s))
    return sum(hits) / len(hits)


def prm_min(row: dict) -> float:
    return min(row["step_scores"])


@pytest.fixture(scope="module")
def canary(ray_cluster, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("canary")
    base = str(build_tiny_model(tmp / "base", seed=0))
    train_samples, train_labels = marked_samples("train")
    test_samples, _ = marked_samples("test")
    samples_uri = commit(str(tmp / "samples_train"), train_samples, schemas.SAMPLES)
    test_uri = commit(str(tmp / "samples_test"), test_samples, schemas.SAMPLES)
    labels_uri = commit(str(tmp / "labels"), train_labels, schemas.STEP_LABELS)
    shifted_uri = commit(str(tmp / "labels_shifted"), shifted_one_step(train_samples), schemas.STEP_LABELS)
    models = {"verifier": train(tmp, "verifier", "verifier", base, {"samples": [samples_uri]}),
              "orm": train(tmp, "orm", "orm", base, {"samples": [samples_uri]}),
              "prm": train(tmp, "prm", "prm", base, {"step_labels": [labels_uri]}),
              "prm_shifted": train(tmp, "prm_shifted", "prm", base, {"step_labels": [shifted_uri]})}
    scores = score(tmp, "good", test_uri, verifier=models["verifier"], orm=models["orm"], prm=models["prm"])
    return tmp, models, test_uri, test_samples, scores


def test_trained_evaluators_rank_within_problems_and_find_the_marked_step(canary):
    tmp, _, test_uri, samples, scores = canary
    measured = {"verifier": within_auroc(samples, scores, lambda r: r["verifier_score"]),
                "orm": within_auroc(samples, scores, lambda r: r["orm_score"]),
                "prm (min)": within_auroc(samples, scores, prm_min),
                "prm lowest step is the marked one": marked_step_is_lowest(samples, scores)}
    assert all(v >= 0.95 for k, v in measured.items() if k != "prm lowest step is the marked one"), measured
    assert measured["prm lowest step is the marked one"] >= 0.90, measured
    # the evaluation job reads the same scores into its evaluator table
    report = run_evaluate(EvaluateConfig(samples=test_uri, scores=str(tmp / "scores_good"),
                                         output=str(tmp / "report"), k=2, top_n=2, trials=5,
                                         bootstrap_resamples=50)).report
    within = {r["evaluator"]: r["within_auroc"] for r in report["evaluators"]}
    assert within["Verifier (S_cls)"] >= 0.95 and within["ORM"] >= 0.95 and within["PRM (min)"] >= 0.95


def test_canary_fails_on_labels_one_step_late(canary):
    tmp, models, test_uri, samples, _ = canary
    scores = score(tmp, "shifted", test_uri, prm=models["prm_shifted"])
    lowest = marked_step_is_lowest(samples, scores)
    assert lowest < 0.90, f"a PRM trained one step late still puts its lowest score on the marked step: {lowest}"


def test_canary_fails_when_the_scorer_reads_the_other_label(canary):
    """The verifier's export with its label tokens swapped: the scorer reads p(incorrect) as p(correct)."""
    tmp, models, test_uri, samples, _ = canary
    swapped = tmp / "verifier_swapped"
    shutil.copytree(models["verifier"], swapped, ignore=shutil.ignore_patterns(COMPLETE_MARK))
    labels = json.loads((swapped / LABELS_FILE).read_text())
    labels["verifier"] = labels["verifier"][::-1]
    (swapped / LABELS_FILE).write_text(json.dumps(labels))
    publish_model_dir(str(swapped))                      # marked complete again, as a published export
    scores = score(tmp, "swapped", test_uri, verifier=str(swapped))
    auroc = within_auroc(samples, scores, lambda r: r["verifier_score"])
    assert auroc < 0.95, f"the scorer read the other label token and still ranked the samples: {auroc}"
