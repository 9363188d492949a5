"""Every task trains the tiny model with 2 Ray Train CPU workers through transformers' Trainer and its loss
goes down; the SSFT export loads in vLLM; a killed worker is restored from the last checkpoint, and a
restored LoRA-dropout run ends with the weights of an uninterrupted one (one shared local Ray cluster)."""
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
        "optim": {"lr": 3e-3, "steps": steps, "batch_size": 8, "warmup_ratio": 0.0,
                  "lr_scheduler": "constant_with_warmup"},
        "checkpoint_every": 8, "log_every": 1, "report_to": ["none"], "step_log": str(tmp_path / "steps.jsonl"),
        **kw})


@pytest.fixture(scope="module")
def ssft_run(ray_cluster, tmp_path_factory, tiny_model, train_data):
    tmp = tmp_path_factory.mktemp("ssft")
    cfg = job(tmp, tiny_model, train_data, "ssft", optim={"lr": 3e-3, "steps": 12, "batch_size": 4},
              report_to=["tensorboard"], data={"ssft": [train_data["problems"]], "max_len": 256,
                                               "eval_fraction": 0.25})
    return run_training(cfg), steps_of(tmp / "steps.jsonl"), tmp


def test_ssft_two_workers_loss_goes_down_and_exports_hf(ssft_run):
    result, log, tmp = ssft_run
    assert [s["step"] for s in log] == list(range(1, 13))
    assert goes_down([s["loss"] for s in log], by=0.5)
    final = Path(result.final_model)
    assert {"config.json", "model.safetensors", "tokenizer.json", "mathray_export.json", "mathray_labels.json",
            "_COMPLETE.json"} <= {p.name for p in final.iterdir()}
    info = json.loads((final / "mathray_export.json").read_text())
    assert info["config"]["task"] == "ssft" and info["result_hash"] and info["code_version"]
    assert info["lineage"]["inputs"]["model"].startswith("model@") and info["lineage"]["hash"]
    assert info["metrics"]["eval_loss"] > 0 and info["data_stats"]["eval_examples"] > 0
    assert info["export_dtype"] == "float32"                      # CPU trains in fp32 and exports it
    assert any(Path(tmp, "out", "logs", "final").rglob("events.out.tfevents*"))   # TensorBoard logs uploaded
    assert result.checkpoint and result.metrics["step"] == 12


def test_ssft_export_loads_in_vllm_and_samples(ssft_run):
    from vllm import LLM, SamplingParams

    from mathray.core.prompts import plain_prompt

    llm = LLM(model=ssft_run[0].final_model, enforce_eager=True, kv_cache_memory_bytes=256 * 2**20,
              max_model_len=256, dtype="float32")
    out = llm.generate([plain_prompt("Compute 2 + 3 * 4.")], SamplingParams(max_tokens=24, temperature=0.8, seed=0))
    assert len(out[0].outputs[0].token_ids) > 0
    del llm


def test_verifier_xent_on_s3_storage_with_eval_metrics(ray_cluster, tmp_path, tiny_model, train_data, s3_bucket):
    cfg = job(tmp_path, tiny_model, train_data, "verifier", steps=20, output=f"{s3_bucket}/verifier",
              storage=f"{s3_bucket}/ray_train")
    cfg.data.eval_fraction = 0.3
    result = run_training(cfg)
    assert goes_down([s["loss"] for s in steps_of(tmp_path / "steps.jsonl")])
    fs, path = resolve(join(result.final_model, "config.json"))
    assert fs.get_file_info(path).size > 0
    fs, path = resolve(f"{s3_bucket}/ray_train/{result.run_name}")
    assert fs.get_file_info(path).type.name == "Directory"     # Ray Train checkpoints went to S3
    assert 0.0 <= result.metrics["eval_accuracy"] <= 1.0 and "eval_auroc" in result.metrics


@pytest.mark.parametrize("task", ["prm", "orm"])
def test_prm_and_orm_hard_targets(ray_cluster, tmp_path, tiny_model, train_data, task):
    cfg = job(tmp_path, tiny_model, train_data, task, steps=20, optim={"lr": 1e-2, "steps": 20, "batch_size": 8})
    run_training(cfg)
    log = steps_of(tmp_path / "steps.jsonl")
    assert [s["phase"] for s in log] == [{"prm": "prm_hard", "orm": "orm"}[task]] * 20
    assert goes_down([s["loss"] for s in log])


def test_sequential_margin_three_stages(ray_cluster, tmp_path, tiny_model, train_data):
    cfg = job(tmp_path, tiny_model, train_data, "sequential",
              verifier={"loss": "margin"}, sequential={"stage_steps": [4, 10, 10], "margin": 1.0, "alpha": 1.0})
    run_training(cfg)
    log = steps_of(tmp_path / "steps.jsonl")
    assert [s["phase"] for s in log] == ["ssft"] * 4 + ["verifier_margin"] * 10 + ["contrastive"] * 10
    assert [s["global_step"] for s in log] == list(range(1, 25))
    assert goes_down([s["loss"] for s in log if s["phase"] == "verifier_margin"])
    assert goes_down([s["loss"] for s in log if s["phase"] == "contrastive"])
    for name in ("stage1-ssft", "stage2-verifier", "final"):
        assert (tmp_path / "out" / name / "_COMPLETE.json").is_file()


def test_killed_worker_restores_from_last_checkpoint(ray_cluster, tmp_path, tiny_model, train_data):
    every, crash = 3, 5
    cfg = job(tmp_path, tiny_model, train_data, "ssft", steps=8, checkpoint_every=every, max_failures=1,
              fault={"exit_after_step": crash, "marker": str(tmp_path / "crashed")})
    result = run_training(cfg)
    log = steps_of(tmp_path / "steps.jsonl")
    first_pid = log[0]["pid"]
    before = [s["step"] for s in log if s["pid"] == first_pid]
    after = [s["step"] for s in log if s["pid"] != first_pid]
    assert (tmp_path / "crashed").exists() and before == list(range(1, crash))   # step 5 died before its log
    assert after == list(range(after[0], 9))                   # finished every remaining step, in order
    assert after[0] == (crash // every) * every + 1              # resumed right after the last checkpoint
    assert result.metrics["step"] == 8 and Path(result.final_model, "model.safetensors").is_file()


def test_resumed_lora_dropout_run_equals_uninterrupted(ray_cluster, tmp_path, tiny_model, train_data):
    """Dropout draws from the RNG: equal final weights need the per-rank RNG states restored with the
    checkpoint, and the data position, optimizer and scheduler too."""
    from safetensors.torch import load_file

    def run(sub: str, **kw):
        cfg = job(tmp_path / sub, tiny_model, train_data, "verifier", steps=8, checkpoint_every=3,
                  max_failures=1, lora={"r": 4, "alpha": 8, "dropout": 0.3}, **kw)
        run_training(cfg)
        return load_file(str(tmp_path / sub / "out" / "final" / "model.safetensors")), steps_of(tmp_path / sub / "steps.jsonl")

    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    plain, plain_log = run("a")
    resumed, resumed_log = run("b", fault={"exit_after_step": 5, "marker": str(tmp_path / "crashed")})
    assert (tmp_path / "crashed").exists() and len({s["pid"] for s in resumed_log}) == 2
    by_step = {s["step"]: s["loss"] for s in resumed_log}
    assert [by_step[s] for s in range(1, 9)] == pytest.approx([s["loss"] for s in plain_log], rel=1e-5)
    assert plain.keys() == resumed.keys()
    for k in plain:
        assert (plain[k] - resumed[k]).abs().max().item() < 1e-6, k
