"""A sampling stage on a multi-node Ray cluster on one machine (``ray.cluster_utils.Cluster``): the engine pool
(1..3 replicas, each asking for the custom resource ``sampler``) starts on one node and grows onto a node
added during the run; once a replica there has committed work, that node is removed mid-stage and another
added. Replicas wait until a second one has started (``GatedEngine``), so the pool has grown before the
stage can end however slow the machine is, then pause after each batch so the run lasts. Then an uninterrupted
run of the same config on a fresh output, for comparison. Writes OUT_DIR/result.json: rows of both runs and the
replicas that committed.

    python tests/helpers/multinode_sampling.py MODEL_DIR PROBLEMS_URI OUT_DIR
"""
import json
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "tests")]


def main(model: str, problems: str, out_dir: str) -> None:
    import ray
    from ray.cluster_utils import Cluster

    from helpers.sampling_engines import GATE, GatedEngine, ReplicaGate
    from mathray.jobs.sampling import SampleJobConfig, run_sampling
    from mathray.runtime.storage import ShardStore

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2})
    first = cluster.add_node(num_cpus=1, resources={"sampler": 1})
    ray.init(address=cluster.address, runtime_env={"env_vars": {"PYTHONPATH": f"{REPO}:{REPO / 'tests'}",
                                                                 "MATHRAY_TEST_PAUSE_S": "1"}})
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    head = ray.get_runtime_context().get_node_id()   # the gate lives on the head: it survives node removal
    gate = ReplicaGate.options(name=GATE, scheduling_strategy=NodeAffinitySchedulingStrategy(head, soft=False)
                               ).remote(min_replicas=2)
    cluster.wait_for_nodes()

    def cfg(output: str) -> SampleJobConfig:
        return SampleJobConfig.model_validate({
            "input": problems, "output": output,
            "engine": {"model": model, "device": "cpu", "enforce_eager": True, "max_model_len": 512,
                       "kv_cache_memory_bytes": 64 * 2**20, "min_replicas": 1, "max_replicas": 3,
                       "batch_size": 2, "resources": {"sampler": 1}},
            "sampling": {"n": 2, "max_tokens": 48, "seed": 0}})

    disrupted = f"{out_dir}/disrupted"
    events: list[str] = []
    removed_at: list[int] = []   # commits when the node was removed (fewer than the shards: mid-stage)

    def committed_workers(store) -> set:
        return {w for c in store.committed().values() for w in c.stats.get("workers", [])}

    def _grow_then_shrink() -> None:
        store = ShardStore(disrupted)
        deadline = time.time() + 600
        while ray.get(gate.count.remote()) < 1 and time.time() < deadline:
            time.sleep(0.5)                    # the pool's first replica is up on the first node
        second = cluster.add_node(num_cpus=1, resources={"sampler": 1})
        events.append(f"added a node after {len(store.committed())} commits")
        while len(committed_workers(store)) < 2 and time.time() < deadline:
            time.sleep(0.2)                    # until the replica on the new node has committed work
        cluster.add_node(num_cpus=1, resources={"sampler": 1})
        removed_at.append(len(store.committed()))
        cluster.remove_node(second)            # a node lost mid-stage: its replica dies with it
        events.append(f"removed it after {removed_at[0]} commits by {len(committed_workers(store))} replicas")

    # the stage runs in a thread: Cluster.add_node/remove_node use signals, which only the main thread may
    errors: list[str] = []

    def sample() -> None:
        try:
            run_sampling(cfg(disrupted), engine_cls=GatedEngine)
        except Exception as e:  # noqa: BLE001 - reported in the result
            errors.append(f"{type(e).__name__}: {e}")

    stage = threading.Thread(target=sample, daemon=True)
    stage.start()
    _grow_then_shrink()
    stage.join(timeout=600)
    events += [f"stage error: {e}" for e in errors]
    reference = f"{out_dir}/reference"
    run_sampling(cfg(reference))

    def rows(uri):
        return sorted((r["problem_id"], r["sample_id"], r["text"])
                      for r in ShardStore(uri).read_all(["problem_id", "sample_id", "text"]).to_pylist())

    workers = sorted({w for c in ShardStore(disrupted).committed().values() for w in c.stats.get("workers", [])})
    Path(out_dir, "result.json").write_text(json.dumps({
        "disrupted": rows(disrupted), "reference": rows(reference), "workers": workers, "events": events,
        "removed_at": removed_at, "shards": len(ShardStore(problems).committed()),
        "first_node": first.node_id}))
    ray.shutdown()
    try:
        cluster.shutdown()
    except AttributeError:   # ray.cluster_utils trips over the node removed above; its processes are gone
        pass


if __name__ == "__main__":
    main(*sys.argv[1:4])
