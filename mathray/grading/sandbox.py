"""A small pool of worker processes that run whitelisted pure functions under a hard wall-clock limit.

Signal-based timeouts only work on the main thread of the main interpreter, which Ray workers and
threaded actors are not. Here each worker is a separate interpreter (``python -m
mathray.grading.sandbox``, no fork of the caller, no re-import of the caller's ``__main__``) talking JSON
lines over pipes. ``call(name, *args, timeout=)`` returns ``(status, value)``:
- ``ok`` / ``error`` (the function raised; value is the reason);
- ``timeout``: the limit passed. It covers waiting for a free worker and for a starting worker to be
  ready as well as the call itself; a worker that overran is SIGKILLed and replaced, one that was only
  still starting is kept;
- ``sandbox-error``: the worker died or could not start. Its stderr (kept in a temporary file) is logged
  at ERROR level and returned, and the worker is replaced: never a silent verdict.
A warm spare is kept so a replacement is ready at once. Workers cap their address space and exit when
the parent goes away (EOF on stdin). Only functions named in ``ALLOWED`` run; arguments are strings.

One pool per process, created lazily by ``get_pool()`` and reused (Ray actors keep theirs); the grader takes it
by ``ready_pool()``, which waits out the workers' start-up once, outside any call's limit.
"""
from __future__ import annotations

import atexit
import importlib
import json
import logging
import os
import queue
import select
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from mathray.grading.sympy_compare import warm_up

ALLOWED = {"symbolic_equal": "mathray.grading.sympy_compare:symbolic_equal", "warm_up": "mathray.grading.sympy_compare:warm_up",
           "echo": "mathray.grading.sandbox:_echo", "sleep": "mathray.grading.sandbox:_sleep",
           "exit": "mathray.grading.sandbox:_exit"}
PRELOAD = ("mathray.grading.sympy_compare", "sympy", "latex2sympy2_extended.latex2sympy2")
DEFAULT_TIMEOUT_S = 1.0
STARTUP_TIMEOUT_S = 60.0  # for ``wait_ready``: imports and parser warm-up take seconds, longer on a loaded machine
WORKER_MEMORY_BYTES = 2**30  # address space; a worker idles at ~70 MB
logger = logging.getLogger(__name__)
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


def _echo(x):  # the readiness probe and tests
    return x


def _sleep(seconds: str):  # tests: a call that overruns its limit
    time.sleep(float(seconds))
    return "woke"


def _exit(message: str):  # tests: a worker that dies in a call
    sys.stderr.write(message + "\n")
    sys.stderr.flush()
    os._exit(3)


