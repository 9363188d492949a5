"""A grading sandbox worker that starts as an interpreter of its own against one forked from the pool's warm
template (``mathray.grading.sandbox``): the CPU seconds each costs until it answers, and the wait for a worker
that replaces one killed at its limit.

    .venv/bin/python benchmarks/sandbox_template.py

- ``interpreter``: a fresh pool's template when its first worker answers: a Python start, the grading
  modules' imports and the parser's warm-up (the fork of that first worker adds milliseconds). Every worker
  paid this before the template, the warm spare kept beside each pool and every replacement included;
- ``forked``: the worker forked from the warm template to replace one killed by a call that overran its
  limit: its own CPU once it has answered, and the time from the overrun call's return to its answer.
A pool of one worker cost two interpreters (the worker and its spare); it now costs one and a forked worker.
Each round is a new pool; the best of each side over the rounds is kept (the machine may be shared).
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mathray.grading.sandbox import WorkerPool  # noqa: E402

ROUNDS = 3


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_round() -> dict:
    pool = WorkerPool(size=1, timeout=0.5)
    try:
        assert pool.wait_ready()
        interpreter = cpu_s(pool._template.proc.pid)
        assert pool.call("sleep", "30", timeout=0.2) == ("timeout", None)   # killed and replaced
        returned = time.monotonic()
        assert pool.call("echo", "x", timeout=10) == ("ok", "x")
        ready_ms = (time.monotonic() - returned) * 1000
        (worker,) = pool._all
        forked = cpu_s(worker.pid)
        t0 = time.monotonic()
        status, equal = pool.call("symbolic_equal", r"\frac{\sqrt{8}}{2}", r"\sqrt{2}", timeout=10)
        assert (status, equal) == ("ok", True), (status, equal)
        return {"interpreter": interpreter, "forked": forked, "ready_ms": ready_ms,
                "grade_ms": (time.monotonic() - t0) * 1000}
    finally:
        pool.close()


def main() -> None:
    rounds = []
    for i in range(ROUNDS):
        rounds.append(one_round())
        print(f"round {i}: " + ", ".join(f"{k} {v:.3f}" for k, v in rounds[-1].items()), flush=True)
    best = {k: min(r[k] for r in rounds) for k in rounds[0]}
    print(f"RESULT interpreter_worker_cpu_s={best['interpreter']:.2f} forked_worker_cpu_s={best['forked']:.3f} "
          f"forked_worker_ready_ms={best['ready_ms']:.0f} forked_first_grade_ms={best['grade_ms']:.0f} "
          f"pool_cpu_s_interpreters={2 * best['interpreter']:.2f} "
          f"pool_cpu_s_template={best['interpreter'] + best['forked']:.2f}")


if __name__ == "__main__":
    main()
