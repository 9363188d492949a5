from __future__ import annotations

import threading
import time

import pytest

from mathray.grading.sandbox import WorkerPool, get_pool


@pytest.fixture(scope="module")
def pool():
    p = WorkerPool(size=1, timeout=0.5)
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
    assert pool.call("echo", "again") == ("ok", "again")  # the spare took over


def test_errors_come_back_as_reasons(pool):
    status, value = pool.call("symbolic_equal", r"\frac{", "1")
    assert status == "error" and value.startswith("Refused")
    status, value = pool.call("symbolic_equal", r"\frac{1}{}", "1")
    assert status == "error" and "parse-error" in value


def test_timeouts_work_off_the_main_thread():
    results = []
    t = threading.Thread(target=lambda: results.append(get_pool().call("sleep", "30", timeout=0.3)))
    t.start()
    t.join(10)
    assert results == [("timeout", None)]
