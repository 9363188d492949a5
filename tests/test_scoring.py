"""The scoring job on a local Ray cluster: SCORES rows equal a direct single-process transformers
computation on the same checkpoints (to 1e-4); quarantine; resume. (The scorer actor and the driver killed
mid-stage: tests/test_ray_cluster.py.)"""
import pyarrow as pa
import pytest
import torch
from helpers.quarantine import read_all_quarantine
from helpers.score_data import commit_samples, sample_rows

from mathray.core import prompts, schemas
from mathray.jobs.scoring import ScoreConfig, Scorer, ScorerConfig, run_score
from mathray.core.steps import step_texts
from mathray.runtime.storage import ShardStore
from mathray.jobs.tiny_model import build_tiny_model


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt")
    return str(build_tiny_model(root / "verifier", seed=1)), str(build_tiny_model(root / "prm", seed=2))


def positive_prob(logits: torch.Tensor, position: int, positive: int, negative: int) -> float:
    """p(positive) renormalised over the two label tokens at one position: sigmoid(z+ - z-), written here
    apart from ``mathray.core.readout`` so that the reference does not share the scorer's readout."""
    return torch.sigmoid(logits[position, positive] - logits[position, negative]).item()


def direct_scores(model_dir: str, row: dict) -> tuple[float, list[float]]:
    """One sequence at a time, full forward, all logits: the reference the job must reproduce."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    v_ids = tok.encode(prompts.verifier_prompt(row["problem"], row["text"]), add_special_tokens=False)
    labels = [tok.encode(t, add_special_tokens=False)[0] for t in prompts.VERIFIER_LABELS]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([v_ids])).logits[0]
    v = positive_prob(logits, len(v_ids) - 1, *labels)     # read at the last prompt token ("is")
    tag = tok.encode(prompts.STEP_TAG, add_special_tokens=False)[0]
    ids, pos = prompts.encode_prm(tok, prompts.sample_prompt(row), step_texts(row["text"], "auto"), tag)
    p_labels = [tok.encode(t, add_special_tokens=False)[0] for t in prompts.PRM_LABELS]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0]
    return v, [positive_prob(logits, p, *p_labels) for p in pos]


def direct_orm_score(model_dir: str, row: dict) -> float:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    tag = tok.encode(prompts.STEP_TAG, add_special_tokens=False)[0]
    ids, pos = prompts.encode_orm(tok, prompts.sample_prompt(row), row["text"], tag)
    p_labels = [tok.encode(t, add_special_tokens=False)[0] for t in prompts.PRM_LABELS]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0]
    return positive_prob(logits, pos, *p_labels)


def test_scorer_in_process_matches_direct_and_quarantines(checkpoints):
    verifier, prm = checkpoints
    rows = sample_rows(2, 4, seed=3)
    long = dict(rows[0], sample_id=99, text="1 + 1 = 2\n" * 200)
    batch = pa.Table.from_pylist([dict(r, _src_shard="s", _src_row=i) for i, r in enumerate(rows + [long])])
    out = Scorer(ScorerConfig(verifier=verifier, prm=prm, batch_size=3, max_length=500).model_dump(), "cpu")(batch)
    by_src = {r["_src_row"]: r for r in out.to_pylist()}
    got = [by_src[i] for i in range(len(rows) + 1)]
    assert [r["_quarantine"] for r in got[:-1]] == [None] * len(rows)
    assert "verifier input of" in got[-1]["_quarantine"] and "> max_length 500" in got[-1]["_quarantine"]
    for row, g in zip(rows, got):
        v, _ = direct_scores(verifier, row)
        _, steps = direct_scores(prm, row)
        assert g["verifier_score"] == pytest.approx(v, abs=1e-4)
        assert g["step_scores"] == pytest.approx(steps, abs=1e-4)
        assert len(g["step_scores"]) == len(row["text"].split("\n"))
    assert len({g["verifier_score"] for g in got[:-1]}) > 1   # real, differing scores


def test_orm_score_and_trained_label_ids_are_used(checkpoints, tmp_path):
    """The ORM column reads encode_orm's tag; label ids come from the export's mathray_labels.json (here the
    verifier labels swapped, as a training run with other label strings would write them)."""
    import json
    import shutil

    from mathray.core.label_tokens import LABELS_FILE, load_labels

    verifier, prm = checkpoints
    swapped = str(tmp_path / "swapped")
    shutil.copytree(verifier, swapped)
    from transformers import AutoTokenizer

    tokens = load_labels(swapped, AutoTokenizer.from_pretrained(swapped)).to_json()
    tokens["verifier"] = tokens["verifier"][::-1]
    (tmp_path / "swapped" / LABELS_FILE).write_text(json.dumps(tokens))
    rows = sample_rows(2, 3, seed=4)
    batch = pa.Table.from_pylist([dict(r, _src_shard="s", _src_row=i) for i, r in enumerate(rows)])
    out = Scorer(ScorerConfig(verifier=swapped, orm=prm, batch_size=2).model_dump(), "cpu")(batch).to_pylist()
    for row, g in zip(rows, sorted(out, key=lambda r: r["_src_row"])):
        v, _ = direct_scores(verifier, row)
        assert g["verifier_score"] == pytest.approx(1 - v, abs=1e-4)
        assert g["orm_score"] == pytest.approx(direct_orm_score(prm, row), abs=1e-4)
        assert g["step_scores"] is None


@pytest.mark.slow
@pytest.mark.cluster
def test_score_job_matches_direct_computation_and_resumes(ray_cluster, checkpoints, tmp_path):
    verifier, prm = checkpoints
    rows = sample_rows(4, 3, seed=0)
    bad = dict(rows[0], sample_id=50, problem_id=rows[0]["problem_id"])
    bad["text"] = "x"                                           # valid row, scored
    rows.append(bad)
    commit_samples(str(tmp_path / "samples"), rows, shards=2)
    # a row that does not fit SAMPLES (empty text) must be quarantined, not lost
    ShardStore(str(tmp_path / "samples")).commit_shard("part-00002", schemas.to_table(
        [dict(rows[1], text=" ", problem_id="toy-test-bad")], schemas.SAMPLES))
    ShardStore(str(tmp_path / "samples")).write_manifest()
    cfg = ScoreConfig(input=str(tmp_path / "samples"), output=str(tmp_path / "scores"),
                      scorer=ScorerConfig(verifier=verifier, prm=prm, batch_size=4, rows_per_call=5, max_replicas=2))
    first = run_score(cfg.model_copy(update={"max_shards": 1}))
    assert first.shards_committed == 1
    summary = run_score(cfg)
    assert summary.shards_skipped == 1 and summary.shards_committed == 2 and summary.rows_quarantined == 1
    out = ShardStore(cfg.output)
    assert sorted(out.committed()) == ["part-00000", "part-00001", "part-00002"]
    scores = {(r["problem_id"], r["sample_id"]): r for r in out.read_all().to_pylist()}
    assert len(scores) == len(rows)
    assert read_all_quarantine(out).column("reason").to_pylist() == ["empty required field 'text'"]
    for row in rows:
        got = scores[(row["problem_id"], row["sample_id"])]
        v, _ = direct_scores(verifier, row)
        _, steps = direct_scores(prm, row)
        assert got["verifier_score"] == pytest.approx(v, abs=1e-4)
        assert got["step_scores"] == pytest.approx(steps, abs=1e-4)
        assert got["scorer"].startswith("verifier=verifier@") and ";prm=prm@" in got["scorer"]
    assert run_score(cfg).shards_committed == 0
