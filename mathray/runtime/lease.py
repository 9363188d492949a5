"""One writer per output: a lease object in the output, taken before a run writes anything and released at
its end.

``<output>/_lease.json`` records the owner (a random id per run), the job, host, pid and pid namespace,
when the run started, its last heartbeat and when the lease expires (``MATHRAY_LEASE_TTL_S``, default
60 s, renewed by a background thread every quarter of that). A second driver on the same output refuses
(``OutputLeased``, exit 2) with the owner's details while the lease is live, and takes it over when it is
stale: expired, or held by a process that no longer exists on this host (same host name and pid
namespace), so a re-run right after a SIGKILLed driver does not have to wait for the expiry.

How the lease is written without a race between two drivers:
- local disk: the read-check-write is done under ``fcntl.flock`` on the output directory (processes of one
  machine; a shared NFS mount needs working ``flock``), the lease file replaced atomically and fsynced;
- S3 (and S3-compatible stores): conditional writes. A new lease is ``PutObject`` with ``If-None-Match: *``
  (fails with 412 if another driver created one first); a takeover or renewal is ``PutObject`` with
  ``If-Match: <ETag read>`` (fails if the lease changed since it was read); release is ``DeleteObject`` with
  ``If-Match``. Every write is read back and its owner id compared, which is the whole protection on a
  store that ignores the conditions (then two drivers racing within one round trip can both believe they
  won; the read-back catches every slower race).

A heartbeat that finds the lease taken over marks it lost: ``check_held(uri)`` (called by
``ShardStore.commit_shard`` before a marker is written) then raises ``LeaseLost`` and the run stops
writing. Clocks: expiry compares this machine's clock with the writer's; skew between drivers' machines
shortens or lengthens a stale lease by the skew.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import functools
import json
import logging
import os
import posixpath
import socket
import threading
import time
import uuid
from dataclasses import asdict, dataclass

import psutil

from mathray.runtime import env, retries
from mathray.runtime.errors import LeaseLost, OutputLeased
from mathray.runtime.object_io import resolve

log = logging.getLogger(__name__)
LEASE_FILE = "_lease.json"
_held: dict[str, "OutputLease"] = {}   # output URI -> the lease this process holds on it
_released: set[str] = set()           # owner ids this process released but could not delete (store down)
_held_lock = threading.Lock()
_RELEASE_RETRY_S = 10.0               # a release does not wait the whole retry window for a store that is down


def attempt_id() -> str:
    """A name for one writer process's temporary files: host, pid, process start mark, random suffix."""
    return f"{socket.gethostname()}-{os.getpid()}-{_start_mark(os.getpid())}-{uuid.uuid4().hex[:6]}"


def attempt_alive(name: str) -> bool:
    """Whether the writer that ``attempt_id()`` named may still run: True for another host's attempt (it cannot
    be checked from here), False for a name of another form (an older layout) or a process that is gone."""
    parts = name.rsplit("-", 3)
    if len(parts) != 4 or not (parts[1].isdigit() and parts[2].isdigit()):
        return False
    host, pid, mark, _ = parts
    return host != socket.gethostname() or same_process(int(pid), int(mark))


_PROCFS = os.path.isdir("/proc/self")


def _start_mark(pid: int) -> int | None:
    """When ``pid`` started, or None when no such process runs. With procfs (Linux): clock ticks since boot
    (``/proc/<pid>/stat`` field 22), fixed for the life of the process. A wall-clock start time (psutil's
    ``create_time``, boot time + ticks) is not: it moves whenever the clock is stepped, so an exact compare
    of it mistakes a live writer for a recycled pid. Elsewhere: psutil's start time, whole seconds."""
    if _PROCFS:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            return None
        fields = stat[stat.rindex(b")") + 2:].split()   # the name (field 2) may hold spaces and ')'
        return None if fields[0] == b"Z" else int(fields[19])
    try:
        proc = psutil.Process(pid)
        return None if proc.status() == psutil.STATUS_ZOMBIE else int(proc.create_time())
    except psutil.Error:   # NoSuchProcess, AccessDenied: cannot tell it runs
        return None


