"""First-error metrics (ProcessBench's F1, thresholds, step AUROC) on hand-computed cases (pure logic)."""
import pytest

from mathray.core.first_error import (NO_ERROR, Case, best_threshold, error_offsets, first_error_f1,
                                      predicted_first_error, score_cases, step_auroc, subset_report)

# Five cases worked by hand at threshold 0.5: the predicted first error is the first score below 0.5.
MIXED = [Case([0.9, 0.8, 0.2, 0.1], 2),    # predicted 2: exact
         Case([0.4, 0.3, 0.9], 1),         # predicted 0: early (a right step flagged)
         Case([0.1], 0),                   # predicted 0: exact, first error at step 0
         Case([0.9, 0.9], NO_ERROR),       # predicted -1: clean
         Case([0.9, 0.45], NO_ERROR)]      # predicted 1: false alarm at the last step


def test_prediction_is_the_first_step_strictly_below_the_threshold():
    assert predicted_first_error([0.9, 0.5, 0.4], 0.5) == 2
    assert predicted_first_error([0.9, 0.6], 0.5) == NO_ERROR
    assert predicted_first_error([], 0.5) == NO_ERROR


def test_f1_of_the_two_accuracies_by_hand():
    r = score_cases(MIXED, 0.5)
    assert (r.num_error, r.num_correct) == (3, 2)
    assert r.error_accuracy == pytest.approx(2 / 3) and r.correct_accuracy == pytest.approx(1 / 2)
    assert r.f1 == pytest.approx(2 * (2 / 3) * (1 / 2) / (2 / 3 + 1 / 2))   # 4/7


def test_a_prm_that_always_says_good_or_always_bad_scores_zero():
    good = [Case([1.0] * len(c.scores), c.label) for c in MIXED]
    r = score_cases(good, 0.5)
    assert (r.error_accuracy, r.correct_accuracy, r.f1) == (0.0, 1.0, 0.0)
    bad = [Case([0.0] * len(c.scores), c.label) for c in MIXED]
    r = score_cases(bad, 0.5)   # flags step 0 everywhere: right only where the first error is step 0
    assert r.error_accuracy == pytest.approx(1 / 3) and r.correct_accuracy == 0.0 and r.f1 == 0.0


def test_only_correct_or_only_erroneous_cases_leave_f1_undefined():
    r = first_error_f1([NO_ERROR, NO_ERROR], [NO_ERROR, 1])
    assert r.error_accuracy is None and r.correct_accuracy == 0.5 and r.f1 is None
    r = first_error_f1([3, 0], [3, 0])          # first error at the last step (of 4) and at step 0
    assert r.error_accuracy == 1.0 and r.correct_accuracy is None and r.f1 is None


def test_best_threshold_by_hand():
    # below 0.4 only the wrong steps of the three erroneous cases fall first, and no step of a correct one
    t, r = best_threshold(MIXED)
    assert t == 0.4 and r.f1 == 1.0
    assert score_cases(MIXED, 0.3).f1 == pytest.approx(0.8)     # case 2's 0.3 is not below 0.3: missed


def test_best_threshold_needs_both_kinds():
    with pytest.raises(ValueError, match="both"):
        best_threshold([Case([0.2, 0.9], NO_ERROR)])


def test_step_auroc_uses_steps_up_to_the_first_error():
    assert step_auroc(MIXED) == 1.0   # right steps >= 0.4, first wrong steps <= 0.3; later steps ignored
    # right steps 0.6 and 0.2 against the wrong 0.4: one of two pairs ordered -> 0.5; the 0.0 after is unlabelled
    assert step_auroc([Case([0.6, 0.2, 0.4, 0.0], 2)]) == 0.5


def test_error_offsets_by_hand():
    labels = [c.label for c in MIXED] + [1, 2]
    preds = [predicted_first_error(c.scores, 0.5) for c in MIXED] + [3, NO_ERROR]
    assert error_offsets(labels, preds) == {"exact": 2, "early": 1, "late": 1, "missed": 1, "false_alarm": 1,
                                            "clean": 1}


def test_labels_outside_the_steps_are_refused():
    with pytest.raises(ValueError, match="outside -1..1"):
        score_cases([Case([0.9, 0.1], 2)], 0.5)


def test_subset_table_averages_f1_over_subsets():
    rep = subset_report({"a": MIXED, "b": [Case([0.1], 0), Case([0.9], NO_ERROR)]}, 0.5)
    assert rep["subsets"]["b"].f1 == 1.0
    assert rep["mean_f1"] == pytest.approx((4 / 7 + 1.0) / 2)