# The only variables a worker inherits: it evaluates untrusted model output, so it never sees credentials
# (AWS keys, tokens) or anything else of the caller's environment.
WORKER_ENV = ("PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "PYTHONHASHSEED", "OMP_NUM_THREADS",
              "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def worker_env() -> dict[str, str]:
    """The environment of a sandbox worker: ``WORKER_ENV`` and ``LC_*`` from the caller's, plus PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k in WORKER_ENV or k.startswith("LC_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, os.environ.get("PYTHONPATH")) if p)
    return env


class _Worker:
    def __init__(self, command: list[str]):
        env = worker_env()
        self.stderr = tempfile.TemporaryFile()  # a file, not a pipe: a chatty worker can never block on it
        self.proc = subprocess.Popen(command, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.stderr, env=env, close_fds=True)
        self._buf = b""
        self.ready = False

    def send(self, name: str, args: tuple) -> None:
        self.proc.stdin.write(json.dumps([name, list(args)]).encode() + b"\n")
        self.proc.stdin.flush()

    def receive(self, deadline: float):
        """The next reply line, or None if the deadline passes first. Raises EOFError if the worker died."""
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                raise EOFError("worker exited")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return json.loads(line)

    def stderr_tail(self, size: int = 2000) -> str:
        try:
            self.stderr.seek(0, os.SEEK_END)
            self.stderr.seek(max(0, self.stderr.tell() - size))
            return self.stderr.read().decode(errors="replace").strip()
        except (OSError, ValueError):
            return ""

    def kill(self) -> None:
        try:
            self.proc.kill()
            self.proc.wait(timeout=2.0)
        except Exception:
            pass
        for f in (self.proc.stdin, self.proc.stdout, self.stderr):
            try:
                f.close()
            except Exception:
                pass


class WorkerPool:
    """``call(name, *args, timeout=) -> (status, value)``; see the module docstring. ``command`` starts one
    worker (tests pass one that cannot start)."""

    def __init__(self, size: int = 1, timeout: float = DEFAULT_TIMEOUT_S, spares: int = 1,
                 command: list[str] | None = None):
        self.command = command or [sys.executable, "-m", "mathray.grading.sandbox"]
        self.timeout = timeout
        self.owner_pid = os.getpid()
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._spares: queue.Queue[_Worker] = queue.Queue()
        self._all: set[_Worker] = set()
        self._lock = threading.Lock()
        self._closed = False
        self.ready = False   # ``ready_pool`` has waited for its start-up (whether a worker came up or not)
        self.replaced = 0
        for _ in range(size):
            self._idle.put(self._start())
        for _ in range(spares):
            self._spares.put(self._start())

    def _start(self) -> _Worker:
        w = _Worker(self.command)
        with self._lock:
            self._all.add(w)
        return w

    def _replace(self, w: _Worker) -> None:
        """Kill ``w``; a warm spare takes its place at once. Reaping ``w`` and starting the next spare happen
        on a background thread, off the caller's time budget."""
        with self._lock:
            self._all.discard(w)
        try:
            w.proc.kill()
        except OSError:
            pass
        self.replaced += 1
        try:
            self._idle.put(self._spares.get_nowait())
        except queue.Empty:
            self._idle.put(self._start())
        threading.Thread(target=self._retire_and_refill, args=(w,), daemon=True).start()

    def _retire_and_refill(self, w: _Worker) -> None:
        w.kill()
        if not self._closed:
            self._spares.put(self._start())

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT_S) -> bool:
        """Block until an idle worker is ready and warmed up (tests and benchmarks: start-up and first-use
        costs excluded from later calls' limits). A worker warms up in its idle time anyway; a request
        interrupts that between steps."""
        return self.call("echo", "ready", timeout=timeout) == ("ok", "ready") and \
            self.call("warm_up", timeout=timeout)[0] == "ok"

    def _failed(self, w: _Worker, what: str):
        try:
            code = w.proc.wait(timeout=0.5)  # it closed its stdout; let it finish exiting
        except subprocess.TimeoutExpired:
            code = None
        tail = w.stderr_tail()
        self._replace(w)
        message = f"sandbox worker {what} (exit code {code}); stderr: {tail or '(empty)'}"
        logger.error("%s", message)
        return "sandbox-error", message

    def call(self, name: str, *args, timeout: float | None = None):
        if name not in ALLOWED:
            raise ValueError(f"{name!r} is not an allowed sandbox function")
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        try:
            w = self._idle.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            return "timeout", "no free worker within the limit"
        try:
            if not w.ready:
                reply = w.receive(deadline)
                if reply is None:  # still starting: keep it for the next call
                    self._idle.put(w)
                    return "timeout", "worker still starting"
                if reply != ["ready"]:
                    return self._failed(w, f"sent {str(reply)[:80]} instead of ready")
                w.ready = True
            w.send(name, args)
            reply = w.receive(deadline)
        except (EOFError, OSError, ValueError) as e:
            return self._failed(w, "did not start" if not w.ready else f"died in {name} ({type(e).__name__})")
        if reply is None:
            self._replace(w)
            return "timeout", None
        self._idle.put(w)
        return reply[0], reply[1]

    def close(self) -> None:
        self._closed = True
        with self._lock:
            workers = list(self._all)
            self._all.clear()
        for w in workers:
            w.kill()


_POOL: WorkerPool | None = None
_POOL_LOCK = threading.Lock()


def get_pool(size: int = 1) -> WorkerPool:
    """This process's pool (created on first use with ``size`` workers; a forked child gets its own)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL.owner_pid != os.getpid():
            _POOL = WorkerPool(size=size)
        return _POOL


def ready_pool() -> WorkerPool:
    """This process's pool, once one of its workers is up and warm (``wait_ready``, once per pool; a pool whose
    workers cannot start answers its calls with ``sandbox-error``). A call's limit covers waiting for a starting
    worker: without this wait, the first answers graded in a process on a busy node would grade ``timeout``
    while the sandbox starts, and a run's grades would depend on the node's load."""
    pool = get_pool()
    if not pool.ready:
        pool.wait_ready()
        pool.ready = True
    return pool


@atexit.register
def _close_pool() -> None:
    if _POOL is not None and _POOL.owner_pid == os.getpid():
        _POOL.close()


def _serve() -> None:
    """Worker loop: one JSON request per stdin line, one JSON reply per stdout line."""
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (WORKER_MEMORY_BYTES, WORKER_MEMORY_BYTES))
    except (ImportError, ValueError, OSError):
        pass
    for module in PRELOAD:
        importlib.import_module(module)
    out = sys.stdout.buffer
    out.write(b'["ready"]\n')
    out.flush()

    warm_up(stop=lambda: bool(select.select([sys.stdin], [], [], 0)[0]))  # idle time only: a request stops it
    for line in sys.stdin.buffer:
        try:
            name, args = json.loads(line)
            module, attr = ALLOWED[name].split(":")
            reply = ["ok", getattr(importlib.import_module(module), attr)(*[str(a) for a in args])]
        except MemoryError:
            reply = ["error", "memory"]
        except Exception as e:  # the caller gets a reason; the worker lives on
            reply = ["error", f"{type(e).__name__}: {str(e)[:200]}"]
        out.write(json.dumps(reply).encode() + b"\n")
        out.flush()


if __name__ == "__main__":
    _serve()
