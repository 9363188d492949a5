"""A small pool of worker processes that run whitelisted pure functions under a hard wall-clock limit.

Signal-based timeouts only work on the main thread of the main interpreter, which Ray workers and
threaded actors are not. Here each worker is a separate process talking JSON lines over pipes, forked from the
pool's template (``python -m mathray.grading.sandbox``: an interpreter of its own, no fork of the caller, no
re-import of the caller's ``__main__``), which imports the grading modules and warms the parser up once: a
worker, a first one or one replacing a worker killed at its limit, is ready in milliseconds with warm caches
(a new interpreter takes seconds of CPU). ``call(name, *args, timeout=)`` returns ``(status, value)``:
- ``ok`` / ``error`` (the function raised; value is the reason);
- ``timeout``: the limit passed. It covers waiting for a free worker and for a starting worker to be
  ready as well as the call itself; a worker that overran is SIGKILLed and replaced, one that was only
  still starting is kept;
- ``sandbox-error``: the worker died or could not start. Its stderr (kept in a temporary file; the template's
  when the template could not start) is logged at ERROR level and returned, and the worker is replaced: never a
  silent verdict.
Workers cap their address space and exit when the parent goes away (EOF on stdin); the template exits when
the pool closes its socket. Only functions named in ``ALLOWED`` run; arguments are strings. Linux (the template
hands each worker's pipes over a ``SOCK_SEQPACKET`` Unix socket).

One pool per process, created lazily by ``get_pool()`` and reused (Ray actors keep theirs); the grader takes it
by ``ready_pool()``, which waits out the workers' start-up once, outside any call's limit.
"""
from __future__ import annotations

import atexit
import collections
import importlib
import json
import logging
import os
import queue
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from mathray.grading.sympy_compare import warm_up

ALLOWED = {"symbolic_equal": "mathray.grading.sympy_compare:symbolic_equal", "echo": "mathray.grading.sandbox:_echo",
           "sleep": "mathray.grading.sandbox:_sleep", "exit": "mathray.grading.sandbox:_exit"}
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


class _Template:
    """The pool's warm template process and the socket it forks workers over: ``fork`` asks for a worker (the
    replies come in order: ``attach`` gives each its pid and pipes), and the template reports each worker's
    exit status when it reaps it (``exit_code``). One thread reads the socket at a time (``lock``); asking for a
    worker never waits behind that reader (``send_lock``)."""

    def __init__(self, command: list[str]):
        self.sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([*command, str(theirs.fileno())], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self.stderr, env=worker_env(),
                                     pass_fds=(theirs.fileno(),))
        theirs.close()
        self.lock, self.send_lock = threading.Lock(), threading.Lock()
        self.pending: collections.deque[_Worker] = collections.deque()   # forks asked for, not yet answered
        self.codes: dict[int, int] = {}
        self.gone = False   # the template died: no worker will come

    def fork(self, w: _Worker) -> None:
        with self.send_lock:   # in ``pending`` before its request is out: the reader pops replies in order
            self.pending.append(w)
            try:
                self.sock.send(b"fork")
            except OSError:   # the template is gone (or the pool closed): no reply will come for it
                w.failed = True
                try:
                    self.pending.remove(w)
                except ValueError:
                    pass

    def _read(self, deadline: float) -> bool:
        """Handle one message from the template (the caller holds the lock); False if none came in time."""
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([self.sock], [], [], remaining)[0]:
            return False
        try:
            msg, fds, _, _ = socket.recv_fds(self.sock, 64, 3)
        except OSError:
            msg, fds = b"", []
        if not msg:   # the template is gone: no pending fork will be answered
            self.gone = True
            for w in self.pending:
                w.failed = True
            self.pending.clear()
            return True
        kind, pid, *code = msg.decode().split()
        if kind == "exit":   # kept for ``exit_code``; killed workers' statuses nobody asks for age out
            self.codes[int(pid)] = int(code[0])
            if len(self.codes) > 256:
                self.codes.pop(next(iter(self.codes)))
        else:
            self.pending.popleft().attach(int(pid), fds)
        return True

    def wait_for(self, done, deadline: float) -> bool:
        """Read the template's messages until ``done()`` or the deadline."""
        if done():
            return True
        if not self.lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            return done()
        try:
            while not done() and not self.gone and self._read(deadline):
                pass
            return done()
        finally:
            self.lock.release()

    def exit_code(self, pid: int | None, timeout: float = 0.5) -> int | None:
        """A worker's exit status once the template has reaped it (the template's own when it has gone)."""
        deadline = time.monotonic() + timeout
        if pid is not None and self.wait_for(lambda: pid in self.codes, deadline):
            return self.codes.pop(pid)
        try:
            return self.proc.wait(timeout=max(0.0, deadline - time.monotonic())) if self.gone else None
        except subprocess.TimeoutExpired:
            return None

    def stderr_tail(self) -> str:
        return _tail(self.stderr)

    def close(self) -> None:
        self.sock.close()   # the template exits at EOF
        try:
            self.proc.kill()
            self.proc.wait(timeout=2.0)
        except Exception:
            pass
        self.stderr.close()


def _tail(f, size: int = 2000) -> str:
    try:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - size))
        return f.read().decode(errors="replace").strip()
    except (OSError, ValueError):
        return ""


