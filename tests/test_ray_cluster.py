"""mathray as a cluster user runs it: a real ``ray start --head`` with its job server and a moto S3 server on
127.0.0.1, the pipeline sent with ``ray job submit --working-dir`` under an ``s3://`` run root (no shared
disk: every model goes through storage and the node-local cache); and a multi-node cluster whose sampling
pool grows onto added nodes and survives a node removed mid-stage."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import REPO

pytestmark = [pytest.mark.cluster, pytest.mark.slow]
VENV_BIN = Path(sys.executable).parent

# A reduced pipeline: few problems and steps, N=2, no sequential/control stage (the demo test covers those).
REDUCED = ["--set", "data.train.toy.num_train=300", "--set", "data.test.toy.num_test=8",
           "--set", "data.label.toy.num_train=12", "--set", "ssft.optim.steps=40",
           "--set", "ssft.checkpoint_every=20", "--set", "sample_train.sampling.n=4",
           "--set", "shepherd.labeling.k=2", "--set", "verifier.train.optim.steps=6",
           "--set", "prm.optim.steps=6", "--set", "orm.optim.steps=6", "--set", "sequential.enabled=false",
           "--set", "sample_test.sampling.n=2", "--set", "evaluate.trials=3",
           "--set", "evaluate.bootstrap_resamples=20", "--set", "progress_every_s=60"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _kill_processes_under(path: str) -> None:
    """Stop the Ray processes of one cluster (by its temp dir); ``ray stop`` would stop every cluster on
    the machine, the test session's own included."""
    import psutil

    for proc in psutil.process_iter(["cmdline"]):
        try:
            if proc.pid != os.getpid() and any(path in part for part in proc.info["cmdline"] or []):
                proc.kill()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass


@pytest.fixture(scope="module")
def ray_head(s3_server):
    """``ray start --head`` with the dashboard/job server on 127.0.0.1; the S3 endpoint, dummy credentials
    and the node-local cache dir come from the node's environment (as an instance profile would give)."""
    tmp = tempfile.mkdtemp(prefix="mrh", dir="/tmp")    # short: Ray's socket paths must fit 107 bytes
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "MATHRAY_CACHE_DIR": f"{tmp}/cache",
           "PATH": f"{VENV_BIN}:{os.environ['PATH']}", "RAY_ADDRESS": ""}
    dash = _free_port()
    subprocess.run([str(VENV_BIN / "ray"), "start", "--head", f"--port={_free_port()}",
                    "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}", f"--temp-dir={tmp}/ray",
                    "--num-cpus=4", "--include-dashboard=true", "--disable-usage-stats"],
                   env=env, check=True, capture_output=True, timeout=180)
    try:
        yield {"address": f"http://127.0.0.1:{dash}", "env": env, "tmp": tmp}
    finally:
        _kill_processes_under(tmp)
        shutil.rmtree(tmp, ignore_errors=True)


def _submit(head: dict, *args: str, timeout: int = 1200) -> str:
    for _ in range(30):
        proc = subprocess.run(
            [str(VENV_BIN / "ray"), "job", "submit", "--address", head["address"], "--working-dir", str(REPO),
             "--", "python", "-m", "rayjobs.pipeline", "--config", "rayjobs/configs/demo.yaml", *REDUCED, *args],
            env=head["env"], capture_output=True, text=True, timeout=timeout)
        out = proc.stdout + proc.stderr
        if "No available agent to submit job" not in out:   # the head's job agent is still starting
            break
        time.sleep(5)
    assert proc.returncode == 0 and "succeeded" in out, out[-6000:]
    return out


def _stage_verbs(log: str) -> dict[str, str]:
    """{stage: running|skipped} from the pipeline's "[pipeline] <stage>: <verb>" lines."""
    verbs = {}
    for line in log.splitlines():
        if line.startswith("[pipeline] ") and ": " in line:
            stage, _, rest = line[len("[pipeline] "):].partition(": ")
            if " " not in stage and rest.split(" ")[0] in ("running", "skipped"):
                verbs[stage] = rest.split(" ")[0]
    return verbs


def _commit_markers(s3_endpoint: str, bucket: str) -> dict[str, bytes]:
    import boto3

    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            if "/_commits/" in obj["Key"] or obj["Key"].endswith("_COMPLETE.json"):
                out[obj["Key"]] = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
    return out


def test_pipeline_by_ray_job_submit_on_s3(ray_head, s3_server, s3_bucket):
    import boto3

    from mathray.core import selectors

    root = f"{s3_bucket}/run1"
    bucket = s3_bucket.removeprefix("s3://")
    first = _submit(ray_head, "--set", f"root={root}")
    verbs = _stage_verbs(first)
    assert verbs and set(verbs.values()) == {"running"}, verbs

    # the report is in S3 with every selector row
    s3 = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    report = json.loads(s3.get_object(Bucket=bucket, Key="run1/report/report.json")["Body"].read())
    names = {r["selector"] for r in report["table"]}
    expected = {"Pass@1 (greedy)", *selectors.build_selectors(2, 4, "min", True, True, True)}
    assert expected <= names, expected - names

    # nothing was written on the node's disk outside the node-local cache: no run directory in the job's
    # working directory, and the models came through the cache
    working_dirs = list(Path(ray_head["tmp"], "ray").glob("session_*/runtime_resources/working_dir_files/*"))
    assert working_dirs and not [w for w in working_dirs if (w / "runs").exists()]
    assert list(Path(ray_head["tmp"], "cache", "models").iterdir())

    # the same command again recomputes nothing
    markers = _commit_markers(s3_server, bucket)
    again = _submit(ray_head, "--set", f"root={root}")
    verbs = _stage_verbs(again)
    assert set(verbs.values()) == {"skipped"} and len(verbs) == len(_stage_verbs(first)), verbs
    assert _commit_markers(s3_server, bucket) == markers

    # a changed verifier config re-runs the verifier and what depends on it, nothing else
    changed = _submit(ray_head, "--set", f"root={root}", "--set", "verifier.train.optim.lr=0.002")
    verbs = _stage_verbs(changed)
    rerun = {s for s, v in verbs.items() if v == "running"}
    assert rerun == {"verifier_xent", "score_xent", "evaluate"}, verbs


def test_sampling_pool_grows_onto_added_nodes_and_survives_node_loss(tmp_path):
    from mathray.core import schemas
    from mathray.core.toy import ToyTaskConfig, generate_problems
    from mathray.jobs.tiny_model import build_tiny_model
    from mathray.runtime.storage import ShardStore, shard_name

    model = str(build_tiny_model(tmp_path / "model"))
    rows = generate_problems(ToyTaskConfig(num_test=40, min_ops=1, max_ops=2, max_operand=9, max_result=99), "test")
    store = ShardStore(str(tmp_path / "problems"))
    for s in range(20):
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
    assert len(result["disrupted"]) == 80 == len({tuple(r[:2]) for r in result["disrupted"]})
    assert result["disrupted"] == result["reference"]              # exactly an uninterrupted run's rows
