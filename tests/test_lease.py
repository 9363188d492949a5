"""One writer per output (``runtime.lease``) on local disk and on the S3 server: a live lease held by another
process refuses with its host and pid, a dead holder's lease is taken over at once, an expired one after its
expiry, conditional writes decide a race, and a lease taken over from under a run stops its commits."""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict

import pyarrow as pa
import pytest

from mathray.runtime import lease as lease_mod
from mathray.runtime.lease import LeaseLost, LeaseRecord, OutputLease, OutputLeased, check_held
from mathray.runtime.storage import ShardStore, exists, join, read_bytes, write_bytes_atomic

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOLDER = """
import sys, time
from mathray.runtime.lease import OutputLease
with OutputLease(sys.argv[1], "holder"):
    print("held", flush=True)
    time.sleep(600)
"""


def _holder(uri: str) -> subprocess.Popen:
    """Another process holding ``uri``'s lease until killed; returns once it holds it."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, uri], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": REPO})
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_live_lease_refuses_with_owner_then_dead_holder_is_taken_over(storage_root):
    holder = _holder(storage_root)
    try:
        with pytest.raises(OutputLeased) as err:
            OutputLease(storage_root, "second").acquire()
        msg = str(err.value)
        assert f"pid {holder.pid} on host {socket.gethostname()}" in msg and "'holder'" in msg
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # the holder is gone (SIGKILL: no release): its lease is stale at once on this host, not after the expiry
    with OutputLease(storage_root, "third") as lease:
        rec = LeaseRecord.parse(read_bytes(join(storage_root, "_lease.json")))
        assert rec.owner == lease.owner and rec.pid == os.getpid() and rec.job == "third"
    assert not exists(join(storage_root, "_lease.json"))      # released


def _foreign(uri: str, expires_in: float) -> None:
    """A lease written by a driver on another machine (pure data: its process cannot be checked from here)."""
    now = time.time()
    rec = LeaseRecord(owner="elsewhere", job="sample", host="other-host", pid=1, pid_namespace="",
                      started_at=lease_mod._iso(now - 100), heartbeat_at=lease_mod._iso(now),
                      expires_at=lease_mod._iso(now + expires_in), expires_unix=now + expires_in, ttl_s=60)
    write_bytes_atomic(join(uri, "_lease.json"), json.dumps(asdict(rec)).encode())


def test_other_hosts_lease_holds_until_it_expires(storage_root):
    _foreign(storage_root, expires_in=30)
    with pytest.raises(OutputLeased, match="pid 1 on host other-host"):
        OutputLease(storage_root, "mine").acquire()
    _foreign(storage_root, expires_in=-1)
    with OutputLease(storage_root, "mine") as lease:
        assert LeaseRecord.parse(read_bytes(join(storage_root, "_lease.json"))).owner == lease.owner


def test_a_live_writer_stays_live_when_the_clock_is_stepped(storage_root):
    """A writer is told from a recycled pid by its start in ticks since boot, which a clock step (NTP, a VM
    resumed) does not move: this process's lease, written as if the wall clock had moved a day, still holds."""
    now = time.time()
    rec = LeaseRecord(owner="me", job="sample", host=socket.gethostname(), pid=os.getpid(),
                      pid_namespace=lease_mod._pid_namespace(), started_at=lease_mod._iso(now - 86400),
                      heartbeat_at=lease_mod._iso(now), expires_at=lease_mod._iso(now + 60), expires_unix=now + 60,
                      ttl_s=60, pid_start=lease_mod._start_mark(os.getpid()))
    assert rec.stale_reason(now) is None
    recycled = dataclasses.replace(rec, pid_start=rec.pid_start - 1)     # same pid, another process
    assert "no longer runs" in recycled.stale_reason(now)
    older = dataclasses.replace(rec, pid_start=None, started_at=lease_mod._iso(now + 60))   # no mark recorded
    assert older.stale_reason(now) is None


def test_s3_conditional_writes_decide_a_race(s3_bucket):
    """Both drivers read "no lease"; the store lets only the first create it (If-None-Match), and a renewal
    against a lease that changed since it was read fails (If-Match)."""
    backend = lease_mod._backend(f"{s3_bucket}/out")
    a, b = OutputLease(f"{s3_bucket}/out", "a"), OutputLease(f"{s3_bucket}/out", "b")
    now = time.time()
    etag = backend.write(a._record(now), expect=None, create=True)
    assert etag and backend.write(b._record(now), expect=None, create=True) is None
    assert backend.read()[0].owner == a.owner
    assert backend.write(b._record(now), expect='"not-the-etag"', create=False) is None
    assert backend.write(a._record(now), expect=etag, create=False) is not None


def test_lost_lease_stops_commits(tmp_path):
    store = ShardStore(str(tmp_path / "out"))
    lease = OutputLease(store.uri, "mine", ttl_s=3600).acquire()
    try:
        store.commit_shard("part-00000", pa.table({"x": [1]}))
        _foreign(store.uri, expires_in=3600)                  # another driver took over (our heartbeat stalled)
        lease.renew()
        assert lease.lost and "other-host" in lease.lost
        with pytest.raises(LeaseLost):
            check_held(store.uri)
        with pytest.raises(LeaseLost):
            store.commit_shard("part-00001", pa.table({"x": [2]}))
        assert list(store.committed()) == ["part-00000"]
    finally:
        lease.release()
    assert LeaseRecord.parse(read_bytes(join(store.uri, "_lease.json"))).owner == "elsewhere"   # not ours


def test_one_process_cannot_hold_one_output_twice(tmp_path):
    with OutputLease(str(tmp_path), "a"):
        with pytest.raises(OutputLeased, match="already being written by this process"):
            OutputLease(str(tmp_path), "b").acquire()
