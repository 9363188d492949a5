"""A few-shot prompt carried through every stage on the tiny model: sample (Ray Data, real vLLM) -> Math-Shepherd
rollouts (real vLLM) -> PRM and ORM training (the trainer stack, a few steps) -> scoring with the trained PRM and
ORM. Every rollout prompt, training example and scorer input starts with the exact prompt its sample was
generated from; the exemplar pool is in the sample set's lineage."""
from __future__ import annotations

import pyarrow as pa
import pytest

from mathray.core import prompts, schemas
from mathray.core.steps import split_steps
from mathray.core.toy import ToyTaskConfig, generate_problems
from mathray.runtime.engine import EngineConfig
from mathray.runtime.storage import ShardStore

pytestmark = [pytest.mark.slow, pytest.mark.cluster]


def _commit(uri: str, rows: list[dict], schema) -> str:
    store = ShardStore(uri)
    store.commit_shard("part-00000", schemas.to_table(rows, schema))
    store.write_manifest()
    return uri


def _starts_with(ids: list[int], prefix: list[int]) -> bool:
    return ids[: len(prefix)] == prefix


def test_few_shot_prompt_reaches_rollouts_training_and_scoring(ray_cluster, tmp_path):
    from transformers import AutoTokenizer

    from mathray.jobs.rollout import LabelingConfig, RolloutLabeler, rollout_prompt
    from mathray.jobs.sampling import SampleJobConfig, SamplingConfig, run_sampling
    from mathray.jobs.scoring import Scorer
    from mathray.jobs.tiny_model import build_tiny_model
    from mathray.jobs.training import data
    from mathray.jobs.training.config import TrainJobConfig
    from mathray.jobs.training.worker import run_local

    model = str(build_tiny_model(tmp_path / "model"))
    toy = ToyTaskConfig(seed=5, num_train=6, num_test=3, min_ops=1, max_ops=2, max_operand=9, max_result=99)
    pool = generate_problems(toy, "train")
    pool_uri = _commit(str(tmp_path / "pool"), pool, schemas.PROBLEMS)
    problems_uri = _commit(str(tmp_path / "problems"), generate_problems(toy, "test"), schemas.PROBLEMS)
    fmt = prompts.PromptConfig(format="few_shot", shots="pool", num_shots=2, exemplar_pool=pool_uri, seed=1)
    engine = EngineConfig(model=model, device="cpu", enforce_eager=True, max_model_len=512,
                          kv_cache_memory_bytes=256 * 2**20, batch_size=8, engine_kwargs={"block_size": 32})

    # 1. sampling: each row holds its exact few-shot prompt; the pool's content is in the lineage
    samples_uri = str(tmp_path / "samples")
    run_sampling(SampleJobConfig(input=problems_uri, output=samples_uri, engine=engine, prompt=fmt,
                                 sampling=SamplingConfig(n=2, temperature=1.0, max_tokens=40, seed=0)))
    samples = ShardStore(samples_uri).read_all().to_pylist()
    assert len(samples) == 6
    for r in samples:
        expected = prompts.build_prompt(r["problem"], r["problem_id"], fmt, pool)
        assert r["prompt"] == expected and r["prompt_hash"] == prompts.prompt_hash(expected)
        assert expected.count("Problem:") == 3 and expected.endswith(prompts.plain_prompt(r["problem"]))
    lineage = ShardStore(samples_uri).read_run_info()["lineage"]
    assert lineage["inputs"]["exemplar_pool"].startswith("shards@")
    assert lineage["config"]["prompt"]["format"] == "few_shot"

    # 2. Math-Shepherd rollouts: every request continues the sample's own prompt and text
    rows = [r for r in samples if split_steps(r["text"], "auto")]
    assert rows, "no sample had a parsable step"
    labeler = RolloutLabeler(engine, LabelingConfig(mode="full", k=2, max_tokens=16, temperature=1.0))
    sent: list[tuple[str, str]] = []
    add_request = labeler.llm.llm_engine.add_request

    def recording(request_id, prompt, params, *args, **kwargs):
        sent.append((request_id, prompt))
        return add_request(request_id, prompt, params, *args, **kwargs)

    labeler.llm.llm_engine.add_request = recording
    labels = labeler.label(rows)
    labeler.close()
    all_steps = [split_steps(r["text"], "auto") for r in rows]
    assert sent and len(labels) == len(rows)
    for request_id, prompt in sent:
        j, i, _ = (int(x) for x in request_id.rsplit("-", 3)[1:])   # call-solution-step-completion
        assert prompt.startswith(rows[j]["prompt"])
        assert prompt == rollout_prompt(rows[j]["prompt"], rows[j]["text"], all_steps[j], i)
    assert [lab["prompt"] for lab in labels] == [r["prompt"] for r in rows]
    labels_uri = _commit(str(tmp_path / "labels"), labels, schemas.STEP_LABELS)

    # 3. training: PRM and ORM examples start with the prompt's tokens; a few real trainer steps each
    tok = AutoTokenizer.from_pretrained(model)
    prompt_ids = {r["prompt"]: tok.encode(r["prompt"], add_special_tokens=False) for r in samples}
    trained = {}
    for task in ("prm", "orm"):
        cfg = TrainJobConfig.model_validate({
            "task": task, "model": model, "output": str(tmp_path / task), "report_to": ["none"],
            "data": {"samples": [samples_uri], "step_labels": [labels_uri], "max_len": 512, "eval_fraction": 0.0},
            "optim": {"lr": 1e-3, "steps": 2, "batch_size": 2, "warmup_ratio": 0.0}})
        run_local(cfg)
        trained[task] = str(tmp_path / task / "final")
    from mathray.core.label_tokens import load_labels

    tag = load_labels(trained["prm"], tok).step_tag
    prm_examples, _ = data.prm_examples(tok, labels, tag, 512)
    orm_examples, _ = data.orm_examples(tok, samples, tag, 10, 512, seed=0)
    assert prm_examples and orm_examples
    for ex in prm_examples + orm_examples:
        assert any(_starts_with(ex["input_ids"], ids) for ids in prompt_ids.values())
    for ex, row in zip(prm_examples, labels):   # one example per label row (none is too long here)
        assert _starts_with(ex["input_ids"], prompt_ids[row["prompt"]])

    # 4. scoring with the trained PRM and ORM: each input starts with the sample's prompt
    scorer = Scorer({"prm": trained["prm"], "orm": trained["orm"], "device": "cpu", "dtype": "float32",
                     "max_length": 512}, "cpu")
    for r in samples:
        inputs, reason = scorer._inputs(r)
        if reason:   # an unsplittable sample has no PRM input: refused, never scored in another format
            assert "no step" in reason
            continue
        assert _starts_with(inputs["orm"][0], prompt_ids[r["prompt"]])
        assert _starts_with(inputs["prm"][0], prompt_ids[r["prompt"]])
    batch = pa.Table.from_pylist([{**r, "_src_shard": "part-00000", "_src_row": k, "_n_out": 1}
                                  for k, r in enumerate(rows)])
    scored = scorer(batch).to_pylist()
    assert len(scored) == len(rows)
    assert all(s["orm_score"] is not None and s["step_scores"] for s in scored)
