"""Math-Shepherd step labels from rollouts: which step prefixes to evaluate, and how results become labels.

Pure logic (no Ray, vLLM or torch): ``mathray.jobs.rollout`` owns the engine and calls these.

A solution with steps s_0..s_{n-1} is labelled by evaluating step prefixes: K completions from the prefix
s_0..s_i, each graded against the reference. ``hard = 1`` when any completion is correct, ``soft = correct
/ K`` (fixed denominator K: unfinished or unparsable completions count as wrong).

Modes (same output):
- ``full``: every step prefix is evaluated, in one round (Math-Shepherd).
- ``first-error``: a search for the first step whose prefix can no longer reach the answer, assuming
  hard labels are monotone (once a prefix fails, every longer one fails; OmegaPRM). Steps before it are
  +, it and every later step are -. Soft labels only at the measured steps (null elsewhere). Each round
  evaluates one prefix per unfinished solution, so a batch of solutions advances together.

The free last step: the last prefix IS the whole solution, whose own grade is known, so it needs no
rollout (``final_grade``): True when the solution's answer is correct; with the job's ``graded`` policy it
may also be False (answered but wrong), which saves one more prefix. A
known final grade is an exact value, so that step gets soft label 1.0 / 0.0 with 0 rollouts. In
``first-error`` mode a correct final answer ends the search at once: under monotonicity every prefix of a
solution that reaches the answer reaches it too, so such a solution costs no rollouts at all.

Where the first-error search probes (``probe_offset``). The first error f lies in lo..hi (hi = n: no
error); probing prefix m costs ``good_cost`` rollouts when it turns out good (f > m) and ``bad_cost`` when
bad. The search probes where the expected rollouts to pin f down are lowest, with every position of f in
lo..hi taken as equally likely (a small dynamic programme over the interval's size). With equal costs
(every prefix costs its K rollouts) that is plain bisection, probing (lo + hi) // 2: over 0..n it evaluates
``ceil(log2(n + 1)) <= ceil(log2(n)) + 1`` prefixes, with the last step known bad ``ceil(log2(n))``. When a
prefix stops at its first correct completion (below), a good prefix costs about 2 rollouts (each completion
taken as a coin flip: ``expected_good_prefix_rollouts``) and a bad one all K, so the search probes early in
the interval, about a fifth of the way in for K=8: a probe that is likely good is cheap, one that is likely
bad costs K. The same first error under monotone labels; at most hi - lo probes. What it saves depends on
where first errors sit (``benchmarks/first_error_search.py``, ``docs/methods.md``): fewer rollouts than
bisection when first errors are uniform or early, more when they sit late and a good prefix costs more
than the search assumes; ``search="bisect"`` keeps bisection.

Stopping a prefix's rollouts at its first correct one (``PrefixRollouts``, ``stop_at_correct``): the hard
label only asks whether ANY of the K completions reaches the answer, so once completion c is correct and
completions 0..c-1 are back and wrong, the rest cannot change it. A prefix is then recorded with ``c + 1``
rollouts and no soft label (its correct/K is unknown). Completion c has a fixed seed whatever else runs, so
the hard labels, the first error and the recorded rollouts are those of the K-completion evaluation, and
do not depend on which completions happened to finish first. A bad prefix still costs all K.

Non-monotone oracles (a prefix fails but a longer one succeeds: a lucky completer, or a solution that
recovers) are not errors. ``full`` records the raw measurements (labels may go - then +) and
``first_error`` = the first step labelled -. ``first-error`` finds a good->bad boundary that is consistent
with every measurement it made (the step before it measured or implied good, the step itself measured or
implied bad), which need not be the first failing prefix; its labels are the monotone labelling around
that boundary. ``is_monotone(hard)`` tells whether a full labelling satisfies the assumption.
"""
from __future__ import annotations

import functools
import math
from collections import deque
from dataclasses import dataclass
from typing import Literal, Sequence

from mathray.core.prompts import SHEPHERD_TAG

