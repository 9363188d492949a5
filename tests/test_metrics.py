"""pass@k against brute-force subset enumeration, the oracle, bootstrap CIs, Lightman subset curves."""
import itertools
import math
import random

import pytest

from mathray.core.metrics import bootstrap_ci, curve_sizes, pass_at_k, pass_at_n, std, subset_curves


def brute_force_pass_at_k(n: int, c: int, k: int) -> float:
    """Fraction of all k-subsets of n samples (the first c correct) holding a correct one."""
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(i < c for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n", range(1, 9))
def test_pass_at_k_matches_subset_enumeration(n):
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(brute_force_pass_at_k(n, c, k), abs=1e-12), (n, c, k)


def test_pass_at_k_closed_forms_and_errors():
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert pass_at_k(64, 0, 64) == 0.0 and pass_at_k(64, 1, 64) == 1.0
    assert pass_at_k(100, 98, 3) == 1.0          # n - c < k
    assert pass_at_k(200, 5, 10) == pytest.approx(1 - math.comb(195, 10) / math.comb(200, 10))
    for bad in [(3, 4, 1), (3, 1, 4), (3, -1, 1), (3, 1, 0)]:
        with pytest.raises(ValueError, match="^pass_at_k needs"):
            pass_at_k(*bad)


def test_pass_at_n_is_pass_at_k_with_k_equal_n():
    for correct in ([False] * 4, [False, True, False], [True]):
        assert pass_at_n(correct) == pass_at_k(len(correct), sum(correct), len(correct))
    assert pass_at_n([]) == 0.0


def test_bootstrap_ci_brackets_the_mean_and_is_deterministic():
    rng = random.Random(1)
    values = [float(rng.random() < 0.4) for _ in range(200)]
    lo, hi = bootstrap_ci(values, num_resamples=500, seed=3)
    m = sum(values) / len(values)
    assert lo < m < hi and hi - lo < 0.2
    # binomial standard error ~0.035: the 95% interval is roughly +-2 SE wide
    assert 0.08 < hi - lo < 0.2
    assert bootstrap_ci(values, num_resamples=500, seed=3) == (lo, hi)
    assert bootstrap_ci([1.0]) == (1.0, 1.0) and bootstrap_ci([]) == (0.0, 0.0)
    with pytest.raises(ValueError, match=r"confidence must be in \(0, 1\), got 1.0"):
        bootstrap_ci(values, confidence=1.0)


def test_curve_sizes_powers_of_two_up_to_pool():
    assert curve_sizes(1) == [1]
    assert curve_sizes(8) == [1, 2, 4, 8]
    assert curve_sizes(6) == [1, 2, 4, 6]


def test_subset_curves_estimate_pass_at_k_and_pad_small_pools():
    # problem 0: 8 candidates, 2 correct; problem 1: 4 candidates (padded to 8 with missing), 1 correct
    correct = [[True, True] + [False] * 6, [True, False, False, False]]
    seen_sizes = {0: set(), 1: set()}

    def evaluate(p, idx):
        seen_sizes[p].add(len(idx))
        return {"oracle": float(any(correct[p][i] for i in idx)), "first": 1.0}

    curves = subset_curves([8, 4], evaluate, ns=[1, 2, 8], trials=3000, seed=0)
    # the padded problem sees fewer than n candidates (Lightman's eval.py), down to none at n = 1
    assert 0 in seen_sizes[1] and max(seen_sizes[1]) == 4 and max(seen_sizes[0]) == 8
    for n in (1, 2):
        # with padding, problem 1's subset is a random n-subset of 8 slots holding its 4 candidates
        expected = (pass_at_k(8, 2, n) + pass_at_k(8, 1, n)) / 2
        assert curves["oracle"][n][0] == pytest.approx(expected, abs=0.02)
    assert curves["oracle"][8] == (1.0, 0.0)
    assert curves["first"][2] == (1.0, 0.0)
    # same seed, same curves
    assert subset_curves([8, 4], evaluate, ns=[1, 2], trials=20, seed=5) == subset_curves(
        [8, 4], evaluate, ns=[1, 2], trials=20, seed=5)


def test_std_population():
    assert std([0.0, 1.0]) == 0.5 and std([]) == 0.0
