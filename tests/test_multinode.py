"""A multi-node Ray cluster on one machine (``ray.cluster_utils.Cluster``): a sampling stage's engine pool grows
onto nodes added mid-stage and survives a node removed mid-stage, ending with exactly an uninterrupted run's rows
(the run itself: ``tests/helpers/multinode_sampling.py``)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import pytest

from conftest import REPO

pytestmark = [pytest.mark.cluster, pytest.mark.slow]
SHARDS = 10   # of 2 problems, 2 samples each: shards left when the node goes (the replicas pause after each one)


def test_sampling_pool_grows_onto_added_nodes_and_survives_node_loss(tmp_path):
    from mathray.core import schemas
    from mathray.core.toy import ToyTaskConfig, generate_problems
    from mathray.jobs.tiny_model import build_tiny_model
    from mathray.runtime.storage import ShardStore, shard_name

    model = str(build_tiny_model(tmp_path / "model"))
    rows = generate_problems(ToyTaskConfig(num_test=SHARDS * 2, min_ops=1, max_ops=2, max_operand=9, max_result=99),
                             "test")
    store = ShardStore(str(tmp_path / "problems"))
    for s in range(SHARDS):
        store.commit_shard(shard_name(s), schemas.to_table(rows[2 * s:2 * s + 2], schemas.PROBLEMS))
    store.write_manifest()
    env = {**os.environ, "RAY_ADDRESS": "", "MATHRAY_CACHE_DIR": str(tmp_path / "cache"),
           "RAY_TMPDIR": tempfile.mkdtemp(prefix="mrn", dir="/tmp")}
    proc = subprocess.run([sys.executable, str(REPO / "tests" / "helpers" / "multinode_sampling.py"), model,
                           store.uri, str(tmp_path / "out")], env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert len(result["events"]) == 2, result["events"]           # a node added, then one removed ...
    assert result["removed_at"][0] < result["shards"], result["events"]   # ... mid-stage
    assert len(result["workers"]) >= 2, result                     # more than one replica committed work
    assert len(result["disrupted"]) == SHARDS * 2 * 2 == len({tuple(r[:2]) for r in result["disrupted"]})
    assert result["disrupted"] == result["reference"]              # exactly an uninterrupted run's rows
