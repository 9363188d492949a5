import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from mathray.runtime.storage import ShardStore, resolve, shard_name

REPO = Path(__file__).resolve().parents[1]


def test_commit_read_and_manifest(storage_root):
    store = ShardStore(storage_root)
    t0 = pa.table({"id": [1, 2], "x": ["a", "b"]})
    q = pa.table({"source": ["f"], "row_index": [3], "reason": ["bad"], "raw": ["{}"]})
    rec = store.commit_shard("part-00000", t0, q, config_hash="h", code_version="v")
    assert rec.rows == 2 and rec.quarantined_rows == 1 and len(rec.sha256) == 64
    assert store.is_committed("part-00000") and not store.is_committed("part-00001")
    assert store.read_all().to_pylist() == t0.to_pylist()
    assert store.read_quarantine("part-00000").column("reason").to_pylist() == ["bad"]
    m = store.write_manifest({"job": "t"})
    assert m["rows"] == 2 and m["shards"][0]["name"] == "part-00000"
    assert store.read_manifest()["job"] == "t"


def test_uncommitted_data_is_invisible_and_cleared(storage_root):
    store = ShardStore(storage_root)
    store.commit_shard("part-00000", pa.table({"id": [1]}))
    # a crash after the data file landed but before its marker: readers must not see it
    store._put(store.shard_path("part-00001"), b"not even parquet")
    assert list(store.committed()) == ["part-00000"]
    assert store.read_all().num_rows == 1
    store.clear_uncommitted()
    fs, _ = resolve(storage_root)
    assert fs.get_file_info(store.shard_path("part-00001")).type.name == "NotFound"


def test_local_shards_readable_by_pandas_and_datasets(tmp_path):
    store = ShardStore(str(tmp_path / "s"))
    for i in range(2):
        store.commit_shard(shard_name(i), pa.table({"id": [i * 10, i * 10 + 1]}))
    assert sorted(pd.read_parquet(tmp_path / "s" / "shards")["id"]) == [0, 1, 10, 11]
    import datasets

    ds = datasets.load_dataset("parquet", data_files=str(tmp_path / "s" / "shards" / "*.parquet"),
                               split="train")
    assert sorted(ds["id"]) == [0, 1, 10, 11]


def _run_writer(uri, log, n_shards=12, rows=300):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen([sys.executable, str(REPO / "tests" / "helpers" / "slow_writer.py"), uri,
                             str(n_shards), str(rows), str(log)], env=env)


def test_kill_mid_stage_then_resume_exact(storage_root, tmp_path):
    """SIGKILL the writer mid-stage: no partial shard is ever listed; the re-run computes only the
    missing shards; the final rows are exactly 0..N-1 (no loss, no duplicates)."""
    store = ShardStore(storage_root)
    log1, log2 = tmp_path / "run1.log", tmp_path / "run2.log"
    proc = _run_writer(storage_root, log1)
    deadline = time.time() + 60
    seen_partial = False
    while time.time() < deadline and len(store.committed()) < 4:
        for name, rec in store.committed().items():  # every listed shard is complete and readable
            t = store.read_shard(name)
            seen_partial |= t.num_rows != rec.rows
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first = store.committed()
    assert 4 <= len(first) < 12 and not seen_partial
    for name, rec in first.items():
        assert store.read_shard(name).num_rows == rec.rows == 300
    proc = _run_writer(storage_root, log2)
    assert proc.wait(timeout=120) == 0
    recomputed = log2.read_text().split()
    assert set(recomputed) == {shard_name(i) for i in range(12)} - set(first)
    assert all(store.committed()[n].sha256 == rec.sha256 for n, rec in first.items())  # untouched
    ids = store.read_all(["id"]).column("id").to_pylist()
    assert sorted(ids) == list(range(12 * 300)) and len(ids) == len(set(ids))
    assert json.loads(json.dumps(store.read_manifest()))["rows"] == 12 * 300


@pytest.mark.parametrize("uri", ["s3://bucket/x?endpoint_override=evil:9000", "s3://bucket/a/../b", "s3:///nobucket"])
def test_unsafe_s3_uris_are_refused(uri):
    with pytest.raises(ValueError):
        resolve(uri)
