"""What SECURITY.md promises, checked: sandbox workers get no credentials; a model's own Python code never runs
unless a config says so; storage URIs cannot carry endpoints or credentials; credentials set in a job's
environment appear in none of its outputs or logs; none is forwarded to Ray workers."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mathray.runtime.storage import ShardStore

FAKE = {"AWS_ACCESS_KEY_ID": "AKIAFAKEFAKEFAKE7Q2X", "AWS_SECRET_ACCESS_KEY": "fake/secret+Kq93ZsW0leak0key0value",
        "AWS_SESSION_TOKEN": "FakeSessionTokenZ81Mvq0leak", "HF_TOKEN": "hf_fakeTokenP0wq7leak",
        "WANDB_API_KEY": "0123fakewandbkey89leak"}


def test_sandbox_workers_get_no_credentials(monkeypatch):
    from mathray.grading.sandbox import WorkerPool

    for k, v in FAKE.items():
        monkeypatch.setenv(k, v)
    pool = WorkerPool(size=2, timeout=30)
    try:
        assert pool.wait_ready()
        assert pool.call("echo", "alive", timeout=30) == ("ok", "alive")
        pids = [pool._template.proc.pid, *(w.pid for w in pool._all)]   # the template and the workers it forked
        assert len(pids) == 3 and None not in pids
        for pid in pids:
            environ = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
            assert not [k for k in FAKE if k in environ] and not [v for v in FAKE.values() if v in environ]
            assert "PATH=" in environ
    finally:
        pool.close()


def test_credentials_are_never_forwarded_to_ray_workers(monkeypatch):
    from mathray.runtime import env

    for k, v in FAKE.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")
    forwarded = env.storage_env()
    assert forwarded["AWS_ENDPOINT_URL_S3"] == "http://127.0.0.1:9" and not set(FAKE) & set(forwarded)


def test_remote_code_runs_only_when_a_config_sets_it(tmp_path):
    """A model directory whose config points at its own Python code (``auto_map``): the scorer loads it with
    transformers' own class and never imports that code; vLLM gets trust_remote_code=False unless
    ``engine.engine_kwargs`` sets it (then ``build_llm`` prints it)."""
    from mathray.jobs.scoring import Scorer, ScorerConfig
    from mathray.jobs.tiny_model import build_tiny_model
    from mathray.runtime.engine import EngineConfig, llm_kwargs

    model = Path(build_tiny_model(tmp_path / "model"))
    marker = tmp_path / "remote-code-ran"
    (model / "modeling_evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n"
                                            "from transformers import Qwen2ForCausalLM as EvilModel\n")
    config = json.loads((model / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_evil.EvilModel"}
    (model / "config.json").write_text(json.dumps(config))
    Scorer(ScorerConfig(verifier=str(model)).model_dump(), "cpu")
    assert not marker.exists()
    assert llm_kwargs(EngineConfig(model=str(model)), "cpu")["trust_remote_code"] is False
    assert llm_kwargs(EngineConfig(model=str(model), engine_kwargs={"trust_remote_code": True}),
                      "cpu")["trust_remote_code"] is True


@pytest.mark.parametrize("uri", ["s3://AKIAFAKE:secret@bucket/run", "s3://bucket/run?endpoint_override=evil:9000",
                                 "s3://bucket/a/../b"])
def test_uris_cannot_carry_credentials_or_endpoints(uri):
    from mathray.runtime.storage import resolve

    with pytest.raises(ValueError, match="has a query string|no '..' segment and no user info"):
        resolve(uri)


def _stored_text(s3_endpoint: str, bucket: str) -> str:
    """Every object in the bucket as text (parquet files as their rows in JSON)."""
    import io

    import boto3
    import pyarrow.parquet as pq

    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    parts = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            if obj["Key"].endswith(".parquet"):
                body = json.dumps(pq.read_table(io.BytesIO(body)).to_pylist(), default=str).encode()
            parts.append(f"== {obj['Key']}\n" + body.decode(errors="replace"))
    return "\n".join(parts)


@pytest.mark.slow
@pytest.mark.cluster
def test_no_credentials_in_run_records_reports_or_logs(ray_cluster, s3_server, s3_bucket, tmp_path):
    """Score and evaluate jobs run as a user runs them (``python -m rayjobs.<job>``) with fake credentials in
    their environment and every output on S3: no credential appears in any object they wrote (run.json,
    config.yaml, markers, manifests, shards, the report) or in what they printed."""
    from helpers.faults import driver_env, finish, start
    from helpers.score_data import commit_samples, sample_rows

    from mathray.jobs.tiny_model import build_tiny_model

    verifier = str(build_tiny_model(tmp_path / "verifier", seed=1))
    commit_samples(f"{s3_bucket}/samples", sample_rows(4, 3, seed=0), shards=2)
    env = driver_env(ray_cluster, **FAKE)
    logs = finish(start(["-m", "rayjobs.score", "--set", f"input={s3_bucket}/samples", "--set",
                         f"output={s3_bucket}/scores", "--set", f"scorer.verifier={verifier}",
                         "--set", "scorer.device=cpu"], env))
    logs += finish(start(["-m", "rayjobs.evaluate", "--set", f"samples={s3_bucket}/samples", "--set",
                          f"scores={s3_bucket}/scores", "--set", f"output={s3_bucket}/report", "--set", "trials=3",
                          "--set", "bootstrap_resamples=10"], env))
    stored = _stored_text(s3_server, s3_bucket.removeprefix("s3://"))
    assert "== scores/run.json" in stored and "== report/report.md" in stored and "[score]" in logs
    leaked = [k for k, v in FAKE.items() if v in stored or v in logs]
    assert not leaked, f"credentials found in outputs or logs: {leaked}"
    assert ShardStore(f"{s3_bucket}/scores").read_manifest()["complete"]
