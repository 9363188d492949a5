"""The symbolic callback of ``equivalence.compare``: each undecided atom pair goes to a sandbox worker,
within what is left of the call's ``Deadline`` (the sandbox's start-up, waited out once per process by
``ready_pool``, is added back to it: it is not the answers' time).

Outcomes are cached by atom pair when they are facts about the pair: a verdict, a parse error, a refusal,
and a timeout that had at least ``CACHE_TIMEOUT_MIN_S`` to run (a pair that got only the end of another
pair's budget is tried again next time). A sandbox error (a worker that died or never started) is never
cached: it says nothing about the answers, and the pool has already replaced the worker.
"""
from __future__ import annotations

import time

from mathray.grading.sandbox import ready_pool
from mathray.grading.sympy_compare import unsafe_reason

CACHE_MAX = 65_536
CACHE_TIMEOUT_MIN_S = 1.0
_SEVERITY = {None: 0, "parse-error": 1, "refused": 2, "timeout": 3, "sandbox-error": 4}
_CACHE: dict[tuple[str, str], tuple[bool, str | None]] = {}


class SandboxedCheck:
    """``check(a, b) -> bool``; ``problem`` is the most severe non-verdict met (for the reason)."""

    def __init__(self, deadline):
        self.deadline = deadline
        self.problem: str | None = None

    def _note(self, problem: str | None) -> None:
        if _SEVERITY[problem] > _SEVERITY[self.problem]:
            self.problem = problem

    def __call__(self, a: str, b: str) -> bool:
        if unsafe_reason(a) or unsafe_reason(b):
            self._note("refused")
            return False
        key = (a, b) if a <= b else (b, a)
        if key in _CACHE:
            equal, problem = _CACHE[key]
            self._note(problem)
            return equal
        started = time.monotonic()
        pool = ready_pool()
        self.deadline.extend(time.monotonic() - started)   # the sandbox's start-up is not the answers' time
        remaining = self.deadline.remaining()
        if remaining <= 0.01:
            self._note("timeout")
            return False

        status, value = pool.call("symbolic_equal", a, b, timeout=remaining)
        if status == "ok":
            outcome, keep = (bool(value), None), True
        elif status == "timeout":
            outcome, keep = (False, "timeout"), remaining >= CACHE_TIMEOUT_MIN_S
        elif status == "sandbox-error":
            outcome, keep = (False, "sandbox-error"), False
        else:
            outcome, keep = (False, "refused" if str(value).startswith("Refused") else "parse-error"), True
        if keep:
            if len(_CACHE) >= CACHE_MAX:
                _CACHE.clear()
            _CACHE[key] = outcome
        self._note(outcome[1])
        return outcome[0]
