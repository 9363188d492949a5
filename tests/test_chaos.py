"""Faults combined as they happen: one reduced pipeline run (every stage kind: ingest, SSFT, sampling,
Math-Shepherd labels, verifier, PRM, test sampling, exact labels, scoring, evaluation; sequential and ORM left
out) on S3, under a seeded chaos schedule (``helpers.chaos``): engine actors and a Ray Train worker
SIGKILLed, the pipeline driver SIGKILLed and re-run, the S3 server stopped within the retry window. It must
end with exactly the outputs of an uninterrupted run of the same pipeline (computed once per session): every
stage's committed rows, the model exports' files and the report.

CI runs one fixed seed; ``pytest --chaos-seeds N`` runs seeds 1..N instead."""
from __future__ import annotations

import json
import re
import uuid

import pytest
from helpers.chaos import ChaosRun, StagePlan, commits, schedule
from helpers.faults import driver_env, finish, row_digests, start, write_config
from helpers.train_callbacks import pause_each_step

from conftest import REPO
from mathray.config import load_config
from mathray.pipeline import PipelineConfig, build_graph
from mathray.runtime.models import EXPORT_INFO, read_mark
from mathray.runtime.storage import ShardStore, join, read_bytes
from test_ray_cluster import REDUCED

pytestmark = [pytest.mark.slow, pytest.mark.cluster, pytest.mark.faults]
CI_SEED = 0
# The reduced demo pipeline with each data stage in 4 shards of several actor calls each (so faults land between
# commits), training runs checkpointed several times (a killed worker restores mid-run); stages run two at a time
# as in the demo (a fault kills its own stage's actor: see helpers.chaos.ChaosRun.victims).
CHAOS = [*REDUCED, "sequential.enabled=false", "orm=null", "max_parallel=2", "progress_every_s=600",
         "data.label.shard_rows=3", "data.test.shard_rows=2", "ssft.checkpoint_every=50", "ssft.log_every=10",
         "verifier.train.optim.steps=12", "verifier.train.checkpoint_every=4", "verifier.train.log_every=2",
         "prm.optim.steps=12", "prm.checkpoint_every=4", "prm.log_every=2",
         "sample_train.engine.batch_size=1", "sample_test.engine.batch_size=1", "score.scorer.rows_per_call=4"]
ROW_KEYS = {"ingest": ("problem_id",), "sample": ("problem_id", "sample_id"), "shepherd": ("problem_id", "sample_id"),
            "exact_labels": ("problem_id", "sample_id"), "score": ("problem_id", "sample_id")}
# columns that legitimately differ between runs: the labeller's per-batch engine counters and its model's path
# and the model ids of generators and scorers: "<name>@<digest of the export's mark>", whose export info holds
# the training run's times (the exports' files are compared at the model nodes)
DROP = {"shepherd": ("metadata",), "sample": ("generator",), "score": ("scorer",)}
MODEL_ID = re.compile(r"@[0-9a-f]{12}\b")
# the report's config hashes and lineage hash the run's config, which holds its root
RUN_HASH = re.compile(r"((?:config hash|lineage)\W+)[0-9a-f]{16}\b")
# log-probabilities and scores computed in other batches (a replica restarted mid-stage) differ in the last bits
FLOAT_DIGITS = 6


def pytest_generate_tests(metafunc):
    if "chaos_seed" in metafunc.fixturenames:
        n = metafunc.config.getoption("--chaos-seeds")
        metafunc.parametrize("chaos_seed", list(range(1, n + 1)) if n else [CI_SEED])


def _config(root: str, tmp_path, paced: set[str] = frozenset()) -> tuple[PipelineConfig, list[str]]:
    """The chaos pipeline's config and driver command; each training step of the ``paced`` training stages
    sleeps (a callback, outside the lineage), so that such a stage lasts long enough for its faults to land."""
    cfg = load_config(PipelineConfig, REPO / "rayjobs/configs/demo.yaml", [*CHAOS, f"root={root}"])
    pauses = {"ssft": 0.1, "verifier_xent": 1.0, "prm": 1.0}
    for stage, train_cfg in (("ssft", cfg.ssft), ("verifier_xent", cfg.verifier.train), ("prm", cfg.prm)):
        if stage in paced:
            train_cfg.callbacks = [pause_each_step(pauses[stage])]
    cfg_file = write_config(cfg, tmp_path / "pipeline.yaml")
    return cfg, ["tests/helpers/chaos_pipeline.py", "--only", "evaluate", "--config", str(cfg_file)]


def _env(ray_cluster, tmp_path, pause_s: str, **extra: str) -> dict:
    return driver_env(ray_cluster, MATHRAY_TEST_PAUSE_S=pause_s, MATHRAY_STORAGE_RETRY_S="120",
                      MATHRAY_CACHE_DIR=str(tmp_path / "cache"), **extra)


