"""The first-error evaluation: step-labelled solutions scored by a PRM, then ProcessBench's F1 per subset.
Expected values come from hand-worked cases (tests/test_first_error.py works the same metric by hand) and, for
the scored path, from the same steps scored as plain samples (an independent input path)."""
import json

import pytest
from helpers.score_data import commit_samples

from mathray.core import schemas
from mathray.core.first_error import NO_ERROR
from mathray.jobs.scoring import ScoreConfig, ScorerConfig, run_score
from mathray.jobs.step_evaluation import StepEvalConfig, run_step_evaluation
from mathray.jobs.tiny_model import build_tiny_model
from mathray.runtime.errors import InputMismatch, InputNotReady
from mathray.runtime.storage import ShardStore, exists, join


def label_row(pid: str, sid: int, hard: list[int], first_error: int | None = None, subset: str | None = None,
              steps: list[str] | None = None) -> dict:
    return {"problem_id": pid, "sample_id": sid, "problem": "What is 2 + 3 * 4?",
            "steps": steps or [f"step {i}" for i in range(len(hard))], "hard_labels": hard, "soft_labels": None,
            "label_source": "processbench", "rollouts": None, "tokens_generated": None,
            "metadata": json.dumps({"subset": subset}) if subset else None, "first_error_step": first_error,
            "prompt": None}


def commit(uri: str, rows: list[dict], schema) -> None:
    store = ShardStore(uri)
    store.commit_shard("part-00000", schemas.to_table(rows, schema))
    store.write_manifest()


def score_row(pid: str, sid: int, steps: list[float]) -> dict:
    return {"problem_id": pid, "sample_id": sid, "verifier_score": None, "orm_score": None, "step_scores": steps,
            "scorer": "prm=test"}


# subset "a": tests/test_first_error.py's MIXED cases at 0.5 (F1 4/7); subset "b": one exact, one clean (F1 1)
LABELS = [label_row("p0", 0, [1, 1, 0, 0], subset="a"), label_row("p1", 0, [1, 0, 0], first_error=1, subset="a"),
          label_row("p2", 0, [0], subset="a"), label_row("p3", 0, [1, 1], subset="a"),
          label_row("p4", 0, [1, 1], subset="a"),
          label_row("p5", 0, [0], subset="b"), label_row("p6", 0, [1], subset="b"),
          label_row("p7", 0, [1, 1, 1], subset="b")]                     # labelled, never scored
SCORES = [score_row("p0", 0, [0.9, 0.8, 0.2, 0.1]), score_row("p1", 0, [0.4, 0.3, 0.9]), score_row("p2", 0, [0.1]),
          score_row("p3", 0, [0.9, 0.9]), score_row("p4", 0, [0.9, 0.45]),
          score_row("p5", 0, [0.1]), score_row("p6", 0, [0.9])]


def test_report_by_subset_at_the_threshold(tmp_path):
    commit(str(tmp_path / "labels"), LABELS, schemas.STEP_LABELS)
    commit(str(tmp_path / "scores"), SCORES, schemas.SCORES)
    cfg = StepEvalConfig(labels=str(tmp_path / "labels"), scores=str(tmp_path / "scores"))
    rep = run_step_evaluation(cfg).report
    assert rep["solutions"] == 7 and rep["unscored"] == 1
    a, b = rep["at_threshold"]["subsets"]["a"], rep["at_threshold"]["subsets"]["b"]
    assert (a["num_error"], a["num_correct"]) == (3, 2)
    assert a["f1"] == pytest.approx(4 / 7) and b["f1"] == 1.0
    assert rep["at_threshold"]["mean_f1"] == pytest.approx((4 / 7 + 1) / 2)
    assert a["offsets"] == {"exact": 2, "early": 1, "late": 0, "missed": 0, "false_alarm": 1, "clean": 1}
    out = join(str(tmp_path), "first_error")
    assert exists(join(out, "report.md")) and exists(join(out, "_COMPLETE.json"))
    assert "| a | 3 | 2 | 66.7 | 50.0 | 57.1 |" in open(join(out, "report.md")).read()


def test_best_threshold_is_scored_only_on_problems_it_was_not_chosen_on(tmp_path):
    from mathray.core.first_error import Case, best_threshold
    from mathray.jobs.step_evaluation import _chosen, labelled_first_error

    commit(str(tmp_path / "labels"), LABELS, schemas.STEP_LABELS)
    commit(str(tmp_path / "scores"), SCORES, schemas.SCORES)
    seed = next(s for s in range(100) if 2 <= sum(_chosen(r["problem_id"], s, 0.5) for r in SCORES) <= 5
                and {labelled_first_error(r) == NO_ERROR for r in LABELS[:7] if _chosen(r["problem_id"], s, 0.5)}
                == {True, False})                      # a split whose chosen share has both kinds of case
    cfg = StepEvalConfig(labels=str(tmp_path / "labels"), scores=str(tmp_path / "scores"), seed=seed)
    tuned = run_step_evaluation(cfg).report["best_threshold_held_out"]
    chosen = [Case(s["step_scores"], labelled_first_error(r)) for r, s in zip(LABELS, SCORES)
              if _chosen(r["problem_id"], seed, 0.5)]
    assert tuned["threshold"] == best_threshold(chosen)[0]
    held = sum(t["num_error"] + t["num_correct"] for t in tuned["subsets"].values())
    assert held == len(SCORES) - len(chosen)


