"""The Math-Shepherd labelling job end to end: a local Ray cluster, the tiny model in vLLM on CPU, toy
solutions with errors injected at known steps, both modes, resume, quarantine, and the text export."""
import json
import random

import pytest
from pyarrow.fs import FileSelector

from helpers.quarantine import read_all_quarantine
from mathray.core import schemas
from mathray.config import load_config
from mathray.runtime.engine import EngineConfig
from mathray.jobs.ingest import load_math_shepherd
from mathray.jobs.rollout import LabelingConfig
from mathray.jobs.labeling import (EXPORT_NAME, ShepherdConfig, export_text, labeling_cost, run_shepherd,
                                   shard_stats)
from mathray.runtime.storage import ShardStore, read_bytes, resolve, shard_name
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
    reasons = sorted(q["reason"] for q in read_all_quarantine(store).to_pylist())
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


def _label_row(pid: str, sample_id: int, hard: list[int], rollouts: list[int], tokens: int, batch: dict) -> dict:
    return {"problem_id": pid, "sample_id": sample_id, "problem": f"What is {pid}?",
            "steps": [f"step {i}" for i in range(len(hard))], "hard_labels": hard, "soft_labels": None,
            "label_source": "shepherd-full", "rollouts": rollouts, "tokens_generated": tokens,
            "metadata": json.dumps({"batch": batch}), "first_error_step": None, "prompt": None}


def test_cost_summary_and_export_come_from_markers_and_single_shards(storage_root, monkeypatch):
    """The summary is built from the shards' markers and the export shard by shard (``read_all`` is never
    called), on local disk and on S3; a labeller batch whose rows fall in two shards counts once."""
    b1 = {"id": "b1", "engine_steps": 10, "generation_tokens": 100, "prefix_cache_queries": 40,
          "prefix_cache_hits": 30, "rollouts_aborted": 1, "rollouts_discarded": 2, "engine_empty_s": 0.5}
    b2 = {"id": "b2", "engine_steps": 5, "generation_tokens": 50, "prefix_cache_queries": 60,
          "prefix_cache_hits": 10, "rollouts_aborted": 0, "rollouts_discarded": 0, "engine_empty_s": 0.25}
    shards = [[_label_row("p1", 0, [1, 0], [3, 0], 30, b1)],
              [_label_row("p1", 1, [1, 1, 1], [3, 3, 0], 60, b1), _label_row("p2", 0, [0], [0], 0, b2)]]
    store = ShardStore(f"{storage_root}/labels")
    for i, rows in enumerate(shards):
        table = schemas.to_table(rows, schemas.STEP_LABELS)
        store.commit_shard(shard_name(i), table, stats=shard_stats(table))
    monkeypatch.setattr(ShardStore, "read_all", lambda *a, **k: pytest.fail("the driver read every row"))
    cost = labeling_cost(store)
    # by hand: 3 solutions, 2 + 3 + 1 = 6 steps, 3 + 6 + 0 = 9 rollouts, 90 tokens; b1 once plus b2
    assert (cost["solutions"], cost["steps"], cost["rollouts"], cost["tokens_generated"]) == (3, 6, 9, 90)
    assert cost["rollouts_per_step"] == 1.5 and cost["tokens_per_solution"] == 30
    assert (cost["engine_steps"], cost["engine_tokens"], cost["rollouts_dropped"]) == (15, 150, 3)
    assert cost["engine_empty_s"] == 0.75 and cost["prefix_cache_hit_rate"] == 40 / 100
    lines = read_bytes(export_text(store)).decode().splitlines()
    fs, root = resolve(store.uri)   # the temporary file or key of the streamed write is gone
    assert not [i.path for i in fs.get_file_info(FileSelector(root)) if i.path.endswith(".part")]
    records = [json.loads(line) for line in lines]
    assert [(r["problem_id"], r["sample_id"]) for r in records] == [("p1", 0), ("p1", 1), ("p2", 0)]
    for rec, row in zip(records, shards[0] + shards[1]):
        back = load_math_shepherd(rec, 0, "t").step_labels
        assert back["hard_labels"] == row["hard_labels"] and back["problem"] == row["problem"]