def pipeline_outputs(cfg: PipelineConfig) -> dict[str, object]:
    """Per node: its rows' digests by key (shard sets), its export's files with their sha256 but the export
    info (which holds the run's metrics), or its report (JSON and markdown) with the run root and the model
    ids' digests replaced."""
    out = {}
    for node in build_graph(cfg):
        if node.kind in ROW_KEYS:
            out[node.name] = row_digests(node.output, ROW_KEYS[node.kind], drop=DROP.get(node.kind, ()),
                                         float_digits=FLOAT_DIGITS, root=cfg.root.rstrip("/"))
        elif node.kind in ("model", "train"):
            mark = read_mark(node.output if node.kind == "model" else join(node.output, "final"))
            out[node.name] = {f: v["sha256"] for f, v in mark["files"].items() if f != EXPORT_INFO}
        else:
            out[node.name] = {name: report_text(join(node.output, name), cfg.root.rstrip("/"))
                              for name in ("report.json", "report.md")}
    return out


def report_text(uri: str, root: str) -> str:
    """A report file with the run root written as <root> and each model id's digest as <id>."""
    text = MODEL_ID.sub("@<id>", read_bytes(uri).decode().replace(root, "<root>"))
    return RUN_HASH.sub(r"\1<hash>", text)


@pytest.fixture(scope="session")
def chaos_bucket(s3_server) -> str:
    import boto3

    name = f"mathray-chaos-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1").create_bucket(Bucket=name)
    return f"s3://{name}"


@pytest.fixture(scope="session")
def chaos_reference(ray_cluster, chaos_bucket, tmp_path_factory):
    """The uninterrupted run: its outputs and what the schedule picks from (the data stages' shard counts
    as committed, the training stages' checkpoint interval and steps)."""
    tmp = tmp_path_factory.mktemp("chaos_reference")
    cfg, args = _config(f"{chaos_bucket}/reference", tmp)
    (tmp / "driver.log").write_text(finish(start(args, _env(ray_cluster, tmp, "0")), timeout=1800))
    nodes = build_graph(cfg)
    engines = [n for n in nodes if n.kind in ("sample", "shepherd", "score")]
    plan = StagePlan(data={n.name: len(ShardStore(n.output).committed()) for n in engines},
                     kinds={n.name: n.kind for n in engines},
                     train={n.name: (n.cfg.checkpoint_every, n.cfg.optim.steps, n.cfg.log_every) for n in nodes
                            if n.kind == "train"})
    assert min(plan.data.values()) >= 3 and set(plan.train) == {"ssft", "verifier_xent", "prm"}, plan
    return pipeline_outputs(cfg), plan


def test_pipeline_under_seeded_chaos_ends_exactly_as_uninterrupted(ray_cluster, s3_moto, chaos_bucket,
                                                                    chaos_reference, chaos_seed, tmp_path):
    reference, plan = chaos_reference
    faults = schedule(chaos_seed, plan)
    # only the stages a fault lands in are paced (engines 1 s per call, training steps): the others run as fast
    # as in the reference
    paced = {f.stage for f in faults}
    cfg, args = _config(f"{chaos_bucket}/chaos-{chaos_seed}-{uuid.uuid4().hex[:6]}", tmp_path, paced)
    outputs = {n.name: n.output for n in build_graph(cfg)}
    pauses = json.dumps({outputs[stage]: 1.0 for stage in paced if stage in plan.data})
    calls = tmp_path / "engine_calls"
    calls.mkdir()
    env = _env(ray_cluster, tmp_path, pauses, MATHRAY_TEST_CALLS_DIR=str(calls))
    run = ChaosRun(faults, outputs, plan, s3_moto, lambda: start(args, env), str(calls))
    try:
        logs = run.run(timeout=2400)
    finally:
        for i, log in enumerate(run.logs):
            (tmp_path / f"driver{i}.log").write_text(log)
    if not all(f.landed for f in faults):
        stages = [ln for log in logs for ln in log.splitlines() if ln.startswith("[")]
        pytest.fail("\n".join([f"{f.kind}@{f.stage}:{f.at} {f.landed or 'NEVER FIRED (last seen ' + (f.seen or 'never running') + ')'}" for f in faults]
                               + ["--- the drivers' stage lines:"] + stages[-120:]))
    killed = next(f for f in faults if f.kind == "driver")
    assert len(logs) == 2 and "[pipeline] ssft: skipped" in logs[1], logs[-1][-3000:]   # the driver re-run
    resumed = f"shards: {plan.data[killed.stage]} total, {len(killed.kept)} already committed"
    assert resumed in logs[1], logs[-1][-3000:]
    assert {n: v for n, v in commits(outputs[killed.stage]).items() if n in killed.kept} == killed.kept
    got = pipeline_outputs(cfg)
    assert sorted(got) == sorted(reference)
    assert all(reference[n] for n in reference), "an empty reference output would compare equal"
    differing = [n for n in reference if got[n] != reference[n]]
    assert not differing, (f"outputs differ from the uninterrupted run's: {differing}; faults: {faults}\n"
                           + report_diff(got, reference))


def report_diff(got: dict, reference: dict) -> str:
    """The lines that differ between two runs' report files (the uninterrupted run's first)."""
    import difflib

    lines = []
    for node, files in reference.items():
        if isinstance(files, dict) and "report.json" in files and got.get(node) != files:
            for name in files:
                lines += difflib.unified_diff(files[name].splitlines(), got[node][name].splitlines(),
                                              f"reference/{name}", f"chaos/{name}", n=1, lineterm="")
    return "\n".join(lines[:80])
