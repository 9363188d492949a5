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
    from mathray.jobs.training.lineage import claim_run, record_identity, run_identity, run_name
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


def test_a_section_the_task_does_not_read_leaves_its_identity_alone(tmp_path, tiny_model, train_data):
    from mathray.jobs.training.lineage import run_name

    def name(task, **update):
        cfg = TrainJobConfig(task=task, model=tiny_model, data={"samples": [train_data["samples"]],
                                                                "ssft": [train_data["samples"]]})
        return run_name(cfg.model_copy(update={k: getattr(cfg, k).model_copy(update=v) for k, v in update.items()}))

    assert name("verifier", sequential={"alpha": 0.5}, prm={"targets": "soft"}) == name("verifier")
    assert name("verifier", verifier={"margin": 2.0}) != name("verifier")
    assert name("orm", verifier={"loss": "margin"}, sequential={"mle_data": "pairs"}) == name("orm")
    assert name("prm", prm={"targets": "soft"}) != name("prm")
    assert name("sequential", sequential={"mle_data": "pairs"}) != name("sequential")
    assert name("sequential", verifier={"loss": "margin"}) != name("sequential")


def test_the_ssft_control_is_named_by_its_step_plan_and_the_ssft_data_only(tmp_path, tiny_model, train_data):
    from mathray.jobs.training.lineage import run_name

    def name(samples=None, **sequential):
        cfg = TrainJobConfig(task="sequential", model=tiny_model,
                             data={"samples": [samples or train_data["samples"]], "ssft": [train_data["samples"]]},
                             sequential={"control": True})
        return run_name(cfg.model_copy(update={"sequential": cfg.sequential.model_copy(update=sequential)}))

    assert name(alpha=10.0, margin=2.0, mle_data="pairs", length_normalize=True) == name()
    assert name(samples=str(tmp_path / "missing")) == name()   # the control never reads the samples
    assert name(stage_steps=(0, 100, 400)) != name()
    assert name(stage_lr=(1e-3, 1e-4, 1e-3)) != name()
    assert name(control=False) != name()


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


def test_malformed_rows_are_skipped_with_reasons_not_a_crash(train_data, tiny_model):
    """Nulls inside list fields, labels other than 0/1 and non-text problems: each skipped and counted by
    reason; the valid rows still become examples (the tiny model's real tokenizer)."""
    from transformers import AutoTokenizer

    from mathray.core.prompts import STEP_TAG
    from mathray.jobs.training import data
    from mathray.jobs.training.worker import load_rows

    tok = AutoTokenizer.from_pretrained(tiny_model)
    tag = tok.encode(STEP_TAG, add_special_tokens=False)[0]
    rows = load_rows([train_data["step_labels"]])
    n = [len(r["steps"]) for r in rows[:3]]
    bad = [dict(rows[0], steps=rows[0]["steps"][:-1] + [None]), dict(rows[1], hard_labels=[1] * (n[1] - 1) + [7]),
           dict(rows[2], hard_labels=[None] * n[2])]
    examples, stats = data.prm_examples(tok, bad + rows[3:], tag, 256)
    assert stats == {"skipped_null_in_steps": 1, "skipped_bad_hard_labels": 1, "skipped_null_in_hard_labels": 1}
    assert len(examples) == len(rows) - 3
    pairs, ssft_stats = data.ssft_sources([{"problem": 42, "reference_solution": "x"},
                                           {"problem": "p", "reference_solution": "s"}])
    assert pairs == [("p", "s")] and ssft_stats == {"skipped_null_problem": 1}


def test_sharding_on_cpu_is_refused_not_silently_ddp():
    """accelerate switches to FSDP/DeepSpeed only on accelerators (on CPU it would run DDP under an FSDP
    config); the job refuses instead, and the GPU check covers FSDP."""
    cfg = TrainJobConfig(model="m", data={"ssft": ["x"]}, sharding="fsdp")
    with pytest.raises(ValueError, match="accelerate applies FSDP and DeepSpeed only on accelerators"):
        cfg.check_runnable()
    cfg.model_copy(update={"use_gpu": True}).check_runnable()


def test_every_declared_task_names_real_config_fields():
    """Each task declaration reads DataConfig fields, owns a TrainJobConfig section when it has one, and its
    phases read data fields, label pairs and settings sections that exist, on the default config."""
    from mathray.core.label_tokens import LabelTokens
    from mathray.jobs.training.config import DataConfig
    from mathray.jobs.training.tasks import SECTIONS, TASKS

    assert set(TASKS) == set(TrainJobConfig.model_fields["task"].annotation.__args__)
    for name, objective in TASKS.items():
        cfg = TrainJobConfig(task=name, model="m", data={"ssft": ["x"], "samples": ["x"], "step_labels": ["x"]})
        reads = objective.reads(cfg)
        assert set(reads.data) <= set(DataConfig.model_fields), name
        assert set(reads.sections) <= set(SECTIONS) <= set(TrainJobConfig.model_fields), name
        assert objective.section is None or objective.section in SECTIONS
        for phase in objective.phases(cfg):
            assert phase.spec.reads in reads.data, (name, phase.kind)
            assert phase.spec.label_tokens in LabelTokens.__dataclass_fields__, (name, phase.kind)
            assert phase.spec.settings is None or phase.spec.settings in TrainJobConfig.model_fields
        cfg.check_runnable()