def same_process(pid: int, mark: int) -> bool:
    """Whether ``pid`` still runs as the process whose ``_start_mark`` was ``mark`` (not a recycled pid)."""
    now = _start_mark(pid)
    return now is not None and (now == mark if _PROCFS else abs(now - mark) <= 1)


def _iso(t: float) -> str:
    return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).isoformat(timespec="seconds")


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


@dataclass
class LeaseRecord:
    owner: str
    job: str
    host: str
    pid: int
    pid_namespace: str
    started_at: str
    heartbeat_at: str
    expires_at: str
    expires_unix: float
    ttl_s: float
    pid_start: int | None = None   # the writer's ``_start_mark`` (records written before it lack one)

    @classmethod
    def parse(cls, data: bytes) -> "LeaseRecord | None":
        """The record, or None for an unreadable lease object (treated as absent: a writer died mid-write)."""
        try:
            return cls(**json.loads(data))
        except (ValueError, TypeError):
            return None

    def stale_reason(self, now: float) -> str | None:
        """Why this lease no longer protects a live writer, or None while it does."""
        if now > self.expires_unix:
            return f"expired {now - self.expires_unix:.0f} s ago"
        if self.host == socket.gethostname() and self.pid_namespace == _pid_namespace() \
                and not self._writer_runs():
            return f"pid {self.pid} no longer runs on this host"
        return None

    def _writer_runs(self) -> bool:
        if self.pid_start is not None:
            return same_process(self.pid, self.pid_start)
        return process_alive(self.pid, _unix(self.started_at))

    def describe(self, now: float) -> str:
        return (f"job {self.job!r}, pid {self.pid} on host {self.host} (owner {self.owner}), started "
                f"{self.started_at}, last heartbeat {now - _unix(self.heartbeat_at):.0f} s ago, lease expires in "
                f"{self.expires_unix - now:.0f} s")


def _unix(iso: str) -> float:
    return _dt.datetime.fromisoformat(iso).timestamp()


def process_alive(pid: int, not_after: float) -> bool:
    """True when ``pid`` runs on this host and started no later than ``not_after`` (unix time; a recycled pid
    belongs to a process started after it)."""
    try:
        proc = psutil.Process(pid)
        return proc.create_time() <= not_after + 1.0 and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:   # NoSuchProcess, AccessDenied: treat "cannot see it" as gone
        return False


# -- where the lease object lives --------------------------------------------------------------------
class _LocalBackend:
    def __init__(self, root: str):
        self.root, self.path = root, posixpath.join(root, LEASE_FILE)

    @contextlib.contextmanager
    def locked(self):
        """``flock`` on the output directory itself (Linux allows it on directories): no lock file left."""
        import fcntl

        os.makedirs(self.root, exist_ok=True)
        fd = os.open(self.root, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)   # closing the descriptor releases the lock

    def read(self, window_s: float | None = None) -> tuple[LeaseRecord | None, str | None]:
        try:
            with open(self.path, "rb") as f:
                return LeaseRecord.parse(f.read()), "local"
        except FileNotFoundError:
            return None, None

    def write(self, rec: LeaseRecord, expect: str | None, create: bool) -> str | None:
        tmp = f"{self.path}.{rec.owner}.tmp"
        with open(tmp, "wb") as f:
            f.write(json.dumps(asdict(rec), indent=1).encode())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        return "local"

    def delete(self, expect: str | None, window_s: float | None = None) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.path)


