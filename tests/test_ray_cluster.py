"""mathray as a cluster user runs it, and as a cluster fails: one pipeline run by ``ray job submit``, the same
command with a changed config, and the changed pipeline under chaos, compared with it.

The submitted run: a real ``ray start --head`` with its job server and a moto S3 server on 127.0.0.1, the
reduced demo pipeline sent with ``ray job submit --working-dir`` under an ``s3://`` run root (no shared disk:
every model goes through storage and the node-local cache), every stage run and the report's structure checked
(never its numbers: models trained for a few steps show nothing). Then the same command with the PRM's learning
rate changed and the sequential and control generators dropped: only the PRM and what depends on it run again.

The chaos run: that changed pipeline on the session's cluster under a seeded chaos schedule
(``helpers.chaos``): engine actors and a Ray Train worker SIGKILLed, the pipeline driver SIGKILLed and re-run,
the S3 server stopped within the retry window. It starts from the submitted run's base model, problems, SSFT,
SSFT's samples of the labelling problems and the verifier and ORM trained on them (copied to its root, complete
with their lineage), so the faults land in the stages left, one of each kind of engine (Math-Shepherd
labelling, test sampling, scoring) and the PRM's training; SSFT's own restore after a worker kill is
``tests/training/test_job.py``'s. It must end with exactly the outputs of the changed command's run, which is
the same pipeline uninterrupted: every stage's committed rows, the model exports' files and the report.

CI runs one fixed chaos seed; ``pytest --chaos-seeds N`` runs seeds 1..N instead."""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers.chaos import ChaosRun, StagePlan, commits, schedule
from helpers.faults import driver_env, start, write_config
from helpers.moto_s3 import free_port, new_bucket
from helpers.pipeline_outputs import pipeline_outputs, report_diff
from helpers.train_callbacks import pause_each_step

from conftest import REPO
from mathray.config import load_config
from mathray.pipeline import PipelineConfig, build_graph

pytestmark = [pytest.mark.cluster, pytest.mark.slow]
VENV_BIN = Path(sys.executable).parent
DEMO = REPO / "rayjobs/configs/demo.yaml"
CI_SEED = 0

# The demo pipeline reduced to seconds per stage, every stage included (SSFT, sampling, Math-Shepherd labels,
# verifier, PRM, ORM, sequential + control, test sampling of every generator, scoring, evaluation). One
# operation of + - * per problem with results up to 99 (enough distinct expressions for the label and test
# problems) and 150 SSFT steps at batch 32, so that the training samples hold problems with both a right and a
# wrong solution (cls-margin and L_seq need such pairs). Problems in shards of 2-3, so that every data stage
# commits 4 shards.
EASY = [f"data.{s}.toy.{k}={v}" for s in ("train", "test", "label")
        for k, v in (("min_ops", 1), ("max_ops", 1), ("operators", "+-*"), ("max_result", 99))]
REDUCED = [*EASY, "sequential.enabled=true", "ssft.optim.batch_size=32",
           "data.train.toy.num_train=300", "data.test.toy.num_test=8", "data.label.toy.num_train=12",
           "data.label.toy.first_index=300", "data.label.shard_rows=3", "data.test.shard_rows=2",
           "ssft.optim.steps=150", "ssft.checkpoint_every=150", "sample_train.sampling.n=4",
           "sample_train.sampling.max_tokens=32", "shepherd.labeling.k=2", "shepherd.labeling.max_tokens=32",
           "verifier.train.optim.steps=12", "prm.optim.steps=12", "orm.optim.steps=4",
           "sequential.train.sequential.stage_steps=[0,2,2]", "sample_test.sampling.n=4",
           "sample_test.sampling.max_tokens=32", "evaluate.trials=2", "evaluate.bootstrap_resamples=20",
           "progress_every_s=120"]
# The changed config the second submission sends, the chaos run's lineage: a PRM trained at another learning
# rate (its scores and the report depend on it) and no sequential and control generators (stages of kinds the
# chaos run has).
CHANGED = ["sequential.enabled=false", "prm.optim.lr=0.002"]
# The chaos run's knobs, outside the lineage: its engines called a row (the scorer four) at a time and its PRM
# checkpointed several times, so that faults land between commits and a killed training worker restores mid-run;
# three nodes at a time (paced stages mostly wait). The second submission runs with them too, so that it is the
# chaos pipeline uninterrupted: its scorer's batches, and so the last bits of its scores, are the chaos run's.
CHAOS_KNOBS = ["progress_every_s=600", "max_parallel=3", "prm.checkpoint_every=4", "prm.log_every=2",
               "sample_test.engine.batch_size=1", "score.scorer.rows_per_call=4"]
