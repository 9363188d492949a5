"""Shared pieces of the fault tests: drivers as subprocesses on the session's Ray cluster, killing them once
work is committed, and comparing a disrupted run's rows with an uninterrupted run's."""
from __future__ import annotations

import hashlib
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from mathray.runtime.storage import ShardStore

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


def driver_env(ray_cluster, **extra: str) -> dict:
    """The environment of a driver subprocess joining the session's cluster."""
    return {**os.environ, "RAY_ADDRESS": ray_cluster.get_runtime_context().gcs_address,
            "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", **extra}


def write_config(cfg, path: Path) -> Path:
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    return path


def start(args: list[str], env: dict) -> subprocess.Popen:
    """``python ARGS`` in the repository root, in its own session (killed as a group), output captured."""
    return subprocess.Popen([PYTHON, *args], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)


def kill_once_committed(proc: subprocess.Popen, store: ShardStore, total: int, timeout: float = 300) -> int:
    """SIGKILL the driver's process group as soon as one of ``total`` shards is committed; returns how many
    were committed when it died. Fails if the driver ended first or nothing was committed in time."""
    deadline = time.time() + timeout
    while not store.committed() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    if proc.poll() is not None:
        raise AssertionError(f"the driver ended before the kill (rc {proc.returncode}):\n"
                             f"{proc.communicate()[0][-3000:]}")
    if time.time() >= deadline:
        raise AssertionError("no shard committed within the timeout")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()
    return len(store.committed())


def finish(proc: subprocess.Popen, timeout: float = 600) -> str:
    out = proc.communicate(timeout=timeout)[0]
    assert proc.returncode == 0, out[-4000:]
    return out


def _canonical(value, float_digits: int | None, root: str | None = None):
    if isinstance(value, float) and float_digits is not None and math.isfinite(value):
        return round(value, float_digits)
    if isinstance(value, str) and root:
        return value.replace(root, "<root>")
    if isinstance(value, list):
        return [_canonical(v, float_digits, root) for v in value]
    return value


def row_digests(uri: str, key: tuple[str, ...], drop: tuple[str, ...] = (),
                float_digits: int | None = None, root: str | None = None) -> dict[tuple, str]:
    """{row key: sha256 of the row's content} over every committed row; fails on a duplicate key. ``drop``:
    columns that legitimately differ between runs (timings, batch ids); ``float_digits``: floats compared
    rounded (computations batched differently differ in the last bits); ``root``: a run root written as
    ``<root>`` in strings (a generator's checkpoint id names the run's model)."""
    out: dict[tuple, str] = {}
    for row in ShardStore(uri).read_all().to_pylist():
        k = tuple(row[c] for c in key)
        assert k not in out, f"duplicate row key {k} in {uri}"
        content = {c: _canonical(v, float_digits, root) for c, v in sorted(row.items()) if c not in drop}
        out[k] = hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()
    return out


def assert_same_rows(got: str, want: str, key: tuple[str, ...], **kw) -> None:
    """The rows at ``got`` are exactly those at ``want`` (an uninterrupted run): same sorted keys, no loss,
    no duplicates, the same content per key."""
    a, b = row_digests(got, key, **kw), row_digests(want, key, **kw)
    assert b, f"the reference {want} holds no rows: two empty outputs would compare equal"
    assert sorted(a) == sorted(b), (f"keys differ: {len(set(b) - set(a))} missing, "
                                    f"{len(set(a) - set(b))} extra")
    differing = [k for k in a if a[k] != b[k]]
    assert not differing, f"{len(differing)} rows differ in content, e.g. {differing[:3]}"