class _Worker:
    """A worker forked from the template: its pid, stdin and stdout pipes and stderr file once attached."""

    def __init__(self, template: _Template):
        self.template = template
        self.pid: int | None = None
        self.stdin = self.stdout = self.stderr = None
        self._buf = b""
        self.ready = self.failed = self.killed = False
        template.fork(self)

    def attach(self, pid: int, fds: list[int]) -> None:
        self.pid = pid
        self.stdin, self.stdout, self.stderr = (os.fdopen(fds[0], "wb"), os.fdopen(fds[1], "rb", buffering=0),
                                                os.fdopen(fds[2], "rb"))
        if self.killed:   # killed while its fork was pending
            self.kill()

    def send(self, name: str, args: tuple) -> None:
        self.stdin.write(json.dumps([name, list(args)]).encode() + b"\n")
        self.stdin.flush()

    def receive(self, deadline: float):
        """The next reply line, or None if the deadline passes first. Raises EOFError if the worker died or
        could not be forked."""
        if not self.template.wait_for(lambda: self.pid is not None or self.failed, deadline):
            return None
        if self.failed:
            raise EOFError("worker not forked")
        fd = self.stdout.fileno()
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

    def stderr_tail(self) -> str:
        return _tail(self.stderr) if self.stderr else self.template.stderr_tail()

    def kill(self) -> None:
        self.killed = True
        if self.pid is None:
            return
        try:
            os.kill(self.pid, signal.SIGKILL)
        except OSError:
            pass
        for f in (self.stdin, self.stdout, self.stderr):
            try:
                f.close()
            except Exception:
                pass


class WorkerPool:
    """``call(name, *args, timeout=) -> (status, value)``; see the module docstring. ``command`` starts the
    template (tests pass one that cannot start)."""

    def __init__(self, size: int = 1, timeout: float = DEFAULT_TIMEOUT_S, command: list[str] | None = None):
        self.timeout = timeout
        self.owner_pid = os.getpid()
        self._template = _Template(command or [sys.executable, "-m", "mathray.grading.sandbox"])
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._all: set[_Worker] = set()
        self._lock = threading.Lock()
        self.ready = False   # ``ready_pool`` has waited for its start-up (whether a worker came up or not)
        self.replaced = 0
        for _ in range(size):
            self._idle.put(self._start())

    def _start(self) -> _Worker:
        w = _Worker(self._template)
        with self._lock:
            self._all.add(w)
        return w

    def _replace(self, w: _Worker) -> None:
        """Kill ``w``; a worker forked from the warm template takes its place at once."""
        with self._lock:
            self._all.discard(w)
        w.kill()
        self.replaced += 1
        self._idle.put(self._start())

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT_S) -> bool:
        """Block until an idle worker is ready (tests and benchmarks: the template's start-up excluded from
        later calls' limits)."""
        return self.call("echo", "ready", timeout=timeout) == ("ok", "ready")

    def _failed(self, w: _Worker, what: str):
        code = self._template.exit_code(w.pid)
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
        with self._lock:
            workers = list(self._all)
            self._all.clear()
        for w in workers:
            w.kill()
        self._template.close()


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
    """This process's pool, once one of its workers is up (``wait_ready``, once per pool; a pool whose template
    cannot start answers its calls with ``sandbox-error``). A call's limit covers waiting for a starting
    worker: without this wait, the first answers graded in a process on a busy node would grade ``timeout``
    while the template starts, and a run's grades would depend on the node's load."""
    pool = get_pool()
    if not pool.ready:
        pool.wait_ready()
        pool.ready = True
    return pool


@atexit.register
def _close_pool() -> None:
    if _POOL is not None and _POOL.owner_pid == os.getpid():
        _POOL.close()


def _template(fd: int) -> None:
    """The template: cap the address space (its workers inherit the cap), import and warm up, then fork a
    worker per request on the socket ``fd`` and report each worker's exit status; exit when the pool goes."""
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (WORKER_MEMORY_BYTES, WORKER_MEMORY_BYTES))
    except (ImportError, ValueError, OSError):
        pass
    for module in PRELOAD:
        importlib.import_module(module)
    warm_up()
    sock = socket.socket(fileno=fd)
    wake_r, wake_w = os.pipe()   # a worker's exit wakes the loop at once (its status is reported)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    try:
        while True:
            readable = select.select([sock, wake_r], [], [], 60)[0]
            if wake_r in readable:
                os.read(wake_r, 512)
            _report_exits(sock)
            if sock in readable:
                if not sock.recv(64):
                    break
                pid, fds = _fork_worker()
                socket.send_fds(sock, [f"fork {pid}".encode()], fds)
                for f in fds:
                    os.close(f)
    except OSError:   # the pool has gone
        pass
    os._exit(0)


def _report_exits(sock) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        sock.send(f"exit {pid} {os.waitstatus_to_exitcode(status)}".encode())


def _fork_worker() -> tuple[int, list[int]]:
    """A worker: a child reading requests on a new stdin pipe, replying on a new stdout pipe, its stderr a
    temporary file; the parent keeps the ends the pool needs: (pid, [stdin, stdout, stderr])."""
    stdin_r, stdin_w = os.pipe()
    stdout_r, stdout_w = os.pipe()
    stderr = tempfile.TemporaryFile()
    pid = os.fork()
    if pid == 0:
        try:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            for src, dst in ((stdin_r, 0), (stdout_w, 1), (stderr.fileno(), 2)):
                os.dup2(src, dst)
            for fd in map(int, os.listdir("/proc/self/fd")):   # the socket, the template's stderr, ...
                if fd > 2:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            _serve()
        finally:
            os._exit(0)
    os.close(stdin_r)
    os.close(stdout_w)
    err = os.dup(stderr.fileno())
    stderr.close()
    return pid, [stdin_w, stdout_r, err]


def _serve() -> None:
    """Worker loop: one JSON request per stdin line, one JSON reply per stdout line."""
    out = sys.stdout.buffer
    out.write(b'["ready"]\n')
    out.flush()
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
    _template(int(sys.argv[1]))