CHAOS = [*REDUCED, *CHANGED, *CHAOS_KNOBS]
# the nodes the chaos run starts with, copied from the submitted run; the training stage it runs, long enough
# for a fault between two checkpoints
SEEDED = ("base_model", "problems_train", "problems_test", "problems_label", "ssft", "sample_train",
          "verifier_xent", "orm")
FAULT_TRAINING = ("prm",)


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
    """{stage: running|skipped} from the pipeline's "[pipeline] <stage>: <verb>" lines (wherever they start: in a
    job's log, a line of the driver's can follow a worker's output that did not end its line)."""
    return {m[1]: m[2] for m in re.finditer(r"\[pipeline\] (\w+): (running|skipped)\b", log)}


def _bucket_name(uri: str) -> str:
    return uri.removeprefix("s3://").split("/")[0]


def _commit_markers(s3_endpoint: str, bucket: str) -> dict[str, bytes]:
    import boto3

    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            if "/_commits/" in obj["Key"] or obj["Key"].endswith("_COMPLETE.json"):
                out[obj["Key"]] = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
    return out


@pytest.fixture(scope="module")
def bucket(s3_server) -> str:
    return new_bucket(s3_server)


@dataclass
class SubmittedRun:
    """The reduced pipeline as ``ray job submit`` ran it, uninterrupted."""
    cfg: PipelineConfig
    log: str


@pytest.fixture(scope="module")
def submitted(ray_head, bucket) -> SubmittedRun:
    root = f"{bucket}/submitted"
    return SubmittedRun(load_config(PipelineConfig, DEMO, [*REDUCED, f"root={root}"]),
                        _submit(ray_head, "--set", f"root={root}"))


def test_pipeline_by_ray_job_submit_on_s3(ray_head, submitted):
    from helpers.report_checks import assert_report_structure

    from mathray.pipeline import node_lineage, output_lineage
    from mathray.runtime.storage import join, read_bytes

    cfg, root = submitted.cfg, submitted.cfg.root
    verbs = _stage_verbs(submitted.log)
    assert verbs and set(verbs.values()) == {"running"}, verbs
    nodes = build_graph(cfg)
    assert set(verbs) == {n.name for n in nodes}, verbs
    assert {"ssft", "sample_train", "shepherd", "verifier_xent", "prm", "orm", "sequential", "control",
            "sample_test", "sample_test_sequential", "sample_test_control", "score_xent",
            "evaluate"} <= set(verbs), verbs

    # the report is in S3 with every selector row, the evaluator table and every finding with its verdict
    report_dir = next(n.output for n in nodes if n.kind == "evaluate")
    assert report_dir.startswith(f"{root}/")
    report = json.loads(read_bytes(join(report_dir, "report.json")))
    md = read_bytes(join(report_dir, "report.md")).decode()
    assert_report_structure(report, md, cfg.evaluate.k, cfg.evaluate.top_n)

    # nothing was written on the node's disk outside the node-local cache: no run directory in the job's
    # working directory, and the models came through the cache
    working_dirs = list(Path(ray_head["tmp"], "ray").glob("session_*/runtime_resources/working_dir_files/*"))
    assert working_dirs and not [w for w in working_dirs if (w / "runs").exists()]
    assert list(Path(ray_head["tmp"], "cache", "models").iterdir())

    # every stage's output is complete with its lineage: the same command again would recompute nothing (the
    # check the pipeline makes before each stage, here in this process)
    stale = [n.name for n in nodes if output_lineage(n) != node_lineage(n).hash]
    assert not stale, stale


@dataclass
class ChangedRun:
    """The same command with ``CHANGED`` (and ``CHAOS_KNOBS``) at the submitted run's root: its config and log,
    and the commit markers of every stage before and after it."""
    cfg: PipelineConfig
    log: str
    before: dict[str, bytes]
    after: dict[str, bytes]


@pytest.fixture(scope="module")
def changed(ray_head, s3_server, submitted) -> ChangedRun:
    root = submitted.cfg.root
    before = _commit_markers(s3_server, _bucket_name(root))
    log = _submit(ray_head, *[a for kv in [*CHANGED, *CHAOS_KNOBS, f"root={root}"] for a in ("--set", kv)])
    return ChangedRun(load_config(PipelineConfig, DEMO, [*CHAOS, f"root={root}"]), log, before,
                      _commit_markers(s3_server, _bucket_name(root)))


