"""mathray as a cluster user runs it: a real ``ray start --head`` with its job server and a moto S3 server on
127.0.0.1, the (reduced) demo pipeline sent with ``ray job submit --working-dir`` under an ``s3://`` run root
(no shared disk: every model goes through storage and the node-local cache), every stage run and the report's
structure checked (never its numbers: models trained for a few steps show nothing); and a multi-node cluster
whose sampling pool grows onto added nodes and survives a node removed mid-stage."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import REPO
from helpers.moto_s3 import free_port

pytestmark = [pytest.mark.cluster, pytest.mark.slow]
VENV_BIN = Path(sys.executable).parent

# The demo pipeline reduced to seconds per stage, every stage included (SSFT, sampling, Math-Shepherd labels,
# verifier, PRM, ORM, sequential + control, test sampling of every generator, scoring, evaluation). One
# operation of + - * per problem with results up to 99 (enough distinct expressions for the label and test
# problems) and 150 SSFT steps at batch 32, so that the training samples hold problems with both a right and a
# wrong solution (cls-margin and L_seq need such pairs).
EASY = [f"data.{s}.toy.{k}={v}" for s in ("train", "test", "label")
        for k, v in (("min_ops", 1), ("max_ops", 1), ("operators", "+-*"), ("max_result", 99))]
REDUCED = [*EASY, "sequential.enabled=true", "ssft.optim.batch_size=32",
           "data.train.toy.num_train=300", "data.test.toy.num_test=8", "data.label.toy.num_train=12",
           "data.label.toy.first_index=300",
           "ssft.optim.steps=150", "ssft.checkpoint_every=150", "sample_train.sampling.n=4",
           "sample_train.sampling.max_tokens=32", "shepherd.labeling.k=2", "shepherd.labeling.max_tokens=32",
           "verifier.train.optim.steps=4", "prm.optim.steps=4", "orm.optim.steps=4",
           "sequential.train.sequential.stage_steps=[0,2,2]", "sample_test.sampling.n=4",
           "sample_test.sampling.max_tokens=32", "evaluate.trials=2", "evaluate.bootstrap_resamples=20",
           "progress_every_s=120"]


def _kill_processes_under(path: str) -> None:
    """Stop the Ray processes of one cluster (by its temp dir); ``ray stop`` would stop every cluster on
    the machine, the test session's own included."""
    import psutil

    doomed = {}
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if proc.pid != os.getpid() and any(path in part for part in proc.info["cmdline"] or []):
                # with their children: the raylet's dashboard and runtime-env agents rename their process
                # ("ray::DashboardAgent") and no longer show the path; a surviving agent keeps its port
                for p in [proc, *proc.children(recursive=True)]:
                    doomed[p.pid] = p
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    for proc in doomed.values():
        try:
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
    dash = free_port()
    subprocess.run([str(VENV_BIN / "ray"), "start", "--head", f"--port={free_port()}",
                    "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}", f"--temp-dir={tmp}/ray",
                    f"--dashboard-agent-listen-port={free_port()}",
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
             "--", "python", "-m", "rayjobs.pipeline", "--config", "rayjobs/configs/demo.yaml",
             *[a for kv in REDUCED for a in ("--set", kv)], *args],
            env=head["env"], capture_output=True, text=True, timeout=timeout)
        out = proc.stdout + proc.stderr
        if "No available agent to submit job" not in out:   # the head's job agent is still starting
            break
        time.sleep(5)
    if proc.returncode != 0 or "succeeded" not in out:   # the pipeline's own lines first: vLLM's shutdown noise
        summary = [ln for ln in out.splitlines() if "[pipeline]" in ln or "Error" in ln or "error:" in ln]
        pytest.fail("\n".join(summary[-80:]) + "\n---\n" + out[-3000:])
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
    from helpers.report_checks import assert_report_structure

    from mathray.config import load_config
    from mathray.pipeline import PipelineConfig, build_graph, node_lineage, output_lineage

    root = f"{s3_bucket}/run1"
    bucket = s3_bucket.removeprefix("s3://")
    cfg = load_config(PipelineConfig, REPO / "rayjobs/configs/demo.yaml", [*REDUCED, f"root={root}"])
    first = _submit(ray_head, "--set", f"root={root}")
    verbs = _stage_verbs(first)
    assert verbs and set(verbs.values()) == {"running"}, verbs

    assert {"ssft", "sample_train", "shepherd", "verifier_xent", "prm", "orm", "sequential", "control",
            "sample_test", "greedy_test", "sample_test_sequential", "sample_test_control", "score_xent",
            "evaluate"} <= set(verbs), verbs

    # the report is in S3 with every selector row, the evaluator table and every finding with its verdict
    s3 = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    report = json.loads(s3.get_object(Bucket=bucket, Key="run1/report/report.json")["Body"].read())
    md = s3.get_object(Bucket=bucket, Key="run1/report/report.md")["Body"].read().decode()
    assert_report_structure(report, md, cfg.evaluate.k, cfg.evaluate.top_n)

    # nothing was written on the node's disk outside the node-local cache: no run directory in the job's
    # working directory, and the models came through the cache
    working_dirs = list(Path(ray_head["tmp"], "ray").glob("session_*/runtime_resources/working_dir_files/*"))
    assert working_dirs and not [w for w in working_dirs if (w / "runs").exists()]
    assert list(Path(ray_head["tmp"], "cache", "models").iterdir())

    # every stage's output is complete with its lineage: the same command again would recompute nothing (the
    # check the pipeline makes before each stage, here in this process)
    nodes = build_graph(cfg)
    stale = [n.name for n in nodes if output_lineage(n) != node_lineage(n).hash]
    assert not stale, stale

    # a changed verifier config re-runs the verifier and what depends on it; every other stage is skipped and
    # its committed shards and marks are left as they were
    markers = _commit_markers(s3_server, bucket)
    changed = _submit(ray_head, "--set", f"root={root}", "--set", "verifier.train.optim.lr=0.002")
    verbs = _stage_verbs(changed)
    rerun = {s for s, v in verbs.items() if v == "running"}
    assert rerun == {"verifier_xent", "score_xent", "evaluate"}, verbs
    assert set(verbs.values()) == {"running", "skipped"} and len(verbs) == len(_stage_verbs(first)), verbs
    rerun_prefixes = tuple(n.output.removeprefix(f"{s3_bucket}/").rstrip("/") + "/" for n in nodes if n.name in rerun)
    kept = {k: v for k, v in markers.items() if not k.startswith(rerun_prefixes)}
    assert kept and kept == {k: v for k, v in _commit_markers(s3_server, bucket).items()
                             if not k.startswith(rerun_prefixes)}


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
