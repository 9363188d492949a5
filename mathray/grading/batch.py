"""Batch grading for Ray Data ``map_batches`` (CPU tasks or actors; batch_format "numpy" or "pandas").

    ds.map_batches(grade_batch, fn_kwargs={"prediction_col": "text", "reference_col": "reference"})

Adds ``answer`` (str or None), ``is_correct`` (bool) and ``grade_reason`` (str). The sandbox worker pool is
per process, created on first need and reused by every later batch in the same task/actor process.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from mathray.grading import grade


def grade_batch(batch: Any, prediction_col: str = "text", reference_col: str = "reference", *,
                number_fallback: bool = False, timeout: float | None = None,
                reference_is_solution: bool = False):
    """Grade each (prediction text, reference answer) row; returns the batch with three added columns."""
    from mathray.grading.extract import extract_reference

    preds, refs = batch[prediction_col], batch[reference_col]
    answers, correct, reasons = [], [], []
    for pred, ref in zip(list(preds), list(refs)):
        pred = None if pred is None else str(pred)
        ref = None if ref is None else str(ref)
        if reference_is_solution and ref is not None:
            ref = extract_reference(ref)
        r = grade(pred, ref, number_fallback=number_fallback, timeout=timeout)
        answers.append(r.answer)
        correct.append(r.is_correct)
        reasons.append(r.reason)
    out = batch if not isinstance(batch, dict) else dict(batch)
    out["answer"] = np.array(answers, dtype=object)
    out["is_correct"] = np.array(correct, dtype=bool)
    out["grade_reason"] = np.array(reasons, dtype=object)
    return out