class _S3Backend:
    def __init__(self, uri: str, bucket: str, key: str):
        self.uri, self.bucket, self.key = uri, bucket, key
        self.conditional = True   # cleared when the store refuses conditional headers

    @contextlib.contextmanager
    def locked(self):
        yield   # the conditional writes are the lock

    @functools.cached_property
    def client(self):
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=env.s3_endpoint(), region_name=env.aws_region(),
                            config=Config(retries={"mode": "standard", "max_attempts": 3}))

    def _call(self, what: str, fn, window_s: float | None = None):
        return retries.call(fn, what=f"{what} {self.uri}", where=retries.endpoint_of(self.uri), window_s=window_s)

    def read(self, window_s: float | None = None) -> tuple[LeaseRecord | None, str | None]:
        from botocore.exceptions import ClientError

        def get():
            try:
                obj = self.client.get_object(Bucket=self.bucket, Key=self.key)
                return LeaseRecord.parse(obj["Body"].read()), obj["ETag"]
            except ClientError as e:
                if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                    return None, None
                raise
        return self._call("reading the lease", get, window_s)

    def write(self, rec: LeaseRecord, expect: str | None, create: bool) -> str | None:
        """The new ETag, or None when a condition failed (someone else wrote the lease first)."""
        from botocore.exceptions import ClientError

        body = json.dumps(asdict(rec), indent=1).encode()
        cond = ({"IfNoneMatch": "*"} if create else {"IfMatch": expect}) if self.conditional and (
            create or expect) else {}

        def put():
            try:
                return self.client.put_object(Bucket=self.bucket, Key=self.key, Body=body, **cond)["ETag"]
            except ClientError as e:
                code = e.response.get("Error", {}).get("Code")
                if code in ("PreconditionFailed", "ConditionalRequestConflict"):
                    return None
                if code in ("NotImplemented", "InvalidArgument", "InvalidRequest") and cond:
                    log.warning("lease: %s refuses conditional writes (%s); falling back to write-then-read-back",
                                self.uri, code)
                    self.conditional = False
                    return self.client.put_object(Bucket=self.bucket, Key=self.key, Body=body)["ETag"]
                raise
        return self._call("writing the lease", put)

    def delete(self, expect: str | None, window_s: float | None = None) -> None:
        from botocore.exceptions import ClientError

        def delete():
            try:
                cond = {"IfMatch": expect} if self.conditional and expect else {}
                self.client.delete_object(Bucket=self.bucket, Key=self.key, **cond)
            except ClientError as e:
                code = e.response.get("Error", {}).get("Code")
                if code in ("PreconditionFailed", "NoSuchKey", "404"):
                    return   # taken over meanwhile, or already gone: not ours to delete
                if code in ("NotImplemented", "InvalidArgument", "InvalidRequest"):
                    self.client.delete_object(Bucket=self.bucket, Key=self.key)
                    return
                raise
        self._call("releasing the lease", delete, window_s)


def _backend(uri: str):

    fs, path = resolve(uri)
    if uri.startswith("s3://"):
        bucket, _, prefix = path.partition("/")
        return _S3Backend(uri, bucket, posixpath.join(prefix, LEASE_FILE) if prefix else LEASE_FILE)
    return _LocalBackend(path)