def test_shipped_config_and_bad_config():
    from mathray.cli import CONFIG_DIR

    cfg = load_config(ShepherdConfig, CONFIG_DIR / "shepherd.yaml")
    assert cfg.labeling.mode == "first-error" and cfg.engine.device == "cpu"
    with pytest.raises(ValueError, match="greedy"):
        LabelingConfig(temperature=0.0, k=4)


# -- a prompt the engine refuses (engine actors and the driver killed: tests/test_ray_cluster.py) -----------
FAULT_SHARDS = 4


@pytest.fixture(scope="module")
def fault_samples(tmp_path_factory):
    """4 SAMPLES shards of one problem each (its reference solution and an injected-error one); shard 3 adds a
    wrong solution whose first step is ~1800 tokens, so every rollout prompt of it exceeds max_model_len."""
    store = ShardStore(str(tmp_path_factory.mktemp("fault_samples")))
    rng = random.Random(1)
    for s, p in enumerate(generate_problems(ToyTaskConfig(seed=5, num_train=FAULT_SHARDS, num_test=0), "train")):
        lines = p["reference_solution"].split("\n")
        wrong = inject_error(lines, rng.randrange(len(lines) - 1), rng)
        rows = [sample_row(p, 0, p["reference_solution"], p["answer"], True),
                sample_row(p, 1, "\n".join(wrong), wrong[-1].split("{")[1].split("}")[0], False)]
        if s == 3:
            rows.append(sample_row(p, 2, "1 + 1 = 2, " * 200 + "\n" + "\n".join(wrong[1:]), "0", False))
        store.commit_shard(shard_name(s), schemas.to_table(rows, schemas.SAMPLES))
    store.write_manifest()
    return store


def _fault_cfg(samples: ShardStore, out: str, model_dir) -> ShepherdConfig:
    cfg = _cfg(samples, out, model_dir, "first-error")
    cfg.engine.batch_size = 1    # one solution per engine call: shards commit one by one
    return cfg


@pytest.fixture(scope="module")
def fault_reference(ray_cluster, tiny_model_dir, fault_samples, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("shepherd_reference") / "labels")
    return out, run_shepherd(_fault_cfg(fault_samples, out, tiny_model_dir))


@pytest.mark.slow
@pytest.mark.cluster
@pytest.mark.faults
def test_a_prompt_the_engine_refuses_is_quarantined_and_the_job_continues(fault_reference):
    out, summary = fault_reference
    assert summary.stage.complete and summary.stage.shards_committed == FAULT_SHARDS
    q = read_all_quarantine(ShardStore(out)).to_pylist()
    assert len(q) == 1 and q[0]["reason"].startswith("engine refused the prompt: ") and "512" in q[0]["reason"]
    assert json.loads(q[0]["raw"])["sample_id"] == 2
    assert len(ShardStore(out).read_all()) == 2 * FAULT_SHARDS


def test_shepherd_pool_reserves_grading_cpus_on_gpu_only():
    """On a 2-core node a CPU replica holding 1 + grading_processes CPUs left none for the stage's read and
    commit tasks or a training stage beside it (the demo hung); on GPU nodes the grading CPUs are reserved."""
    from mathray.jobs.labeling import shepherd_pool

    cfg = ShepherdConfig(labeling=LabelingConfig(grading_processes=2))
    assert shepherd_pool(cfg, "cpu")["num_cpus"] == 1
    gpu = shepherd_pool(cfg, "gpu")
    assert gpu["num_gpus"] == 1 and gpu["num_cpus"] == 3


def test_rollout_grader_in_process_and_in_a_pool_count_the_same():
    """``grading_processes=0`` grades in the engine loop's own process (vLLM's engine core keeps generating in
    its process meanwhile); a pool of spawned processes gives the same counts."""
    from mathray.jobs.rollout import RolloutGrader

    jobs = [("3 * 4 = 12", ["12 + 1 = 13\nThe answer is \\boxed{13}.", "12 + 1 = 14\nThe answer is \\boxed{14}.",
                            "no answer"], "13"),
            ("2 + 2 = 5", ["The answer is \\boxed{5}.", "The answer is \\boxed{5}."], "4")]
    inline, pool = RolloutGrader(0), RolloutGrader(1)
    try:
        now = inline.submit(jobs)
        assert now.done() and now.result() == [1, 0]
        assert pool.submit(jobs).result(timeout=120) == [1, 0]
    finally:
        inline.close()
        pool.close()
    assert ShepherdConfig(labeling=LabelingConfig(grading_processes=0)).labeling.grading_processes == 0


