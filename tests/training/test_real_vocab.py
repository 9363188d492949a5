"""A tiny model with Qwen2.5's vocabulary size (151,936) and a tokenizer that splits the label strings: label
resolution, verifier/PRM training steps, train/score agreement to 1e-4, and the memory of a verifier step."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
import torch

from mathray.core import prompts, readout
from mathray.core.label_tokens import LabelSettings, load_labels, resolve_labels
from mathray.core.steps import step_texts
from mathray.jobs.scoring import Scorer, ScorerConfig
from mathray.jobs.training import data, objectives
from mathray.jobs.training.config import TrainJobConfig
from mathray.jobs.training.worker import run_local

REPO = Path(__file__).resolve().parents[2]


def test_label_strings_split_and_resolve(qwen_vocab_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(qwen_vocab_model)
    assert len(tok.encode(" incorrect", add_special_tokens=False)) > 1
    assert len(tok.encode(" ки", add_special_tokens=False)) > 1
    sub = resolve_labels(tok)
    correct, incorrect = tok.encode(" correct"), tok.encode(" incorrect")
    n = len(sub.verifier_suffix)          # both start with the same space token here: read after it
    assert correct[:n] == incorrect[:n] == list(sub.verifier_suffix) and n >= 1
    assert sub.verifier == (correct[n], incorrect[n]) and correct[n] != incorrect[n]
    assert sub.step_tag[:len(tok.encode(" ки"))] == tuple(tok.encode(" ки")) and not sub.added_tokens
    model = AutoModelForCausalLM.from_pretrained(qwen_vocab_model)
    added = resolve_labels(tok, LabelSettings(multi_token="add_tokens"), model)
    assert " incorrect" in added.added_tokens and " ки" in added.added_tokens
    assert len(tok.encode(" incorrect", add_special_tokens=False)) == 1 and not added.verifier_suffix
    assert added.step_tag[0] == tok.convert_tokens_to_ids(" ки")
    assert added.embedding_rows is None          # the new ids fit in Qwen's padded embedding rows
    assert model.get_input_embeddings().weight.shape[0] == 151_936


def train_cfg(task, model, train_data, out, **kw):
    return TrainJobConfig.model_validate({
        "task": task, "model": model, "output": str(out), "report_to": ["none"],
        "data": {"samples": [train_data["samples"]], "step_labels": [train_data["step_labels"]], "max_len": 256},
        "optim": {"lr": 1e-2, "steps": 3, "batch_size": 4, "warmup_ratio": 0.0}, **kw})


@pytest.mark.parametrize("multi_token", ["subtoken", "add_tokens"])
def test_trained_scores_equal_scored_scores(qwen_vocab_model, train_data, tmp_path, multi_token):
    """Train a verifier and a PRM a few steps, then the training readout (objectives, on the export) and the
    scoring job's scores agree to 1e-4 on the same samples."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from helpers.score_data import sample_rows

    labels = {"multi_token": multi_token}
    run_local(train_cfg("verifier", qwen_vocab_model, train_data, tmp_path / "v", labels=labels))
    run_local(train_cfg("prm", qwen_vocab_model, train_data, tmp_path / "p", labels=labels))
    v_dir, p_dir = str(tmp_path / "v" / "final"), str(tmp_path / "p" / "final")
    rows = sample_rows(2, 3, seed=5)
    table = pa.Table.from_pylist([dict(r, _src_shard="s", _src_row=i) for i, r in enumerate(rows)])
    scored = sorted(Scorer(ScorerConfig(verifier=v_dir, prm=p_dir, batch_size=4).model_dump(), "cpu")(table)
                    .to_pylist(), key=lambda r: r["_src_row"])
    for model_dir, kind in ((v_dir, "verifier"), (p_dir, "prm")):
        tok = AutoTokenizer.from_pretrained(model_dir)
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
        ids = load_labels(model_dir, tok)
        assert ids.settings["multi_token"] == multi_token
        if multi_token == "add_tokens":
            assert ids.added_tokens and not ids.verifier_suffix
        with torch.no_grad():
            for row, got in zip(rows, scored):
                if kind == "verifier":
                    ex = data.verifier_example(tok, row["problem"], row["text"], row["is_correct"], 1024,
                                               ids.verifier_suffix)
                    two_way, _, _ = objectives.verifier_two_way(model, [ex], ids.verifier, tok.pad_token_id, "cpu")
                    assert got["verifier_score"] == pytest.approx(readout.positive_prob(two_way)[0].item(), abs=1e-4)
                else:
                    steps = step_texts(row["text"], "auto")
                    ex = data.prm_example(tok, prompts.plain_prompt(row["problem"]), steps, [1] * len(steps), None, ids.step_tag, 1024)
                    two_way, _ = objectives.step_two_way(model, [ex], ids.prm, tok.pad_token_id, "cpu")
                    assert got["step_scores"] == pytest.approx(readout.positive_prob(two_way).tolist(), abs=1e-4)


def test_readout_equals_full_logits_on_the_real_vocab(qwen_vocab_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from mathray.core.toy import ToyTaskConfig, generate_problems

    tok = AutoTokenizer.from_pretrained(qwen_vocab_model)
    model = AutoModelForCausalLM.from_pretrained(qwen_vocab_model, dtype=torch.float32)
    ids = resolve_labels(tok)
    rows = generate_problems(ToyTaskConfig(seed=1, num_train=3, num_test=0), "train")
    batch = [data.verifier_example(tok, r["problem"], r["reference_solution"], True, 1024) for r in rows]
    fast, _, _ = objectives.verifier_two_way(model, batch, ids.verifier, tok.pad_token_id, "cpu")
    full, _, _ = objectives.verifier_two_way(model, batch, ids.verifier, tok.pad_token_id, "cpu", full=True)
    assert torch.allclose(fast, full, atol=1e-5)
    g_fast = torch.autograd.grad(fast.sum(), model.model.embed_tokens.weight)[0]
    g_full = torch.autograd.grad(full.sum(), model.model.embed_tokens.weight)[0]
    assert torch.allclose(g_fast, g_full, atol=1e-5)


def peak_bytes(model_dir: str, *modes: str) -> list[int]:
    """The probe's peak bytes of a verifier step per mode (each measured in a process of its own)."""
    out = subprocess.run([sys.executable, str(Path(__file__).with_name("peak_memory_probe.py")), model_dir, *modes],
                         capture_output=True, text=True, check=True, cwd=REPO)
    by_mode = {mode: int(n) for n, mode in re.findall(r"^PEAK_BYTES=(\d+) MODE=(\w+)", out.stdout, re.M)}
    return [by_mode[mode] for mode in modes]


@pytest.mark.slow
def test_verifier_step_peak_memory_is_a_fifth_of_full_logits(qwen_vocab_model):
    readout_peak, full_peak = peak_bytes(qwen_vocab_model, "readout", "full")
    print(f"verifier step peak: readout {readout_peak / 2**20:.1f} MiB, full logits {full_peak / 2**20:.1f} MiB, "
          f"ratio {readout_peak / full_peak:.3f}")
    assert full_peak > 200 * 2**20                 # the full logits are really materialised (fp32, 152k vocab)
    assert readout_peak <= full_peak / 5
