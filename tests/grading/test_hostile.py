"""Hostile inputs: each grades not-equal within the 2 s budget, with no side effect and the grading
process's peak memory less than 512 MiB above what it held before, on the main thread, on another thread and
inside a Ray task (where signal-based timeouts would not work)."""
from __future__ import annotations

import os
import threading
import time

import pytest

from mathray.grading import compare, grade
from tests.grading.hostile import HOSTILE_ANSWERS, HOSTILE_PAIRS

LIMIT_S = 2.0  # the default per-call budget: the spec of these checks
SLACK_S = 0.5   # a call's own work around its budget (reading the answers, replacing a timed-out worker)
MAX_PEAK_GROWTH_BYTES = 2**29


def _status_bytes(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field + ":"))


def _reset_peak_rss() -> int:
    """Reset Linux's record of this process's peak resident memory (VmHWM) to its current size (writing 5
    to clear_refs), so that the peak read later is that of the calls in between, not of whatever the process
    ran before (a test session's worker has loaded engines); returns the current size."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _status_bytes("VmRSS")


def _waited_for_a_core_s() -> float:
    """Seconds this thread has spent runnable but waiting for a core (Linux's per-thread scheduler statistics:
    ``schedstat``'s second field, run-queue wait in ns). On a busy node a call's wall-clock time holds this wait
    on top of its own; the budget is on its own."""
    with open(f"/proc/self/task/{threading.get_native_id()}/schedstat") as f:
        return int(f.read().split()[1]) / 1e9


def _run_all(marker: str) -> tuple[list[tuple[str, bool, float]], int]:
    """(label, equal, seconds) per call (wall-clock time less the time spent waiting for a core), and how far
    this process's resident memory rose above its size before the calls at its peak, in bytes."""
    from mathray.grading.sandbox import ready_pool

    # pool start-up is not part of a check's latency: waited out here (ready_pool: the grader's first call does
    # not wait again), and a worker warm now (an earlier run in this process may have left a starting spare)
    assert ready_pool().wait_ready()
    out = []
    calls = []
    before = _reset_peak_rss()
    for h in HOSTILE_ANSWERS:
        text = h.replace("{marker}", marker)
        calls += [(text, lambda t=text: compare(t, "7").equal),
                  (text, lambda t=text: grade(r"so \boxed{" + t + "}", "7").is_correct),
                  (text, lambda t=text: grade(t, "7").is_correct)]
    for prediction, reference in HOSTILE_PAIRS:
        p, r = prediction.replace("{marker}", marker), reference.replace("{marker}", marker)
        calls.append((p[:20] + " | " + r[:20], lambda p=p, r=r: grade(p, r).is_correct))
    for label, fn in calls:
        t0, waited0 = time.monotonic(), _waited_for_a_core_s()
        equal = fn()
        out.append((label[:40], equal, time.monotonic() - t0 - (_waited_for_a_core_s() - waited0)))
    return out, _status_bytes("VmHWM") - before


def _check(results, marker):
    calls, growth = results
    assert len(HOSTILE_ANSWERS) >= 70 and len(HOSTILE_PAIRS) >= 10
    assert len(calls) == 3 * len(HOSTILE_ANSWERS) + len(HOSTILE_PAIRS)
    assert [c for c in calls if c[1]] == []
    assert [c for c in calls if c[2] > LIMIT_S + SLACK_S] == []
    assert not os.path.exists(marker)
    assert growth < MAX_PEAK_GROWTH_BYTES, growth


def test_main_thread(tmp_path):
    marker = str(tmp_path / "pwned")
    _check(_run_all(marker), marker)


@pytest.mark.slow
def test_other_thread(tmp_path):
    marker = str(tmp_path / "pwned")
    box = []
    t = threading.Thread(target=lambda: box.append(_run_all(marker)))
    t.start()
    t.join(600)
    _check(box[0], marker)


@pytest.mark.slow
def test_inside_ray_task(ray_cluster, tmp_path):
    import sys

    from ray import cloudpickle

    ray = ray_cluster   # the session's local cluster (tests/conftest.py)
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the test module is not importable in workers
    marker = str(tmp_path / "pwned")
    results = ray.get(ray.remote(_run_all).remote(marker), timeout=600)
    _check(results, marker)
