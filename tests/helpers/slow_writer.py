"""Test helper: commit N shards of a deterministic table, slowly, skipping committed ones; logs each shard
it computes to LOG. Killed mid-run by tests to check the commit protocol."""
import sys
import time

import pyarrow as pa

from mathray.runtime.storage import ShardStore, shard_name

uri, n_shards, rows, log = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
store = ShardStore(uri)
store.clear_uncommitted()
for i in range(n_shards):
    name = shard_name(i)
    if store.is_committed(name):
        continue
    with open(log, "a") as f:
        f.write(name + "\n")
    table = pa.table({"id": list(range(i * rows, (i + 1) * rows)), "payload": ["x" * 2000] * rows})
    store.commit_shard(name, table)
    time.sleep(0.15)
store.write_manifest()
