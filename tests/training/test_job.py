"""The training job: SSFT and the verifier on 2 Ray Train CPU workers through transformers' Trainer, their loss
going down and their exports complete (on local disk and on S3); the SSFT export loads in vLLM; a restored
LoRA-dropout SSFT run (its workers SIGKILLed from outside, one mid-upload) ends with the weights of an
uninterrupted one (one shared local Ray cluster). The PRM, ORM and sequential objectives train through the same
phases and trainers in this process (``worker.run_local``): what they check is the objective, not Ray Train."""
from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from helpers.train_callbacks import step_log

from mathray.runtime.storage import join, resolve
from mathray.jobs.training.config import TrainJobConfig
from mathray.jobs.training.job import run_training
from mathray.jobs.training.worker import run_local

pytestmark = pytest.mark.slow


def steps_of(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def goes_down(losses: list[float], k: int = 3, by: float = 0.05) -> bool:
    return sum(losses[-k:]) / k < sum(losses[:k]) / k - by


def job(tmp_path: Path, tiny_model: str, train_data: dict, task: str, steps: int = 16, **kw) -> TrainJobConfig:
    """A tiny-model job logging every step to ``<tmp_path>/steps.jsonl`` (``helpers.train_callbacks``)."""
    callbacks = [step_log(tmp_path / "steps.jsonl")]
    return TrainJobConfig.model_validate({
        "task": task, "model": tiny_model, "output": str(tmp_path / "out"), "num_workers": 2,
        "data": {"ssft": [train_data["problems"]], "samples": [train_data["samples"]],
                 "step_labels": [train_data["step_labels"]], "max_len": 256},
        "optim": {"lr": 3e-3, "steps": steps, "batch_size": 8, "warmup_ratio": 0.0,
                  "lr_scheduler": "constant_with_warmup"},
        "checkpoint_every": 8, "log_every": 1, "report_to": ["none"], "callbacks": callbacks, **kw})


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
    from vllm import SamplingParams

    from mathray.core.prompts import plain_prompt
    from mathray.runtime.engine import EngineConfig, build_llm

    llm = build_llm(EngineConfig(model=ssft_run[0].final_model, device="cpu", enforce_eager=True, dtype="float32",
                                 kv_cache_memory_bytes=256 * 2**20, max_model_len=256), "cpu")
    out = llm.generate([plain_prompt("Compute 2 + 3 * 4.")], SamplingParams(max_tokens=24, temperature=0.8, seed=0))
    assert len(out[0].outputs[0].token_ids) > 0
    del llm


def nth_snapshot_write(n: int):
    """A test of requests, true at the first request of the ``n``-th time Ray Train's controller writes its
    list of checkpoints (after each checkpoint; its reads do not count): a PUT, or the POST that starts a
    multipart upload, not the upload's later parts."""
    starts = []

    def is_it(request: bytes) -> bool:
        line = request.split(b"\r\n", 1)[0]
        if b"checkpoint_manager_snapshot.json" in line and (
                line.startswith(b"PUT ") and b"uploadId=" not in line
                or line.startswith(b"POST ") and b"?uploads" in line):
            starts.append(line)
            return len(starts) == n
        return False
    return is_it


def test_verifier_xent_on_s3_storage_with_eval_metrics_through_outages_at_the_start_and_a_checkpoint(
        ray_cluster, tmp_path, tiny_model, train_data, s3_bucket, s3_moto, monkeypatch):
    """S3 is down through the run's first fit (Ray Train's controller checks the storage as it starts, without
    retries), then goes down for 4 s (longer than the AWS SDK's own retries) as the controller records the
    second checkpoint, which Ray Train treats as fatal: the run waits each outage out and resumes from the
    first checkpoint."""
    import mathray.jobs.training.job as job_module

    fits, build, exists = [], job_module.build_trainer, job_module.exists
    backstop = threading.Timer(90.0, s3_moto.start)   # ends the outage should the first fit not fail

    def build_during_outage(*args):
        if not fits:
            s3_moto.stop()
            backstop.start()
        elif len(fits) == 1:
            s3_moto.outage_at_request(nth_snapshot_write(2), down_s=4.0)
        fits.append(args)
        return build(*args)

    def back_soon(uri):   # the job waits for the storage after a failed fit: the first outage ends 2 s later
        if len(fits) == 1:
            threading.Timer(2.0, s3_moto.start).start()
        return exists(uri)

    monkeypatch.setattr(job_module, "build_trainer", build_during_outage)
    monkeypatch.setattr(job_module, "exists", back_soon)
    # one worker: the outages hit the controller's storage writes, whatever the group's size
    cfg = job(tmp_path, tiny_model, train_data, "verifier", steps=20, output=f"{s3_bucket}/verifier",
              storage=f"{s3_bucket}/ray_train", num_workers=1)
    cfg.data.eval_fraction = 0.3
    try:
        result = run_training(cfg)
    finally:   # a backstop left running would restart S3 in the middle of a later test's outage
        backstop.cancel()
        s3_moto.trigger = None
        s3_moto.start()
    assert len(fits) == 3, "the first fit should have failed while S3 was down, the second at its checkpoint"
    log = steps_of(tmp_path / "steps.jsonl")
    steps = [s["step"] for s in log]
    resumed = next(i for i in range(1, len(steps)) if steps[i] <= steps[i - 1])
    # the steps run on while the controller records the checkpoint of step 16; then from the recorded one
    assert steps[:resumed] == list(range(1, resumed + 1)) and resumed >= 16, steps
    assert steps[resumed:] == list(range(9, 21)), steps
    assert goes_down([s["loss"] for s in log])
    fs, path = resolve(join(result.final_model, "config.json"))
    assert fs.get_file_info(path).size > 0
    fs, path = resolve(f"{s3_bucket}/ray_train/{result.run_name}")
    assert fs.get_file_info(path).type.name == "Directory"     # Ray Train checkpoints went to S3
    assert 0.0 <= result.metrics["eval_accuracy"] <= 1.0 and "eval_auroc" in result.metrics


@pytest.mark.parametrize("task", ["prm", "orm"])
def test_prm_and_orm_hard_targets(tmp_path, tiny_model, train_data, task):
    # in one process: 16 examples per step, as 2 workers x 8
    cfg = job(tmp_path, tiny_model, train_data, task, num_workers=1, optim={"lr": 1e-2, "steps": 20, "batch_size": 16})
    run_local(cfg)
    log = steps_of(tmp_path / "steps.jsonl")
    assert [s["phase"] for s in log] == [{"prm": "prm_hard", "orm": "orm"}[task]] * 20
    assert goes_down([s["loss"] for s in log])


def test_sequential_margin_three_stages(tmp_path, tiny_model, train_data):
    cfg = job(tmp_path, tiny_model, train_data, "sequential", num_workers=1,
              verifier={"loss": "margin"}, sequential={"stage_steps": [4, 10, 10], "margin": 1.0, "alpha": 1.0})
    cfg.optim.batch_size = 16            # in one process: 16 examples per step, as 2 workers x 8
    run_local(cfg)
    log = steps_of(tmp_path / "steps.jsonl")
    assert [s["phase"] for s in log] == ["ssft"] * 4 + ["verifier_margin"] * 10 + ["contrastive"] * 10
    assert [s["global_step"] for s in log] == list(range(1, 25))
    assert goes_down([s["loss"] for s in log if s["phase"] == "verifier_margin"])
    assert goes_down([s["loss"] for s in log if s["phase"] == "contrastive"])
    for name in ("stage1-ssft", "stage2-verifier", "final"):
        assert (tmp_path / "out" / name / "_COMPLETE.json").is_file()


def lora_job(tmp: Path, tiny_model: str, train_data: dict, **kw) -> TrainJobConfig:
    """A LoRA-dropout SSFT run (TRL's SFTTrainer; the chaos pipeline's worker kills land in the Trainer-based
    verifier and PRM): dropout draws from the RNG, so equal weights after a resume need the per-rank RNG states
    restored with the checkpoint (and the data position, optimizer and scheduler)."""
    tmp.mkdir(parents=True, exist_ok=True)
    return job(tmp, tiny_model, train_data, "ssft", steps=8, checkpoint_every=3,
               lora={"r": 4, "alpha": 8, "dropout": 0.3}, **{"max_failures": 1, **kw})


def final_weights(cfg: TrainJobConfig) -> dict:
    from safetensors.torch import load_file

    return load_file(str(Path(cfg.output) / "final" / "model.safetensors"))


@pytest.fixture(scope="module")
def lora_reference(ray_cluster, tmp_path_factory, tiny_model, train_data):
    """The uninterrupted LoRA-dropout run every resumed run must equal."""
    tmp = tmp_path_factory.mktemp("lora_reference")
    cfg = lora_job(tmp, tiny_model, train_data)
    run_training(cfg)
    return final_weights(cfg), steps_of(tmp / "steps.jsonl")


def assert_equal_training(weights: dict, log: list[dict], reference) -> None:
    """Every step's loss (its last logging: a restored run logs the redone steps again) and the final weights
    equal the uninterrupted run's."""
    ref_weights, ref_log = reference
    by_step = {s["step"]: s["loss"] for s in log}
    assert [by_step[s] for s in range(1, 9)] == pytest.approx([s["loss"] for s in ref_log], rel=1e-5)
    assert weights.keys() == ref_weights.keys()
    for k in weights:
        assert (weights[k] - ref_weights[k]).abs().max().item() < 1e-6, k


@pytest.mark.faults
def test_workers_sigkilled_from_outside_rank1_then_rank0_mid_s3_upload_resume_exactly(
        ray_cluster, tmp_path, tiny_model, train_data, s3_bucket, lora_reference, monkeypatch):
    """Checkpoints go to S3. Rank 1 is SIGKILLed from outside once the step-3 checkpoint is registered; the
    restored group redoes steps 4-6 and rank 0 is SIGKILLed in the middle of uploading the step-6 checkpoint
    (some files in S3, the rest not): the next group restores from step 3 again, never from the partial
    upload, and the run ends with the uninterrupted run's losses and weights."""
    import os
    import signal
    import threading
    import time

    import psutil
    import pyarrow.fs as pafs
    from helpers.observed_storage import ObservedFS

    from mathray.jobs.training import job as job_module

    watch = tmp_path / "watch"
    watch.mkdir()
    real_resolve = job_module.resolve

    def observed(uri):   # Ray Train's storage filesystem, watched (tests/helpers/observed_storage.py)
        fs, path = real_resolve(uri)
        return (pafs.PyFileSystem(ObservedFS(fs, str(watch))) if uri.startswith(s3_bucket) else fs), path

    monkeypatch.setattr(job_module, "resolve", observed)
    # two failures are caused here; one spare: on a loaded 2-core machine a restarted group's health check
    # was seen to fail once more (the run's rows and weights are still checked exactly below)
    cfg = lora_job(tmp_path, tiny_model, train_data, storage=f"{s3_bucket}/ray_train", max_failures=3)
    log_file, events = tmp_path / "steps.jsonl", {}

    def wait_for(check, what: str, timeout: float = 600):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if (value := check()):
                return value
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}")

    def killer():
        try:
            logged = wait_for(lambda: log_file.exists() and [s for s in steps_of(log_file) if s["step"] >= 5],
                              "rank 0 to log step 5")
            rank0 = logged[0]["pid"]
            rank1 = int((watch / "rank1.pid").read_text())
            os.kill(rank1, signal.SIGKILL)
            events["rank1"] = rank1
            wait_for(lambda: not psutil.pid_exists(rank0), "the failed group's rank 0 to be stopped")
            (watch / "hold-next-upload").touch()
            pid, path = wait_for(lambda: (watch / "uploading.pid").exists() and
                                 (watch / "uploading.pid").read_text().split(" ", 1), "rank 0's held upload")
            os.kill(int(pid), signal.SIGKILL)
            events["rank0"], events["upload"] = int(pid), path
        except BaseException as e:  # noqa: BLE001 - reported by the test thread
            events["error"] = e

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    run_training(cfg)
    thread.join(timeout=60)
    assert "error" not in events, events["error"]
    assert {"rank0", "rank1"} <= events.keys() and "checkpoint_" in events["upload"]
    log = steps_of(log_file)
    groups = list(dict.fromkeys(s["pid"] for s in log))              # rank 0 of each worker group, in order
    assert len(groups) >= 3 and groups[1] == events["rank0"]
    assert [s["step"] for s in log if s["pid"] == groups[1]][0] == 4  # restored from the step-3 checkpoint
    assert [s["step"] for s in log if s["pid"] == groups[2]][0] == 4  # again: the partial upload was not used
    assert_equal_training(final_weights(cfg), log, lora_reference)
