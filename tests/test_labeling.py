"""The Math-Shepherd labelling job end to end: a local Ray cluster, the tiny model in vLLM on CPU, toy
solutions with errors injected at known steps, both modes, resume, quarantine, and the text export."""
import json
import random

import pytest

from mathray.core import schemas
from mathray.config import load_config
from mathray.runtime.engine import EngineConfig
from mathray.jobs.ingest import load_math_shepherd
from mathray.jobs.rollout import LabelingConfig
from mathray.jobs.labeling import EXPORT_NAME, ShepherdConfig, run_shepherd
from mathray.runtime.storage import ShardStore, read_bytes, shard_name
from mathray.core.toy import ToyTaskConfig, generate_problems, inject_error

K = 3


def sample_row(problem: dict, sample_id: int, text: str, answer: str | None, correct: bool) -> dict:
    return {"problem_id": problem["problem_id"], "sample_id": sample_id, "problem": problem["problem"],
            "reference_answer": problem["answer"], "prompt_hash": "test", "text": text, "answer": answer,
            "is_correct": correct, "grade_reason": "equal" if correct else "not-equal",
            "num_prompt_tokens": 10, "num_output_tokens": 20, "finish_reason": "stop",
            "cumulative_logprob": None, "generator": "test", "sampling_params_hash": "test", "seed": 0}


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    from mathray.jobs.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def toy_samples(tmp_path_factory):
    """Two SAMPLES shards: per problem its reference solution (correct) and the same solution with an
    arithmetic error injected at a known step; plus one unsplittable and one invalid row."""
    store = ShardStore(str(tmp_path_factory.mktemp("samples")))
    rng = random.Random(0)
    injected = {}
    problems = generate_problems(ToyTaskConfig(num_train=4, num_test=0), "train")
    for s in range(2):
        rows = []
        for p in problems[2 * s: 2 * s + 2]:
            lines = p["reference_solution"].split("\n")
            step = rng.randrange(len(lines) - 1)
            wrong = inject_error(lines, step, rng)
            rows.append(sample_row(p, 0, p["reference_solution"], p["answer"], True))
            rows.append(sample_row(p, 1, "\n".join(wrong), wrong[-1].split("{")[1].split("}")[0], False))
            injected[p["problem_id"]] = step
        if s == 1:
            rows.append(sample_row(problems[3], 2, "ки ки", None, False))   # tags only: no step
            rows.append(sample_row(problems[3], 3, "   ", None, False))     # empty text: invalid
        store.commit_shard(shard_name(s), schemas.to_table(rows, schemas.SAMPLES))
    store.write_manifest()
    return store, injected


def _cfg(samples: ShardStore, out: str, model_dir, mode: str) -> ShepherdConfig:
    engine = EngineConfig(model=str(model_dir), device="cpu", enforce_eager=True, max_model_len=512,
                          kv_cache_memory_bytes=256 * 2**20, batch_size=16,
                          engine_kwargs={"block_size": 32})
    return ShepherdConfig(input=samples.uri, output=out, engine=engine,
                          labeling=LabelingConfig(mode=mode, k=K, max_tokens=24, temperature=1.0))


@pytest.mark.slow
@pytest.mark.cluster
def test_both_modes_label_every_step(ray_cluster, tiny_model_dir, toy_samples, tmp_path):
    samples, injected = toy_samples
    out = str(tmp_path / "first_error")
    summary = run_shepherd(_cfg(samples, out, tiny_model_dir, "first-error"))
    assert summary.stage.shards_committed == 2 and summary.stage.rows_quarantined == 2
    store = ShardStore(out)
    table = store.read_all()
    assert table.schema.equals(schemas.STEP_LABELS)
    rows = {(r["problem_id"], r["sample_id"]): r for r in table.to_pylist()}
    assert len(rows) == 8
    for r in rows.values():
        assert schemas.row_problem(r, schemas.STEP_LABELS) is None
        n = len(r["steps"])
        assert n >= 3 and len(r["hard_labels"]) == len(r["soft_labels"]) == len(r["rollouts"]) == n
        assert r["label_source"] == "shepherd-first-error"
        if r["sample_id"] == 0:  # correct final answer: every step good, no rollout at all
            assert r["hard_labels"] == [1] * n and r["rollouts"] == [0] * n and r["tokens_generated"] == 0
            assert r["first_error_step"] is None
        else:  # the untrained completer never reaches the answer: the first step is the first failure
            e = injected[r["problem_id"]]
            assert r["hard_labels"][e:] == [0] * (n - e) and r["first_error_step"] == 0
            assert r["rollouts"][-1] == 0 and r["soft_labels"][-1] == 0.0   # free: the answer is wrong
            assert 1 <= sum(1 for x in r["rollouts"] if x) <= 3 and set(r["rollouts"]) <= {0, K}
            assert r["tokens_generated"] > 0
            assert all((s is None) == (x == 0) for s, x in zip(r["soft_labels"][:-1], r["rollouts"][:-1]))
    reasons = sorted(q["reason"] for q in store.read_all_quarantine().to_pylist())
    assert reasons == ["empty required field 'text'", "no parsable steps (auto format)"]
    assert summary.cost["solutions"] == 8 and summary.cost["prefix_cache_queries"] > 0
    assert any("prefix cache" in line for line in summary.lines())

    lines = read_bytes(f"{out}/{EXPORT_NAME}").decode().splitlines()
    assert len(lines) == 8
    for line in lines:
        rec = json.loads(line)
        back = load_math_shepherd(rec, 0, "t").step_labels
        assert back["hard_labels"] == rows[(rec["problem_id"], rec["sample_id"])]["hard_labels"]

    again = run_shepherd(_cfg(samples, out, tiny_model_dir, "first-error"))   # committed: nothing redone
    assert again.stage.shards_committed == 0 and again.stage.shards_skipped == 2

    full_out = str(tmp_path / "full")
    full = run_shepherd(_cfg(samples, full_out, tiny_model_dir, "full"))
    frows = {(r["problem_id"], r["sample_id"]): r for r in ShardStore(full_out).read_all().to_pylist()}
    assert frows.keys() == rows.keys()
    for key, r in frows.items():
        n = len(r["steps"])
        assert r["label_source"] == "shepherd-full" and r["rollouts"] == [K] * (n - 1) + [0]
        assert r["soft_labels"][:-1] == [0.0] * (n - 1) and r["hard_labels"][-1] == int(key[1] == 0)
        assert r["first_error_step"] == 0
    assert full.cost["rollouts"] > summary.cost["rollouts"]


def test_shipped_config_and_bad_config():
    from mathray.cli import CONFIG_DIR

    cfg = load_config(ShepherdConfig, CONFIG_DIR / "shepherd.yaml")
    assert cfg.labeling.mode == "first-error" and cfg.engine.device == "cpu"
    with pytest.raises(ValueError, match="greedy"):
        LabelingConfig(temperature=0.0, k=4)