def test_a_changed_config_reruns_what_depends_on_it_and_keeps_the_rest(changed):
    """The PRM runs again, and so do its scores (their own config is the same but for a knob outside the
    lineage: their input's lineage changed) and the report; every other stage is skipped, and every committed
    shard and mark outside the three outputs is left as it was, the dropped generators' included."""
    nodes = build_graph(changed.cfg)
    verbs = _stage_verbs(changed.log)
    rerun = {s for s, v in verbs.items() if v == "running"}
    assert rerun == {"prm", "score_xent", "evaluate"}, verbs
    missing = {n.name for n in nodes} - set(verbs)
    assert set(verbs.values()) == {"running", "skipped"} and not missing, \
        (verbs, [ln for ln in changed.log.splitlines() if any(name in ln for name in missing)])
    bucket = _bucket_name(changed.cfg.root)
    rerun_prefixes = tuple(n.output.removeprefix(f"s3://{bucket}/").rstrip("/") + "/" for n in nodes
                           if n.name in rerun)
    kept = {k: v for k, v in changed.before.items() if not k.startswith(rerun_prefixes)}
    assert any("/sequential/" in k for k in kept)
    assert kept and kept == {k: v for k, v in changed.after.items() if not k.startswith(rerun_prefixes)}


def test_the_rerun_prm_prints_each_trainer_log_once_and_its_progress(changed):
    """What a person watching the job sees of its one training run, the PRM: each Trainer log on one line, once
    (Ray Train's print patching would print each twice), and, in its output, the progress record of its last
    step."""
    from mathray.jobs.training.progress import read_progress

    prm = next(n for n in build_graph(changed.cfg) if n.name == "prm")
    steps, every = prm.cfg.optim.steps, prm.cfg.log_every
    lines = changed.log.splitlines()
    # the Trainer prints its logs with formatted (quoted) values; Ray Train's own report lines hold raw floats
    step_logs = [line for line in lines if "{'loss': '" in line]
    assert len(step_logs) == len(set(step_logs)) == steps // every == 6, step_logs
    assert sum("{'train_runtime': '" in line for line in lines) == 1
    assert "Disassembly of" not in changed.log
    record = read_progress(prm.output)
    assert {k: record[k] for k in ("step", "total", "phase")} == {"step": steps, "total": steps,
                                                                  "phase": f"prm_{prm.cfg.prm.targets}"}
    assert record["host"] == socket.gethostname() and isinstance(record["pid"], int)


# -- the same pipeline under chaos ---------------------------------------------------------------------------

def pytest_generate_tests(metafunc):
    if "chaos_seed" in metafunc.fixturenames:
        n = metafunc.config.getoption("--chaos-seeds")
        metafunc.parametrize("chaos_seed", list(range(1, n + 1)) if n else [CI_SEED])


def _chaos_config(root: str, tmp_path, paced: set[str] = frozenset()) -> tuple[PipelineConfig, list[str]]:
    """The chaos pipeline at ``root`` and its driver command (pausing engine actors:
    ``tests/helpers/chaos_pipeline.py``); when the PRM is ``paced``, each of its training steps sleeps (a
    callback, outside the lineage), so that it lasts long enough for its faults to land."""
    cfg = load_config(PipelineConfig, DEMO, [*CHAOS, f"root={root}"])
    if "prm" in paced:
        cfg.prm.callbacks = [pause_each_step(1.0)]
    cfg_file = write_config(cfg, tmp_path / "pipeline.yaml")
    return cfg, ["tests/helpers/chaos_pipeline.py", "--only", "evaluate", "--config", str(cfg_file)]


def _chaos_env(ray_cluster, tmp_path, pauses: str, **extra: str) -> dict:
    return driver_env(ray_cluster, MATHRAY_TEST_PAUSE_S=pauses, MATHRAY_STORAGE_RETRY_S="120",
                      MATHRAY_CACHE_DIR=str(tmp_path / "cache"), **extra)


@pytest.fixture(scope="module")
def chaos_reference(changed) -> tuple[dict, StagePlan]:
    """The chaos pipeline run uninterrupted (the changed command's run): its outputs, and what the schedule
    picks from."""
    return pipeline_outputs(changed.cfg), stage_plan(changed.cfg)