@pytest.mark.slow
def test_stopping_prefixes_at_their_first_correct_completion_keeps_the_labels(tiny_model_dir):
    """The real engine, each completion its own request: completion c alone is the c-th of the K asked
    together (vLLM seeds child c with seed + c). Stopping a prefix at its first correct completion gives
    the hard labels and first errors of all K with fewer rollouts and generated tokens, and the same rows
    whether one completion or many are in the engine at a time. The prefixes here already hold the answer
    (\\boxed{7}), so the untrained completer's finished completions that box nothing else count correct."""
    from mathray.jobs.rollout import RolloutLabeler, rollout_prompt
    from mathray.core.prompts import sample_prompt
    from mathray.core.steps import split_steps

    text = "\n".join(["We get 3 + 4 = 7, so the answer is \\boxed{7}.", "Then 7 * 2 = 15.", "Then 15 - 1 = 14.",
                      "The answer is \\boxed{14}."])
    rows = [{"problem_id": f"p{n}", "sample_id": 0, "problem": f"What is 3 + 4? (case {n})", "reference_answer": "7",
             "text": text, "answer": "14", "is_correct": False, "finish_reason": "stop"} for n in range(12)]
    engine = EngineConfig(model=str(tiny_model_dir), device="cpu", enforce_eager=True, max_model_len=512,
                          kv_cache_memory_bytes=256 * 2**20, engine_kwargs={"block_size": 32})

    def cfg(**kw):   # bisection on both sides: this test isolates the stopping (the weighted search, which
        # probes other prefixes once good ones are cheap, is tested in test_shepherd and benchmarks/shepherd.py)
        return LabelingConfig(k=4, max_tokens=200, temperature=1.0, grading_processes=0, search="bisect", **kw)

    labeler = RolloutLabeler(engine, cfg(stop_at_correct=False))
    try:
        row, steps = rows[0], split_steps(text)
        prompt = rollout_prompt(sample_prompt(row), text, steps, 1)
        (together,) = labeler.llm.generate([prompt], [labeler._params(row, 1)], use_tqdm=False)
        alone = labeler.llm.generate([prompt] * 4, [labeler._params(row, 1, c) for c in range(4)], use_tqdm=False)
        assert [c.text for c in together.outputs] == [a.outputs[0].text for a in alone]

        every = labeler.label(rows)
        labeler.cfg = cfg()                         # first-error mode: stop_at_correct by default
        assert labeler.cfg.stop_at_correct
        stopped = labeler.label(rows)
        labeler.cfg = cfg(max_in_flight=1)          # one completion at a time: strictly in index order
        one_by_one = labeler.label(rows[:2])
    finally:
        labeler.close()

    def drop_meta(out):
        return [{k: v for k, v in r.items() if k != "metadata"} for r in out]

    assert drop_meta(one_by_one) == drop_meta(stopped[:2])
    early = 0
    for a, s in zip(every, stopped):
        assert s["hard_labels"] == a["hard_labels"] and s["first_error_step"] == a["first_error_step"]
        assert s["tokens_generated"] <= a["tokens_generated"]
        for i, (ra, rs) in enumerate(zip(a["rollouts"], s["rollouts"])):
            assert rs <= ra
            if rs < ra:
                early += 1
                assert s["hard_labels"][i] == 1 and s["soft_labels"][i] is None
            else:
                assert s["soft_labels"][i] == a["soft_labels"][i]
    assert early >= 3 and sum(s["hard_labels"][1] for s in stopped) >= 3
    batch = [json.loads(out[0]["metadata"])["batch"] for out in (every, stopped)]
    assert batch[1]["generation_tokens"] < batch[0]["generation_tokens"]
