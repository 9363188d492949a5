"""Every task trains the tiny model with 2 Ray Train CPU workers and its loss goes down; the SSFT export
loads in vLLM; a killed worker is restored from the last checkpoint (one shared local Ray cluster)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from mathray.runtime.storage import join, resolve
from mathray.jobs.training.config import TrainJobConfig
from mathray.jobs.training.job import run_training

pytestmark = pytest.mark.slow


def steps_of(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def goes_down(losses: list[float], k: int = 3, by: float = 0.05) -> bool:
    return sum(losses[-k:]) / k < sum(losses[:k]) / k - by


def job(tmp_path: Path, tiny_model: str, train_data: dict, task: str, steps: int = 16, **kw) -> TrainJobConfig:
    return TrainJobConfig.model_validate({
        "task": task, "model": tiny_model, "output": str(tmp_path / "out"), "num_workers": 2,
        "data": {"ssft": [train_data["problems"]], "samples": [train_data["samples"]],
                 "step_labels": [train_data["step_labels"]], "max_len": 256},
        "optim": {"lr": 3e-3, "steps": steps, "batch_size": 8}, "checkpoint_every": 8,
        "step_log": str(tmp_path / "steps.jsonl"), **kw})


@pytest.fixture(scope="module")
def ssft_run(ray_cluster, tmp_path_factory, tiny_model, train_data):
    tmp = tmp_path_factory.mktemp("ssft")
    cfg = job(tmp, tiny_model, train_data, "ssft", optim={"lr": 3e-3, "steps": 12, "batch_size": 4})
    return run_training(cfg), steps_of(tmp / "steps.jsonl")


def test_ssft_two_workers_loss_goes_down_and_exports_hf(ssft_run):
    result, log = ssft_run
    assert [s["step"] for s in log] == list(range(1, 13))
    assert goes_down([s["loss"] for s in log], by=0.5)
    final = Path(result.final_model)
    assert {"config.json", "model.safetensors", "tokenizer.json", "mathray_export.json", "_COMPLETE.json"} <= {
        p.name for p in final.iterdir()}
    info = json.loads((final / "mathray_export.json").read_text())
    assert info["config"]["task"] == "ssft" and info["config_hash"] and info["code_version"]
    assert result.checkpoint and result.metrics["step"] == 12


def test_ssft_export_loads_in_vllm_and_samples(ssft_run):
    from vllm import LLM, SamplingParams

    from mathray.core.prompts import plain_prompt

    llm = LLM(model=ssft_run[0].final_model, enforce_eager=True, kv_cache_memory_bytes=256 * 2**20,
              max_model_len=256, dtype="float32")
    out = llm.generate([plain_prompt("Compute 2 + 3 * 4.")], SamplingParams(max_tokens=24, temperature=0.8, seed=0))
    assert len(out[0].outputs[0].token_ids) > 0
    del llm


def test_verifier_xent_on_s3_storage(ray_cluster, tmp_path, tiny_model, train_data, s3_bucket):
    cfg = job(tmp_path, tiny_model, train_data, "verifier", steps=20,
              output=f"{s3_bucket}/verifier", storage=f"{s3_bucket}/ray_train")
    result = run_training(cfg)
    assert goes_down([s["loss"] for s in steps_of(tmp_path / "steps.jsonl")])
    fs, path = resolve(join(result.final_model, "config.json"))
    assert fs.get_file_info(path).size > 0
    fs, path = resolve(f"{s3_bucket}/ray_train/{result.run_name}")
    assert fs.get_file_info(path).type.name == "Directory"     # Ray Train checkpoints went to S3


def test_prm_hard_targets(ray_cluster, tmp_path, tiny_model, train_data):
    cfg = job(tmp_path, tiny_model, train_data, "prm", steps=20, optim={"lr": 1e-2, "steps": 20, "batch_size": 8})
    run_training(cfg)
    assert goes_down([s["loss"] for s in steps_of(tmp_path / "steps.jsonl")])


def test_sequential_margin_three_stages(ray_cluster, tmp_path, tiny_model, train_data):
    cfg = job(tmp_path, tiny_model, train_data, "sequential",
              verifier={"loss": "margin"}, sequential={"stage_steps": [4, 10, 10], "margin": 1.0, "alpha": 1.0})
    run_training(cfg)
    log = steps_of(tmp_path / "steps.jsonl")
    assert [s["phase"] for s in log] == ["ssft"] * 4 + ["verifier_margin"] * 10 + ["contrastive"] * 10
    assert goes_down([s["loss"] for s in log if s["phase"] == "verifier_margin"])
    assert goes_down([s["loss"] for s in log if s["phase"] == "contrastive"])
    for name in ("stage1-ssft", "stage2-verifier", "final"):
        assert (tmp_path / "out" / name / "model.safetensors").is_file()


def test_killed_worker_restores_from_last_checkpoint(ray_cluster, tmp_path, tiny_model, train_data):
    every, crash = 3, 5
    # log_every=1: Ray Train V2 registers a reported checkpoint when its controller polls the worker (every
    # ~2 s; the worker's report queue holds one report), so the next report waits until the checkpoint is
    # registered; a crash within milliseconds of an unpolled checkpoint report would lose that checkpoint.
    cfg = job(tmp_path, tiny_model, train_data, "ssft", steps=8, checkpoint_every=every, max_failures=1, log_every=1,
              fault={"exit_after_step": crash, "marker": str(tmp_path / "crashed")})
    result = run_training(cfg)
    log = steps_of(tmp_path / "steps.jsonl")
    first_pid = log[0]["pid"]
    before = [s["step"] for s in log if s["pid"] == first_pid]
    after = [s["step"] for s in log if s["pid"] != first_pid]
    assert (tmp_path / "crashed").exists() and before == list(range(1, crash + 1))
    assert after == list(range(after[0], 9))                   # finished every remaining step, in order
    assert after[0] == (crash // every) * every + 1              # resumed right after the last checkpoint
    assert crash - (after[0] - 1) <= every                       # steps lost <= one checkpoint interval
    assert result.metrics["step"] == 8 and Path(result.final_model, "model.safetensors").is_file()