Mode = Literal["full", "first-error"]
MODES: tuple[str, ...] = ("full", "first-error")
SEARCHES: tuple[str, ...] = ("bisect", "weighted")
LABEL_SOURCE = {"full": "shepherd-full", "first-error": "shepherd-first-error"}


@dataclass
class StepLabels:
    hard: list[int]                    # 1 good / 0 bad per step
    soft: list[float | None]           # correct / K where measured (or exact for the free last step)
    rollouts: list[int]                # completions spent per step
    first_error: int | None            # first step labelled 0; None when every step is 1
    evaluations: int                   # prefixes rolled out


def expected_good_prefix_rollouts(k: int) -> float:
    """Rollouts a good prefix costs when it stops at its first correct completion, each completion taken as
    a coin flip (the search does not know the completer): P(completions 0..c-1 all wrong) summed over
    c < k, i.e. 2 - 2**(1 - k)."""
    return sum(0.5 ** c for c in range(k))


@functools.lru_cache(maxsize=256)
def _probe_offsets(size: int, good_cost: float, bad_cost: float) -> tuple[int, ...]:
    """offsets[s]: where to probe among s candidate first errors (offset from lo), the least expected cost
    under a uniform prior. Probing offset t: good with probability (s-1-t)/s, leaving s-1-t candidates;
    bad with (t+1)/s, leaving t+1. The first of equal minima (deterministic)."""
    cost, offsets = [0.0, 0.0], [0, 0]
    for s in range(2, size + 1):
        best_t, best = 0, math.inf
        for t in range(s - 1):
            c = ((s - 1 - t) * (good_cost + cost[s - 1 - t]) + (t + 1) * (bad_cost + cost[t + 1])) / s
            if c < best - 1e-9:
                best_t, best = t, c
        cost.append(best)
        offsets.append(best_t)
    return tuple(offsets)


def probe_offset(size: int, good_cost: float, bad_cost: float) -> int:
    """Which of ``size`` >= 2 candidate first errors (lo..hi) to probe, as an offset from lo (see the module
    docstring). Equal costs: bisection, (size - 1) // 2."""
    if good_cost == bad_cost:
        return (size - 1) // 2
    return _probe_offsets(size, float(good_cost), float(bad_cost))[size]


def is_monotone(hard: Sequence[int]) -> bool:
    """True when no step labelled 0 is followed by a step labelled 1."""
    return all(not (a == 0 and b == 1) for a, b in zip(hard, hard[1:]))


class StepSearch:
    """State of one solution's labelling: ``next_steps()`` says which prefixes to evaluate this round,
    ``record(step, n_correct)`` folds in a result, ``done`` says when to stop, ``labels()`` gives the
    result. Step i means the prefix s_0..s_i (0-based)."""

    mode: str = ""

    def __init__(self, num_steps: int, k: int, final_grade: bool | None = None):
        if num_steps < 1:
            raise ValueError(f"a solution needs at least one step, got {num_steps}")
        if k < 1:
            raise ValueError(f"k (rollouts per prefix) must be >= 1, got {k}")
        self.n, self.k, self.final_grade = num_steps, k, final_grade
        self.measured: dict[int, int] = {}   # step -> correct completions among its rollouts
        self.spent: dict[int, int] = {}      # step -> rollouts (k, or fewer when stopped at a correct one)
        self._asked: set[int] = set()

    def next_steps(self) -> list[int]:
        raise NotImplementedError

    @property
    def done(self) -> bool:
        raise NotImplementedError

    def record(self, step: int, n_correct: int, rollouts: int | None = None) -> None:
        """Fold in ``n_correct`` correct completions out of ``rollouts`` (default k; fewer only for a prefix
        stopped at its first correct completion)."""
        rollouts = self.k if rollouts is None else rollouts
        if step not in self._asked:
            raise ValueError(f"step {step} was not requested (pending: {sorted(self._asked)})")
        if not 1 <= rollouts <= self.k:
            raise ValueError(f"rollouts={rollouts} outside 1..{self.k}")
        if not 0 <= n_correct <= rollouts:
            raise ValueError(f"n_correct={n_correct} outside 0..{rollouts}")
        if rollouts < self.k and n_correct == 0:
            raise ValueError(f"a prefix stopped after {rollouts} of {self.k} rollouts needs a correct one")
        self._asked.discard(step)
        self.measured[step], self.spent[step] = n_correct, rollouts
        self._update(step, n_correct > 0)

    def _update(self, step: int, good: bool) -> None:
        pass

    def _ask(self, steps: list[int]) -> list[int]:
        self._asked.update(steps)
        return steps

    def _soft_and_rollouts(self) -> tuple[list[float | None], list[int]]:
        soft: list[float | None] = [None] * self.n
        rollouts = [0] * self.n
        if self.final_grade is not None:
            soft[-1] = 1.0 if self.final_grade else 0.0
        for i, c in self.measured.items():
            rollouts[i] = self.spent[i]
            soft[i] = c / self.k if self.spent[i] == self.k else None   # stopped early: correct/K unknown
        return soft, rollouts

    def labels(self) -> StepLabels:
        raise NotImplementedError