def _copy_outputs(src_root: str, dst_root: str, outputs: list[str]) -> None:
    """Copy ``outputs`` (URIs under ``dst_root``) from the run at ``src_root``, in the same bucket (server-side
    copies): complete with their lineage there, the pipeline skips their nodes."""
    import boto3

    bucket, _, dst_prefix = dst_root.removeprefix("s3://").rstrip("/").partition("/")
    src_prefix = src_root.removeprefix("s3://").rstrip("/").partition("/")[2]
    s3 = boto3.client("s3", region_name="us-east-1")
    for rel in (uri.removeprefix(dst_root).strip("/") for uri in outputs):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{src_prefix}/{rel}/"):
            for obj in page.get("Contents", []):
                key = f"{dst_prefix}/{obj['Key'].removeprefix(src_prefix + '/')}"
                s3.copy_object(Bucket=bucket, Key=key, CopySource={"Bucket": bucket, "Key": obj["Key"]})


def stage_plan(cfg: PipelineConfig) -> StagePlan:
    """What the chaos schedule picks from: the data stages' shard counts as committed, and the checkpoint
    interval, steps and log interval of the training stages long enough for a fault between checkpoints."""
    from mathray.runtime.storage import ShardStore

    nodes = build_graph(cfg)
    engines = [n for n in nodes if n.kind in ("sample", "shepherd", "score") and n.name not in SEEDED]
    plan = StagePlan(data={n.name: len(ShardStore(n.output).committed()) for n in engines},
                     kinds={n.name: n.kind for n in engines},
                     train={n.name: (n.cfg.checkpoint_every, n.cfg.optim.steps, n.cfg.log_every) for n in nodes
                            if n.name in FAULT_TRAINING})
    assert min(plan.data.values()) >= 3 and set(plan.train) == set(FAULT_TRAINING), plan
    return plan


@pytest.mark.faults
def test_pipeline_under_seeded_chaos_ends_exactly_as_uninterrupted(ray_cluster, s3_moto, bucket, chaos_reference,
                                                                    submitted, chaos_seed, tmp_path):
    reference, plan = chaos_reference
    faults = schedule(chaos_seed, plan)
    # only the stages a fault lands in are paced (engines 1 s per call, training steps): the others run as fast
    # as in the reference
    paced = {f.stage for f in faults}
    cfg, args = _chaos_config(f"{bucket}/chaos-{chaos_seed}-{uuid.uuid4().hex[:6]}", tmp_path, paced)
    outputs = {n.name: n.output for n in build_graph(cfg)}
    _copy_outputs(submitted.cfg.root, cfg.root, [outputs[name] for name in SEEDED])
    pauses = json.dumps({outputs[stage]: 1.0 for stage in paced if stage in plan.data})
    calls = tmp_path / "engine_calls"
    calls.mkdir()
    env = _chaos_env(ray_cluster, tmp_path, pauses, MATHRAY_TEST_CALLS_DIR=str(calls))
    run = ChaosRun(faults, outputs, plan, s3_moto, lambda: start(args, env), str(calls))
    try:
        logs = run.run(timeout=2400)
    finally:
        for i, log in enumerate(run.logs):
            (tmp_path / f"driver{i}.log").write_text(log)
    if not all(f.landed for f in faults):
        stages = [ln for log in logs for ln in log.splitlines() if ln.startswith("[")]
        fired = [f"{f.kind}@{f.stage}:{f.at} " + (f.landed or f"NEVER FIRED (last seen {f.seen or 'never running'})")
                 for f in faults]
        pytest.fail("\n".join(fired + ["--- the drivers' stage lines:"] + stages[-120:]))
    killed = next(f for f in faults if f.kind == "driver")
    assert len(logs) == 2, logs[-1][-3000:]   # the driver re-run
    assert not [name for name in SEEDED for log in logs if f"[pipeline] {name}: running" in log], logs[0][-3000:]
    assert all(f"[pipeline] {name}: skipped" in logs[-1] for name in SEEDED), logs[-1][-3000:]
    resumed = f"shards: {plan.data[killed.stage]} total, {len(killed.kept)} already committed"
    assert resumed in logs[1], logs[-1][-3000:]
    assert {n: v for n, v in commits(outputs[killed.stage]).items() if n in killed.kept} == killed.kept
    got = pipeline_outputs(cfg)
    assert sorted(got) == sorted(reference)
    assert all(reference[n] for n in reference), "an empty reference output would compare equal"
    differing = [n for n in reference if got[n] != reference[n]]
    assert not differing, (f"outputs differ from the uninterrupted run's: {differing}; faults: {faults}\n"
                           + report_diff(got, reference))
