"""Hostile answers: each is not-equal within 2 s and has no side effect, on the main thread, on another
thread and inside a Ray task (where signal-based timeouts would not work)."""
from __future__ import annotations

import os
import threading
import time

import pytest

from mathray.grading import compare, grade
from mathray.grading.hostile import HOSTILE_ANSWERS

LIMIT_S = 2.0


def _run_all(marker: str) -> list[tuple[str, bool, float]]:
    from mathray.grading.sandbox import get_pool

    get_pool().call("echo", "warm", timeout=30)  # pool start-up is not part of a check's latency
    out = []
    for h in HOSTILE_ANSWERS:
        text = h.replace("{marker}", marker)
        for fn in (lambda: compare(text, "7").equal, lambda: grade(r"so \boxed{" + text + "}", "7").is_correct,
                   lambda: grade(text, "7").is_correct):
            t0 = time.monotonic()
            equal = fn()
            out.append((text[:40], equal, time.monotonic() - t0))
    return out


def _check(results, marker):
    assert len(HOSTILE_ANSWERS) >= 30
    assert [r for r in results if r[1]] == []
    assert [r for r in results if r[2] > LIMIT_S] == []
    assert not os.path.exists(marker)


def test_main_thread(tmp_path):
    marker = str(tmp_path / "pwned")
    _check(_run_all(marker), marker)


def test_other_thread(tmp_path):
    marker = str(tmp_path / "pwned")
    box = []
    t = threading.Thread(target=lambda: box.append(_run_all(marker)))
    t.start()
    t.join(300)
    _check(box[0], marker)


@pytest.fixture(scope="module")
def ray_local():
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray

    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    yield ray
    if started:
        ray.shutdown()


def test_inside_ray_task(ray_local, tmp_path):
    import sys

    from ray import cloudpickle

    ray = ray_local
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the test module is not importable in workers
    marker = str(tmp_path / "pwned")
    results = ray.get(ray.remote(_run_all).remote(marker), timeout=300)
    _check(results, marker)
