"""Answer grading for MATH- and GSM8K-style answers (pure Python; no Ray, torch or vLLM imports).

    from mathray.grading import grade
    grade("... so the answer is $\\boxed{\\frac12}$.", "0.5").is_correct  # True

Semantics (chosen to match what users of MATH/GSM8K graders expect):
- Extraction (``extract_answer``): the LAST ``\\boxed{}``/``\\fbox{}`` counts (several boxes are not merged
  into a set); without a box: GSM8K ``####`` (the FIRST one, since a model may run on into a new few-shot
  ``Question:``), PRM800K ``# Answer``, "the final answer is" / "the answer is", an ``A:``/``Answer:`` line,
  a bold final line; optionally the last number (``number_fallback=True``). No answer, a box that never
  closes (truncated output) or text over 200k characters give None, and None never equals anything.
- Equality is by exact value: unreduced fractions, terminating and repeating decimals
  (``0.\\overline{3}`` = 1/3), radical forms (``2\\sqrt2`` = ``\\sqrt8``), expanded vs factored polynomials,
  scaled or rearranged equations are equal. Approximations are not (3.14 != pi, 0.333 != 1/3): there is
  no relative tolerance and no x100 percent leniency (0.25 != 25), while ``25\\%`` = 25 because units,
  ``^\\circ``, ``\\%``, ``\\$`` and ``\\text{ cm}`` are stripped, not converted.
- ``2\\frac12`` is the mixed number 5/2. Bare comma lists, ``\\pm`` and ``\\{...\\}`` are unordered sets;
  parenthesised tuples are ordered; intervals compare bracket types; matrices compare cell by cell.
- ``1,000,000``, ``10,\\!000``, ``1\\,000\\,000``, ``14{,}916`` are numbers, ``1,2`` is a list.
  Integers are compared exactly at any size.
- ``x = 3`` equals 3; inequalities are equal when equivalent (``x > 3`` = ``3 < x``).
- Text and multiple-choice answers compare case-insensitively after ``\\text{}`` and parentheses are
  removed (``(A)`` = ``A`` = ``\\text{(A)}``). Base subscripts are significant (``101_2`` != 101).
- Hedged answers ("3 or 4") are not correct.

Safety: answer text is never executed. Symbolic comparison (latex2sympy2_extended + sympy) runs only on
answers that pass ``symbolic.unsafe_reason`` (length, nesting, exponents, factorials), inside a worker
process with a hard wall-clock limit (``sandbox``); cheap string/number paths never leave the caller.
"""
from __future__ import annotations

from dataclasses import dataclass

from mathray.grading.cluster import cluster_answers
from mathray.grading.equivalence import Verdict, compare, is_equivalent
from mathray.grading.extract import MAX_TEXT_CHARS, extract_answer, extract_reference, last_boxed


@dataclass(frozen=True)
class GradeResult:
    is_correct: bool
    reason: str  # equal | not-equal | no-answer | no-reference | too-long | timeout | parse-error | refused
    answer: str | None


def grade(prediction: str | None, reference: str | None, *, number_fallback: bool = False,
          timeout: float | None = None) -> GradeResult:
    """Extract the answer from the ``prediction`` text and compare it with the ``reference`` ANSWER."""
    if prediction is not None and len(prediction) > MAX_TEXT_CHARS:
        return GradeResult(False, "too-long", None)
    answer = extract_answer(prediction, number_fallback=number_fallback)
    if answer is None:
        return GradeResult(False, "no-answer", None)
    if reference is None or not str(reference).strip():
        return GradeResult(False, "no-reference", answer)
    verdict = compare(answer, reference, timeout=timeout)
    return GradeResult(verdict.equal, verdict.reason, answer)


def grade_against_solution(prediction: str | None, reference_solution: str, **kwargs) -> GradeResult:
    """Like ``grade`` but the reference is a full solution (MATH: last box; GSM8K: ``####``)."""
    return grade(prediction, extract_reference(reference_solution), **kwargs)


def __getattr__(name):  # grade_batch pulls in numpy only when asked for
    if name == "grade_batch":
        from mathray.grading.batch import grade_batch

        return grade_batch
    raise AttributeError(name)


__all__ = ["GradeResult", "Verdict", "cluster_answers", "compare", "extract_answer", "extract_reference",
           "grade", "grade_against_solution", "grade_batch", "is_equivalent", "last_boxed"]