class FullSearch(StepSearch):
    """Every prefix (but a free last step) in one round; labels are the raw measurements."""

    mode = "full"

    def _todo(self) -> list[int]:
        last = self.n - 1 if self.final_grade is not None else self.n
        return [i for i in range(last) if i not in self.measured]

    def next_steps(self) -> list[int]:
        return self._ask([i for i in self._todo() if i not in self._asked])

    @property
    def done(self) -> bool:
        return not self._todo()

    def labels(self) -> StepLabels:
        if not self.done:
            raise RuntimeError("labels() before the search finished")
        hard = [int(self.measured[i] > 0) if i in self.measured else int(bool(self.final_grade))
                for i in range(self.n)]
        soft, rollouts = self._soft_and_rollouts()
        first = next((i for i, h in enumerate(hard) if h == 0), None)
        return StepLabels(hard, soft, rollouts, first, len(self.measured))


class FirstErrorSearch(StepSearch):
    """Search for the first failing prefix, one prefix per round, probing where the expected rollouts are
    lowest given what a good prefix costs (``good_cost``; default k, i.e. bisection) and a bad one (k)."""

    mode = "first-error"

    def __init__(self, num_steps: int, k: int, final_grade: bool | None = None, good_cost: float | None = None):
        super().__init__(num_steps, k, final_grade)
        self.good_cost = k if good_cost is None else good_cost
        # invariant: the first error f lies in lo..hi (f == n: no error); steps < lo are good, hi is bad
        self.lo, self.hi = 0, self.n
        if final_grade is True:
            self.lo = self.n            # the whole solution reaches the answer: so does every prefix
        elif final_grade is False:
            self.hi = self.n - 1        # the whole solution fails: the last step is bad

    def next_steps(self) -> list[int]:
        if self.done or self._asked:
            return []
        return self._ask([self.lo + probe_offset(self.hi - self.lo + 1, self.good_cost, self.k)])

    @property
    def done(self) -> bool:
        return self.lo >= self.hi

    def _update(self, step: int, good: bool) -> None:
        if good:
            self.lo = max(self.lo, step + 1)
        else:
            self.hi = min(self.hi, step)

    def labels(self) -> StepLabels:
        if not self.done:
            raise RuntimeError("labels() before the search finished")
        f = self.lo
        hard = [int(i < f) for i in range(self.n)]
        soft, rollouts = self._soft_and_rollouts()
        return StepLabels(hard, soft, rollouts, f if f < self.n else None, len(self.measured))


def make_search(mode: str, num_steps: int, k: int, final_grade: bool | None = None,
                stop_at_correct: bool = False, search: str = "weighted") -> StepSearch:
    """The search of one solution. First-error mode's ``search``: ``weighted`` probes where the expected
    rollouts are lowest given what the evaluation costs (a prefix stopped at its first correct completion:
    good ~2 rollouts, bad k; otherwise k either way, which is bisection); ``bisect`` always probes the
    middle."""
    if mode == "full":
        return FullSearch(num_steps, k, final_grade)
    if mode == "first-error":
        if search not in SEARCHES:
            raise ValueError(f"unknown first-error search {search!r}; expected one of {SEARCHES}")
        good = expected_good_prefix_rollouts(k) if search == "weighted" and stop_at_correct else None
        return FirstErrorSearch(num_steps, k, final_grade, good_cost=good)
    raise ValueError(f"unknown labelling mode {mode!r}; expected one of {MODES}")


