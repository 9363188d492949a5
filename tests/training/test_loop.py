"""The loop without Ray: phases per task, the deterministic data order, the plain-process run (soft-target
PRM, LoRA export), and resume from a checkpoint continuing the same step stream."""
import json
from pathlib import Path

import pytest

from mathray.jobs.training.config import TrainJobConfig
from mathray.jobs.training.loop import batch_indices, build_phases, run_local


def cfg_for(tiny_model, train_data, tmp_path, **kw):
    return TrainJobConfig.model_validate({
        "model": tiny_model, "output": str(tmp_path / "out"),
        "data": {"ssft": [train_data["problems"]], "samples": [train_data["samples"]],
                 "step_labels": [train_data["step_labels"]], "max_len": 256},
        "optim": {"lr": 3e-3, "steps": 6, "batch_size": 8}, **kw})


def test_batch_indices_cover_each_epoch_and_are_deterministic():
    first = [i for s in range(3) for m in range(2) for i in batch_indices(12, s, m, 2, 2, seed=5)]
    assert sorted(first) == list(range(12))
    assert batch_indices(12, 4, 1, 2, 2, seed=5) == batch_indices(12, 4, 1, 2, 2, seed=5)
    assert batch_indices(12, 0, 0, 12, 1, seed=5) != batch_indices(12, 0, 0, 12, 1, seed=6)


def test_sequential_phases_and_control(tiny_model, train_data, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok, model = AutoTokenizer.from_pretrained(tiny_model), AutoModelForCausalLM.from_pretrained(tiny_model)
    seq = cfg_for(tiny_model, train_data, tmp_path, task="sequential", sequential={"stage_steps": [3, 4, 5]})
    phases, ids = build_phases(seq, tok, model)
    assert [(p.kind, p.steps, p.export) for p in phases] == [
        ("ssft", 3, "stage1-ssft"), ("verifier_xent", 4, "stage2-verifier"), ("contrastive", 5, "final")]
    assert phases[2].stats["problems_without_pair"] == 1 and len(phases[2].examples) == 7
    control = seq.model_copy(update={"sequential": seq.sequential.model_copy(update={"control": True})})
    phases, _ = build_phases(control, tok, model)
    assert [(p.kind, p.steps) for p in phases] == [("ssft", 3), ("ssft", 9)]   # same total steps


def test_local_soft_prm_and_lora_export(tiny_model, train_data, tmp_path):
    from transformers import AutoModelForCausalLM

    losses = []
    cfg = cfg_for(tiny_model, train_data, tmp_path, task="prm", prm={"targets": "soft"},
                  lora={"r": 4, "alpha": 8, "dropout": 0.0}, optim={"lr": 1e-2, "steps": 12, "batch_size": 16})
    run_local(cfg, on_step=lambda s: losses.append(s["loss"]))
    assert sum(losses[-3:]) < sum(losses[:3])
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "out" / "final")   # plain model, LoRA merged
    assert not any("lora" in k for k in merged.state_dict())


def test_local_resume_continues_the_step_stream(tiny_model, train_data, tmp_path):
    """Crash after step 4 (checkpoint at 3), restart: steps 4-6 repeat the uninterrupted run's losses."""
    cfg = cfg_for(tiny_model, train_data, tmp_path, task="ssft", checkpoint_every=3)
    full = []
    run_local(cfg, on_step=lambda s: full.append(s["loss"]))

    def crash_after_4(s):
        if s["step"] == 4:
            raise KeyboardInterrupt
    ckpt = tmp_path / "ckpt"
    with pytest.raises(KeyboardInterrupt):
        run_local(cfg, checkpoint_root=str(ckpt), on_step=crash_after_4)
    assert json.loads(Path(ckpt, "latest", "state.json").read_text()) == {"phase": 0, "step": 3}
    rest = []
    run_local(cfg, checkpoint_root=str(ckpt), on_step=lambda s: rest.append((s["step"], s["loss"])))
    assert [s for s, _ in rest] == [4, 5, 6]
    assert [loss for _, loss in rest] == pytest.approx(full[3:], rel=1e-4)
    assert json.loads(Path(ckpt, "latest", "state.json").read_text()) == {"phase": 1, "step": 0}
