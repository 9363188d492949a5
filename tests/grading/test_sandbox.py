from __future__ import annotations

import logging
import sys
import threading
import time

import pytest

from mathray.grading import grade
from mathray.grading.sandbox import WorkerPool, get_pool


@pytest.fixture(scope="module")
def pool():
    p = WorkerPool(size=1, timeout=0.5)
    assert p.wait_ready()
    yield p
    p.close()


def test_runs_whitelisted_functions_only(pool):
    assert pool.call("echo", "hi") == ("ok", "hi")
    with pytest.raises(ValueError):
        pool.call("eval", "1+1")


def test_overrun_is_killed_and_replaced(pool):
    before = pool.replaced
    t0 = time.monotonic()
    assert pool.call("sleep", "30") == ("timeout", None)
    assert time.monotonic() - t0 < 5
    assert pool.replaced == before + 1
    assert pool.wait_ready()
    assert pool.call("echo", "again") == ("ok", "again")  # a worker forked from the template took over


def test_errors_come_back_as_reasons(pool):
    status, value = pool.call("symbolic_equal", r"\frac{", "1")
    assert status == "error" and value.startswith("Refused")
    status, value = pool.call("symbolic_equal", r"\frac{1}{}", "1")
    assert status == "error" and "parse-error" in value


def test_a_worker_that_dies_is_reported_with_its_stderr_and_replaced(pool, caplog):
    before = pool.replaced
    with caplog.at_level(logging.ERROR, logger="mathray.grading.sandbox"):
        status, message = pool.call("exit", "segfault-like death", timeout=5)
    assert status == "sandbox-error"
    assert "segfault-like death" in message and "exit code 3" in message
    assert "segfault-like death" in caplog.text
    assert pool.replaced == before + 1
    assert pool.wait_ready()
    assert pool.call("echo", "alive") == ("ok", "alive")


def test_a_worker_that_cannot_start_is_an_error_not_a_verdict(caplog):
    broken = WorkerPool(size=1, command=[sys.executable, "-c",
                                         "import sys; sys.stderr.write('ImportError: no sympy'); sys.exit(1)"])
    try:
        with caplog.at_level(logging.ERROR, logger="mathray.grading.sandbox"):
            status, message = broken.call("symbolic_equal", "x", "x", timeout=10)
        assert status == "sandbox-error"
        assert "did not start" in message and "ImportError: no sympy" in message
        assert "ImportError: no sympy" in caplog.text
    finally:
        broken.close()


def test_start_up_counts_against_the_limit_and_a_starting_worker_is_kept():
    fresh = WorkerPool(size=1)
    try:
        t0 = time.monotonic()
        assert fresh.call("echo", "x", timeout=0.05) == ("timeout", "worker still starting")
        assert time.monotonic() - t0 < 1
        assert fresh.replaced == 0
        assert fresh.wait_ready()
    finally:
        fresh.close()


def test_timeouts_work_off_the_main_thread():
    results = []
    get_pool().wait_ready()
    t = threading.Thread(target=lambda: results.append(get_pool().call("sleep", "30", timeout=0.3)))
    t.start()
    t.join(10)
    assert results == [("timeout", None)]


def test_grade_reports_a_dead_sandbox_as_sandbox_error(monkeypatch):
    import mathray.grading.sandbox as sandbox

    broken = WorkerPool(size=1, command=[sys.executable, "-c", "import sys; sys.exit(1)"])
    monkeypatch.setattr(sandbox, "_POOL", broken)
    try:
        result = grade(r"so \boxed{x^{2} > 4}", r"(-\infty,-2)\cup(2,\infty)", timeout=10)
        assert (result.is_correct, result.reason) == (False, "sandbox-error")
        again = grade(r"so \boxed{x^{2} > 4}", r"(-\infty,-2)\cup(2,\infty)", timeout=10)
        assert again.reason == "sandbox-error"  # not cached as a verdict
    finally:
        broken.close()


def test_ready_pool_waits_out_the_start_up_so_a_first_call_keeps_its_budget(monkeypatch):
    """A fresh pool's first call with a 0.1 s budget times out while its worker starts (the test above); taken by
    ``ready_pool`` the same pool answers it."""
    from mathray.grading import sandbox

    monkeypatch.setattr(sandbox, "_POOL", None)   # this process's pool, fresh: its worker not started yet
    try:
        pool = sandbox.ready_pool()
        assert pool is sandbox.get_pool() and pool.ready
        assert pool.call("echo", "x", timeout=0.1) == ("ok", "x")
        assert sandbox.ready_pool() is pool      # once per pool
    finally:
        sandbox.get_pool().close()


def test_a_first_grade_in_a_process_gets_its_budget_after_the_sandbox_starts(monkeypatch):
    """A comparison that needs the sandbox, on a fresh pool and with a budget shorter than the workers' start-up,
    gives its verdict: the start-up is waited out outside the budget (without that: ``timeout``)."""
    from mathray.grading import sandbox, sandboxed_symbolic

    monkeypatch.setattr(sandbox, "_POOL", None)
    monkeypatch.setattr(sandboxed_symbolic, "_CACHE", {})
    try:
        result = grade(r"so \boxed{x^{2} > 4}", r"(-\infty,-2)\cup(2,\infty)", timeout=0.5)
        assert (result.is_correct, result.reason) == (True, "equal")
    finally:
        sandbox.get_pool().close()