class PrefixRollouts:
    """The K completions of one step prefix, graded as they return in any order. ``stop_at_correct``: the
    prefix is decided once completion c is correct and 0..c-1 are back (see the module docstring); the
    completions it counts are then 0..c, whatever else came back. Otherwise it waits for all K."""

    def __init__(self, k: int, stop_at_correct: bool):
        self.k, self.stop_at_correct = k, stop_at_correct
        self.correct: dict[int, bool] = {}   # completion index -> graded correct

    def add(self, index: int, correct: bool) -> None:
        if not 0 <= index < self.k or index in self.correct:
            raise ValueError(f"completion {index} is outside 0..{self.k - 1} or came back twice")
        self.correct[index] = bool(correct)

    def counted(self) -> int | None:
        """How many completions (0..n-1) decide the prefix, or None while it is open."""
        if self.stop_at_correct:
            for c in range(self.k):
                if c not in self.correct:
                    return None
                if self.correct[c]:
                    return c + 1
        return self.k if len(self.correct) == self.k else None

    def outcome(self) -> tuple[int, int]:
        """(correct completions, rollouts) of a decided prefix, for ``StepSearch.record``."""
        n = self.counted()
        if n is None:
            raise RuntimeError("outcome() of a prefix whose completions are still out")
        return sum(self.correct[c] for c in range(n)), n


class SearchQueue:
    """Many searches advanced one result at a time, with no rounds: ``pop()`` gives the next (search index,
    step) to evaluate, ``record`` folds a result in and queues whatever that search asks next. An engine
    loop keeps requests of every unfinished search in flight and feeds results back as they return, so no
    search waits for another's rollouts (as it would if the searches advanced in synchronous rounds)."""

    def __init__(self, searches: Sequence[StepSearch]):
        self.searches = list(searches)
        self._todo: deque[tuple[int, int]] = deque(
            (j, step) for j, s in enumerate(self.searches) if not s.done for step in s.next_steps())
        self.evaluations = 0

    def __len__(self) -> int:
        return len(self._todo)

    def pop(self) -> tuple[int, int]:
        return self._todo.popleft()

    def record(self, j: int, step: int, n_correct: int, rollouts: int | None = None) -> None:
        search = self.searches[j]
        search.record(step, n_correct, rollouts)
        self.evaluations += 1
        if not search.done:
            self._todo.extend((j, s) for s in search.next_steps())

    def check_done(self) -> None:
        stuck = [j for j, s in enumerate(self.searches) if not s.done]
        if stuck:
            raise RuntimeError(f"searches {stuck[:5]} stopped asking for prefixes before finishing")


def shepherd_text(problem: str, steps: Sequence[str], hard: Sequence[int]) -> dict:
    """One record of the Math-Shepherd data set format: ``input`` = problem + ``Step k: ... ки`` lines,
    ``label`` = the same text with each ``ки`` replaced by ``+`` or ``-`` (``mathray.jobs.ingest`` reads it)."""
    if len(steps) != len(hard):
        raise ValueError(f"{len(steps)} steps but {len(hard)} labels")
    body = []
    for i, step in enumerate(steps):
        text = " ".join(step.split("\n")).strip()   # one line per step, as in the data set
        if not text.lower().startswith(f"step {i + 1}:"):
            text = f"Step {i + 1}: {text}"
        body.append(text)
    tagged = "\n".join(f"{t} {SHEPHERD_TAG}" for t in body)
    labelled = "\n".join(f"{t} {'+' if h else '-'}" for t, h in zip(body, hard))
    return {"input": f"{problem.strip()} {tagged}", "label": f"{problem.strip()} {labelled}"}
