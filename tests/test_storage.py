import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from mathray.runtime.storage import ShardStore, read_bytes, resolve, shard_name

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
    with pytest.raises(ValueError, match="has a query string|no '..' segment and no user info"):
        resolve(uri)


def _three_shards(store: ShardStore) -> None:
    for i in range(3):
        store.commit_shard(shard_name(i), pa.table({"id": [i * 10, i * 10 + 1]}))
    store.write_manifest()


@pytest.mark.faults
def test_corrupt_and_foreign_markers_are_named_and_the_rest_stays_readable(storage_root):
    from mathray.runtime.lineage import shard_set_fingerprint
    from mathray.runtime.storage import CorruptShard

    store = ShardStore(storage_root)
    _three_shards(store)
    store._put(store._commit_path("part-00001"), b'{"name": "part-00001", "rows": 2, "sha')   # cut short
    foreign = json.loads(read_bytes(f"{storage_root}/_commits/part-00000.json"))
    store._put(store._commit_path("part-00002"), json.dumps(foreign).encode())                # names part-00000
    assert list(store.committed()) == ["part-00000"]
    problems = store.marker_problems
    assert set(problems) == {store.where(store._commit_path(n)) for n in ("part-00001", "part-00002")}
    assert "not valid JSON" in problems[store.where(store._commit_path("part-00001"))]
    assert "foreign marker" in problems[store.where(store._commit_path("part-00002"))]
    assert store.read_all().column("id").to_pylist() == [0, 1]          # the rest stays readable
    with pytest.raises(CorruptShard, match=r"part-00001.json is unusable \(not valid JSON"):
        shard_set_fingerprint(store)                                    # a stage reading it refuses, naming it
    store.clear_uncommitted()                                           # the writer's re-run: recomputed
    assert list(store.committed()) == ["part-00000"] and not store.marker_problems
    assert sorted(i.path.rsplit("/", 1)[-1] for i in store._list("shards")) == ["part-00000.parquet"]


@pytest.mark.faults
def test_corrupt_shard_bytes_are_detected_and_named(storage_root):
    from mathray.runtime.storage import CorruptShard, table_to_parquet_bytes

    store = ShardStore(storage_root)
    _three_shards(store)
    # valid parquet, other rows: only the checksum can tell
    store._put(store.shard_path("part-00001"), table_to_parquet_bytes(pa.table({"id": [99, 98]})))
    with pytest.raises(CorruptShard) as err:
        store.read_all()
    assert store.where(store.shard_path("part-00001")) in str(err.value) and "sha256" in str(err.value)
    unchecked = ShardStore(storage_root, verify=False)                   # the one flag that turns it off
    assert unchecked.read_all().column("id").to_pylist() == [0, 1, 99, 98, 20, 21]


def test_temporary_files_of_a_live_writer_survive_another_writers_cleanup(tmp_path):
    """Temporary files are per attempt: cleanup removes a dead writer's, never a live one's."""
    from mathray.runtime.lease import attempt_id

    uri = str(tmp_path / "out")
    live = Path(uri, "_tmp", attempt_id(), "x.part")             # this process: alive
    dead = Path(uri, "_tmp", f"{socket.gethostname()}-999999999-1-abcdef", "y.part")
    for f in (live, dead):
        f.parent.mkdir(parents=True)
        f.write_bytes(b"partial")
    host, pid, mark, _ = live.parent.name.rsplit("-", 3)
    recycled = Path(uri, "_tmp", f"{host}-{pid}-{int(mark) + 1}-abcdef", "z.part")   # this pid, another start
    recycled.parent.mkdir(parents=True)
    recycled.write_bytes(b"partial")
    ShardStore(uri).clear_uncommitted()
    assert live.exists() and not dead.parent.exists() and not recycled.parent.exists()


def test_transient_failures_are_retried_then_give_up_naming_the_endpoint(monkeypatch):
    from mathray.runtime import retries

    outage = OSError("AWS Error NETWORK_CONNECTION during PutObject operation: curlCode: 7, Could not connect")
    calls = []

    def flaky():
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise outage
        return "ok"

    assert retries.call(flaky, what="writing x", where="http://127.0.0.1:1 (bucket b)", window_s=10) == "ok"
    assert len(calls) == 3 and calls[2] - calls[0] >= 0.8           # backed off: 0.5 s, then 1 s (+-20%)
    monkeypatch.setenv("MATHRAY_STORAGE_RETRY_S", "1")
    with pytest.raises(retries.StorageUnavailable, match=r"http://127.0.0.1:1 \(bucket b\).*writing x"):
        retries.call(lambda: (_ for _ in ()).throw(outage), what="writing x", where="http://127.0.0.1:1 (bucket b)")
    with pytest.raises(FileNotFoundError):                           # not transient: raised at once
        retries.call(lambda: (_ for _ in ()).throw(FileNotFoundError("k")), what="w", where="e", window_s=10)
    assert not retries.is_transient(OSError("AWS Error ACCESS_DENIED during GetObject operation"))


def test_uris_with_credentials_are_refused():
    with pytest.raises(ValueError, match="user info"):
        resolve("s3://AKIAFAKE:secret@bucket/key")
