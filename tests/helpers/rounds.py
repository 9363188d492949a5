"""Reference drivers for first-error searches, used by the tests and the Math-Shepherd benchmark.

``run_rounds`` advances many searches in synchronous rounds (one engine call per round, waiting for the slowest
search): the simple schedule that ``core.shepherd.SearchQueue`` (no rounds) is compared against.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

from mathray.core.shepherd import StepSearch


def max_first_error_evaluations(num_steps: int) -> int:
    """Bisection's budget (equal probe costs): ceil(log2(steps)) + 1 prefix evaluations."""
    return math.ceil(math.log2(num_steps)) + 1 if num_steps > 0 else 0


@dataclass
class RoundStats:
    rounds: int = 0                    # engine calls
    evaluations: int = 0               # prefixes evaluated, over all solutions
    per_round: list[int] = field(default_factory=list)


def run_rounds(searches: Sequence[StepSearch],
               evaluate: Callable[[list[tuple[int, int]]], list[int]]) -> RoundStats:
    """Drive many searches together: each round gathers the next prefixes of EVERY unfinished search into
    one ``evaluate(requests)`` call (requests are ``(search_index, step)``; it returns the number of
    correct completions per request), so a sequential binary search per solution still fills the engine.
    """
    stats = RoundStats()
    while True:
        requests = [(j, step) for j, s in enumerate(searches) if not s.done for step in s.next_steps()]
        if not requests:
            break
        results = evaluate(requests)
        if len(results) != len(requests):
            raise RuntimeError(f"evaluate returned {len(results)} results for {len(requests)} requests")
        for (j, step), n_correct in zip(requests, results):
            searches[j].record(step, n_correct)
        stats.rounds += 1
        stats.evaluations += len(requests)
        stats.per_round.append(len(requests))
    stuck = [j for j, s in enumerate(searches) if not s.done]
    if stuck:
        raise RuntimeError(f"searches {stuck[:5]} stopped asking for prefixes before finishing")
    return stats