def test_labels_and_scores_that_do_not_match_are_refused(tmp_path):
    commit(str(tmp_path / "labels"), LABELS, schemas.STEP_LABELS)
    commit(str(tmp_path / "scores"), [*SCORES[:-1], score_row("p6", 0, [0.9, 0.9])], schemas.SCORES)
    with pytest.raises(InputMismatch, match="p6/0: 2 step scores for 1 labelled steps"):
        run_step_evaluation(StepEvalConfig(labels=str(tmp_path / "labels"), scores=str(tmp_path / "scores"),
                                           output=str(tmp_path / "r1")))
    commit(str(tmp_path / "stray"), [*SCORES, score_row("elsewhere", 3, [0.5])], schemas.SCORES)
    with pytest.raises(InputMismatch, match="not in the labels"):
        run_step_evaluation(StepEvalConfig(labels=str(tmp_path / "labels"), scores=str(tmp_path / "stray"),
                                           output=str(tmp_path / "r2")))
    with pytest.raises(InputNotReady):
        run_step_evaluation(StepEvalConfig(labels=str(tmp_path / "labels"), scores=str(tmp_path / "missing"),
                                           output=str(tmp_path / "r3")))


def test_first_error_comes_from_the_field_else_the_hard_labels():
    from mathray.jobs.step_evaluation import labelled_first_error

    assert labelled_first_error(label_row("p", 0, [1, 1, 0, 0])) == 2
    assert labelled_first_error(label_row("p", 0, [1, 1])) == NO_ERROR
    assert labelled_first_error(label_row("p", 0, [1, 0, 0], first_error=2)) == 2   # the field wins


def test_step_labels_input_needs_a_prm_and_nothing_else():
    with pytest.raises(ValueError, match="input_kind=step_labels"):
        ScoreConfig(input_kind="step_labels", scorer=ScorerConfig(verifier="v", prm="p"))
    with pytest.raises(ValueError, match="input_kind=step_labels"):
        ScoreConfig(input_kind="step_labels")


@pytest.mark.slow
@pytest.mark.cluster
def test_scored_step_labels_equal_the_same_steps_scored_as_samples(ray_cluster, tmp_path):
    """The score job reads a step-labelled row's steps as given: its step scores equal those of a SAMPLES row
    whose text is the same steps, one per line (split back into the same steps by the scorer)."""
    from helpers.score_data import sample_rows

    prm = str(build_tiny_model(tmp_path / "prm", seed=2))
    samples = sample_rows(3, 3, seed=1)
    labelled = [dict(label_row(r["problem_id"], r["sample_id"], [1] * len(r["text"].split("\n")),
                               steps=r["text"].split("\n")), problem=r["problem"]) for r in samples]
    commit_samples(str(tmp_path / "samples"), samples, shards=1)
    commit(str(tmp_path / "labels"), labelled, schemas.STEP_LABELS)
    scorer = ScorerConfig(prm=prm, batch_size=4)
    run_score(ScoreConfig(input=str(tmp_path / "samples"), output=str(tmp_path / "s1"), scorer=scorer))
    run_score(ScoreConfig(input=str(tmp_path / "labels"), output=str(tmp_path / "s2"), input_kind="step_labels",
                          scorer=scorer))
    as_samples = {(r["problem_id"], r["sample_id"]): r["step_scores"]
                  for r in ShardStore(str(tmp_path / "s1")).read_all().to_pylist()}
    as_steps = {(r["problem_id"], r["sample_id"]): r["step_scores"]
                for r in ShardStore(str(tmp_path / "s2")).read_all().to_pylist()}
    assert as_steps.keys() == as_samples.keys() and len(as_steps) == len(samples)
    for key, steps in as_steps.items():
        assert steps == pytest.approx(as_samples[key], abs=1e-5)
    rep = run_step_evaluation(StepEvalConfig(labels=str(tmp_path / "labels"), scores=str(tmp_path / "s2"))).report
    assert rep["solutions"] == len(samples) and rep["unscored"] == 0


def test_evaluate_report_gets_the_first_error_table(tmp_path):
    """The evaluate report reads true first errors of its samples (``step_labels``) next to their PRM scores."""
    from helpers.score_data import sample_rows

    from mathray.jobs.evaluation import EvaluateConfig, run_evaluate

    samples = sample_rows(2, 2, seed=0)     # 4 samples; two get labels with a first error, one none, one unlabelled
    commit_samples(str(tmp_path / "samples"), samples, shards=1)
    keys = [(r["problem_id"], r["sample_id"]) for r in samples]
    steps = [[0.9, 0.2, 0.8], [0.9, 0.9], [0.3, 0.9], [0.9]]
    commit(str(tmp_path / "scores"), [dict(score_row(p, s, st), verifier_score=0.5)
                                      for (p, s), st in zip(keys, steps)], schemas.SCORES)
    labels = [label_row(*keys[0], [1, 0, 0]),            # predicted 1 at 0.5: exact
              label_row(*keys[1], [1, 1]),               # predicted none: clean
              label_row(*keys[2], [1, 0])]               # predicted 0: early
    commit(str(tmp_path / "labels"), labels, schemas.STEP_LABELS)
    cfg = EvaluateConfig(samples=str(tmp_path / "samples"), scores=str(tmp_path / "scores"),
                         step_labels=str(tmp_path / "labels"), trials=2, bootstrap_resamples=10,
                         output=str(tmp_path / "report"))
    rep = run_evaluate(cfg).report["first_error"]
    t = rep["subsets"]["processbench"]
    assert (rep["labelled"], rep["unscored"], t["num_error"], t["num_correct"]) == (3, 0, 2, 1)
    assert t["error_accuracy"] == 0.5 and t["correct_accuracy"] == 1.0 and t["f1"] == pytest.approx(2 / 3)
    assert "## First errors" in open(tmp_path / "report" / "report.md").read()