# -- the lease -------------------------------------------------------------------------------------------
class OutputLease:
    """``with OutputLease(uri, job):`` holds the output's writer lease for the block (see the module
    docstring); raises ``OutputLeased`` on entry when another live driver holds it."""

    def __init__(self, uri: str, job: str, ttl_s: float | None = None):
        self.uri, self.job = uri.rstrip("/"), job
        self.ttl = ttl_s or env.lease_ttl_s()
        self.backend = _backend(self.uri)
        self.owner = uuid.uuid4().hex[:16]
        self.started = time.time()
        self.etag: str | None = None
        self.lost: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _record(self, now: float) -> LeaseRecord:
        return LeaseRecord(owner=self.owner, job=self.job, host=socket.gethostname(), pid=os.getpid(),
                           pid_namespace=_pid_namespace(), started_at=_iso(self.started), heartbeat_at=_iso(now),
                           expires_at=_iso(now + self.ttl), expires_unix=now + self.ttl, ttl_s=self.ttl,
                           pid_start=_start_mark(os.getpid()))

    def acquire(self) -> "OutputLease":
        with _held_lock:
            mine = _held.get(self.uri)
        if mine is not None and not mine.lost:
            raise OutputLeased(f"{self.uri} is already being written by this process ({mine.job}, owner "
                               f"{mine.owner}): one writer per output")
        for _ in range(5):   # a lost conditional write means another driver moved first: look again
            with self.backend.locked():
                now = time.time()
                cur, etag = self.backend.read()
                if cur is not None and cur.owner != self.owner:
                    stale = "released by this process" if cur.owner in _released else cur.stale_reason(now)
                    if stale is None:
                        raise OutputLeased(
                            f"{self.uri} is being written by another driver: {cur.describe(now)}. Wait for it to "
                            "finish (a re-run then resumes or finds nothing to do); if that driver is gone, its "
                            f"lease goes stale at {cur.expires_at} and the next run takes over.")
                    log.warning("lease: taking over %s from %s (%s)", self.uri, cur.describe(now), stale)
                new_etag = self.backend.write(self._record(now), expect=etag, create=etag is None)
            if new_etag is None:
                continue
            back, back_etag = self.backend.read()   # write-then-read-back: is the owner id ours?
            if back is not None and back.owner == self.owner:
                self.etag = back_etag
                break
        else:
            cur, _ = self.backend.read()
            raise OutputLeased(f"{self.uri}: another driver took the lease first"
                               + (f" ({cur.describe(time.time())})" if cur else ""))
        with _held_lock:
            _held[self.uri] = self
        self._thread = threading.Thread(target=self._heartbeat, name=f"lease-{self.owner}", daemon=True)
        self._thread.start()
        return self

    def renew(self) -> None:
        with self.backend.locked():
            cur, etag = self.backend.read()
            if cur is None or cur.owner != self.owner:
                self.lost = "taken over by " + (cur.describe(time.time()) if cur else "nobody (lease deleted)")
                return
            new = self.backend.write(self._record(time.time()), expect=etag, create=False)
        if new is None:
            self.lost = "a conditional renewal failed: another driver wrote the lease"
        else:
            self.etag = new

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.ttl / 4):
            try:
                self.renew()
            except Exception as e:  # noqa: BLE001 - one failed renewal is not fatal; the expiry is ttl away
                log.warning("lease: renewing %s failed: %s", self.uri, e)
            if self.lost:
                log.error("lease: %s lost (%s); this run stops writing", self.uri, self.lost)
                return

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with _held_lock:
            if _held.get(self.uri) is self:
                del _held[self.uri]
        if self.lost:
            return
        _released.add(self.owner)
        try:
            with self.backend.locked():
                cur, etag = self.backend.read(window_s=_RELEASE_RETRY_S)
                if cur is not None and cur.owner == self.owner:
                    self.backend.delete(etag, window_s=_RELEASE_RETRY_S)
        except retries.StorageUnavailable as e:
            log.warning("lease: could not release %s (%s); it goes stale once this process ends or at %s",
                        self.uri, e, _iso(time.time() + self.ttl))

    def __enter__(self) -> "OutputLease":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def check_held(uri: str) -> None:
    """Raise ``LeaseLost`` when this process held the lease of ``uri`` and another driver took it over."""
    lease = _held.get(uri.rstrip("/"))
    if lease is not None and lease.lost:
        raise LeaseLost(f"{uri}: this run's writer lease was lost ({lease.lost}); stopped before writing more")


def holding_output_lease(store_arg: str = "output_store"):
    """Decorator for a function with a keyword argument ``store_arg`` (a ``ShardStore``) and ``job``: the
    body runs holding that output's lease."""
    def wrap(fn):
        @functools.wraps(fn)
        def run(*args, **kwargs):
            with OutputLease(kwargs[store_arg].uri, kwargs.get("job", fn.__name__)):
                return fn(*args, **kwargs)
        return run
    return wrap
