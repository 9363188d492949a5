"""The train configs load, and a config missing its model or data says what is missing."""
import os
from pathlib import Path

import pytest

from mathray.config import load_config
from mathray.jobs.training.config import TrainJobConfig

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "rayjobs" / "configs").glob("train_*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_load_and_are_runnable(path):
    cfg = load_config(TrainJobConfig, path)
    assert path.stem == f"train_{cfg.task}"
    cfg.check_runnable()


def test_missing_inputs_are_named():
    with pytest.raises(ValueError, match="model"):
        TrainJobConfig().check_runnable()
    with pytest.raises(ValueError, match="data.samples"):
        TrainJobConfig(task="sequential", model="m", data={"ssft": ["x"]}).check_runnable()
    TrainJobConfig(task="sequential", model="m", data={"ssft": ["x"]}, sequential={"control": True}).check_runnable()


def test_controller_poll_interval_set_for_the_fit_only_and_user_value_wins(monkeypatch):
    from mathray.jobs.training.job import _controller_poll_interval

    key = "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"
    monkeypatch.delenv(key, raising=False)
    with _controller_poll_interval(0.5):
        assert os.environ[key] == "0.5"
    assert key not in os.environ
    monkeypatch.setenv(key, "3")
    with _controller_poll_interval(0.5):
        assert os.environ[key] == "3"
    assert os.environ[key] == "3"


def test_knobs_do_not_change_the_run_identity_and_a_changed_identity_is_refused(tmp_path, tiny_model, train_data):
    from mathray.jobs.training.job import claim_run, record_identity, run_identity, run_name
    from mathray.runtime.lineage import LineageMismatch

    base = TrainJobConfig(task="verifier", model=tiny_model, data={"samples": [train_data["samples"]]})
    knobs = base.model_copy(update={"log_every": 1, "checkpoint_every": 7, "report_to": ["none"],
                                    "controller_poll_s": 2.0, "output": str(tmp_path / "elsewhere")})
    ident = run_identity(base)
    assert run_identity(knobs) == ident and run_name(knobs) == run_name(base)
    assert ident["inputs"]["data.samples[0]"].startswith("shards@") and ident["inputs"]["model"]
    changed = base.model_copy(update={"optim": base.optim.model_copy(update={"lr": 2e-5})})
    assert run_name(changed) != run_name(base)
    uri = str(tmp_path / "run" / "mathray_run.json")
    (tmp_path / "run").mkdir()
    record_identity(uri, ident)
    claim_run(uri, "mine", run_identity(knobs))            # same identity: resumable
    with pytest.raises(LineageMismatch, match=r"config\.optim\.lr: 1e-05 -> 2e-05"):
        claim_run(uri, "mine", run_identity(changed))


def test_null_rows_are_skipped_and_counted(train_data):
    from mathray.jobs.training import data
    from mathray.jobs.training.worker import load_rows

    rows = load_rows([train_data["samples"]])
    rows[0] = dict(rows[0], text=None)
    rows[1] = dict(rows[1], is_correct=None)
    chosen, stats = data.verifier_candidates(rows, per_problem=10, seed=0)
    assert stats["skipped_null_text"] == 1 and stats["skipped_null_is_correct"] == 1
    assert len(chosen) == len(rows) - 2
    steps, stats = data.prm_examples(None, [{"problem": "p", "steps": None, "hard_labels": [1]}], 0, 64)
    assert steps == [] and stats == {"skipped_null_steps": 1}


def test_sharding_on_cpu_is_refused_not_silently_ddp():
    """accelerate switches to FSDP/DeepSpeed only on accelerators (on CPU it would run DDP under an FSDP
    config); the job refuses instead, and the GPU check covers FSDP."""
    cfg = TrainJobConfig(model="m", data={"ssft": ["x"]}, sharding="fsdp")
    with pytest.raises(ValueError, match="accelerate applies FSDP and DeepSpeed only on accelerators"):
        cfg.check_runnable()
    cfg.model_copy(update={"use_gpu": True}).check_runnable()
