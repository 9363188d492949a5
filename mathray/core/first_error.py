"""How well step scores find a solution's first wrong step (pure Python; no Ray/torch/vLLM).

The task is ProcessBench's (Zheng et al. 2024): each case is a solution's steps and a label, the index of
the earliest wrong step or ``NO_ERROR`` (-1) when every step is right. A PRM predicts the first step whose
score falls below a threshold (``NO_ERROR`` when none does). The metric of a subset is the F1 of two
accuracies: on erroneous cases (the predicted index equals the label) and on correct cases (the prediction
is ``NO_ERROR``); a benchmark of several subsets reports each subset's F1 and their unweighted mean.

PRM800K's and Math-Shepherd's step labels give the same case: the first step labelled wrong (or none).

- ``predicted_first_error(scores, threshold)``: the first index with ``score < threshold``, else -1.
- ``first_error_f1(labels, predictions)``: both accuracies and their F1 (None where a kind is absent).
- ``best_threshold(cases)``: the threshold that maximises F1 on some cases (choose it on a held-out split,
  then apply it to the others; a threshold tuned on the cases it is scored on flatters the PRM).
- ``step_auroc(cases)``: how well step scores separate right steps from the first wrong one (steps after
  the first error carry no label and are left out).
- ``error_offsets(labels, predictions)``: where the predicted first error falls relative to the labelled one.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Sequence

from mathray.core.metrics import auroc

NO_ERROR = -1


@dataclass(frozen=True)
class Case:
    """One solution: its step scores (higher = more likely right) and the labelled first wrong step."""
    scores: Sequence[float]
    label: int


@dataclass(frozen=True)
class FirstErrorF1:
    error_accuracy: float | None     # erroneous cases whose first error is found exactly
    correct_accuracy: float | None   # correct cases in which no step falls below the threshold
    f1: float | None                 # harmonic mean of the two; None unless both kinds are present
    num_error: int
    num_correct: int


def check_label(label: int, num_steps: int) -> None:
    if not (label == NO_ERROR or 0 <= label < num_steps):
        raise ValueError(f"first-error label {label} outside -1..{num_steps - 1} ({num_steps} steps)")


def predicted_first_error(scores: Sequence[float], threshold: float) -> int:
    return next((i for i, s in enumerate(scores) if s < threshold), NO_ERROR)


def first_error_f1(labels: Sequence[int], predictions: Sequence[int]) -> FirstErrorF1:
    if len(labels) != len(predictions):
        raise ValueError(f"{len(labels)} labels, {len(predictions)} predictions")
    errors = [p == y for y, p in zip(labels, predictions) if y != NO_ERROR]
    corrects = [p == NO_ERROR for y, p in zip(labels, predictions) if y == NO_ERROR]
    err_acc = sum(errors) / len(errors) if errors else None
    ok_acc = sum(corrects) / len(corrects) if corrects else None
    if err_acc is None or ok_acc is None:
        f1 = None
    else:
        f1 = 0.0 if err_acc + ok_acc == 0 else 2 * err_acc * ok_acc / (err_acc + ok_acc)
    return FirstErrorF1(err_acc, ok_acc, f1, len(errors), len(corrects))


def score_cases(cases: Sequence[Case], threshold: float) -> FirstErrorF1:
    for c in cases:
        check_label(c.label, len(c.scores))
    return first_error_f1([c.label for c in cases], [predicted_first_error(c.scores, threshold) for c in cases])


def best_threshold(cases: Sequence[Case]) -> tuple[float, FirstErrorF1]:
    """The threshold with the highest F1 on ``cases`` (the lowest such threshold on ties). Candidates: every
    distinct step score, and one above the highest (so "every step is flagged" is among them); a prediction
    only changes where the threshold crosses a score, so no other threshold scores differently."""
    scores = sorted({s for c in cases for s in c.scores})
    if not scores:
        raise ValueError("no step scores to choose a threshold from")
    best = None
    for t in [*scores, scores[-1] + 1.0]:
        result = score_cases(cases, t)
        if result.f1 is not None and (best is None or result.f1 > best[1].f1):
            best = (t, result)
    if best is None:
        raise ValueError("a threshold needs both erroneous and correct cases to choose from")
    return best


def step_auroc(cases: Sequence[Case]) -> float | None:
    """AUROC of step scores for "this step is right": the steps before the first error are right, the first
    wrong step is wrong; later steps are unlabelled and left out."""
    scores, right = [], []
    for c in cases:
        check_label(c.label, len(c.scores))
        last = len(c.scores) if c.label == NO_ERROR else c.label + 1
        scores.extend(c.scores[:last])
        right.extend(i != c.label for i in range(last))
    return auroc(scores, right)


def error_offsets(labels: Sequence[int], predictions: Sequence[int]) -> dict[str, int]:
    """Counts of: ``exact`` (the labelled first error found), ``early`` (a right step flagged before it),
    ``late`` (flagged only after it), ``missed`` (erroneous case, nothing flagged), ``false_alarm`` (a correct
    case with a step flagged), ``clean`` (a correct case, nothing flagged)."""
    def kind(y: int, p: int) -> str:
        if y == NO_ERROR:
            return "clean" if p == NO_ERROR else "false_alarm"
        if p == NO_ERROR:
            return "missed"
        return "exact" if p == y else ("early" if p < y else "late")

    counts = Counter(kind(y, p) for y, p in zip(labels, predictions))
    return {k: counts.get(k, 0) for k in ("exact", "early", "late", "missed", "false_alarm", "clean")}


def subset_report(subsets: dict[str, Sequence[Case]], threshold: float) -> dict:
    """ProcessBench's table: per subset both accuracies and F1 at ``threshold``, and the mean F1 over the
    subsets that have both kinds of case."""
    rows = {name: score_cases(cases, threshold) for name, cases in subsets.items()}
    f1s = [r.f1 for r in rows.values() if r.f1 is not None]
    return {"threshold": threshold, "subsets": rows, "mean_f1": sum(f1s) / len(f1s) if f1s else None}
