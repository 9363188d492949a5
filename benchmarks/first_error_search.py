"""Expected rollouts of the first-error search: weighted (``core.shepherd``, the default when prefixes stop
at their first correct completion) against bisection, by exact enumeration (no engine, a second).

    .venv/bin/python benchmarks/first_error_search.py

A wrong solution of n steps whose last step is known bad has its first error f in 0..n-1. For each f the
search is run against a monotone oracle; a probe that turns out good costs ``true_good`` rollouts (what a
good prefix stopped at its first correct completion actually costs with the completer at hand), a bad one
K. Where f sits: uniform, geometric towards the start (``early``) or the end (``late``), ratio 0.7 per
step. The weighted search itself always assumes a good prefix costs ~2 (a coin flip per completion); the
table shows what that assumption costs or saves when the truth differs. Prints weighted / bisection per
case; last line ``RESULT`` with the mean ratio over the cases and the worst and best case.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mathray.core.shepherd import make_search   # noqa: E402

K = 8
STEPS = (5, 10, 20)
TRUE_GOOD = (1.0, 2.0, 4.0)


def prior(kind: str, n: int) -> list[float]:
    weights = {"uniform": [1.0] * n, "early": [0.7 ** i for i in range(n)],
               "late": [0.7 ** (n - 1 - i) for i in range(n)]}[kind]
    return [w / sum(weights) for w in weights]


def expected_rollouts(n: int, search: str, true_good: float, where: list[float]) -> float:
    total = 0.0
    for f, weight in enumerate(where):
        s = make_search("first-error", n, K, final_grade=False, stop_at_correct=True, search=search)
        spent = 0.0
        while not s.done:
            (step,) = s.next_steps()
            good = step < f
            spent += true_good if good else K
            s.record(step, 1 if good else 0, 1 if good else K)
        assert s.labels().first_error == f
        total += weight * spent
    return total


def main() -> None:
    ratios = {}
    print(f"expected rollouts per wrong solution, weighted / bisection (K={K}, last step known bad)")
    print("steps  first errors  " + "  ".join(f"true good={g:g}" for g in TRUE_GOOD))
    for n in STEPS:
        for kind in ("uniform", "early", "late"):
            cells = []
            for g in TRUE_GOOD:
                w, b = (expected_rollouts(n, search, g, prior(kind, n)) for search in ("weighted", "bisect"))
                ratios[(n, kind, g)] = w / b
                cells.append(f"{w:5.1f}/{b:5.1f}={w / b:4.2f}")
            print(f"{n:5d}  {kind:12s}  " + "  ".join(cells))
    worst, best = max(ratios, key=ratios.get), min(ratios, key=ratios.get)
    print(f"RESULT mean_ratio_weighted_vs_bisect={sum(ratios.values()) / len(ratios):.3f} "
          f"worst={ratios[worst]:.3f} worst_case=steps{worst[0]}_{worst[1]}_good{worst[2]:g} "
          f"best={ratios[best]:.3f} best_case=steps{best[0]}_{best[1]}_good{best[2]:g}")


if __name__ == "__main__":
    main()
