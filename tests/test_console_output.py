"""What a person watching a run sees: the pipeline's stage table shows progress inside running stages (rows
committed of a data stage, the step of a training run), and Ray Train workers print plainly. (That a real
training job prints each Trainer log once, and its progress record: ``tests/test_ray_cluster.py``, in the job
that re-runs the PRM.)"""
from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from mathray.jobs.training.config import TrainJobConfig
from mathray.jobs.training.progress import PROGRESS_FILE, progress_text, read_progress, write_progress
from mathray.pipeline import Node, NodeState, live_progress, stage_table
from mathray.runtime.stage import StageSummary


def test_running_stages_show_live_progress_finished_ones_their_result():
    states = {"ssft": NodeState(state="done", detail="1200 steps", started=0.0, ended=95.0),
              "sample_test": NodeState(state="running", started=time.time() - 12),
              "prm": NodeState(state="running", started=time.time()),
              "evaluate": NodeState()}
    live = {"sample_test": "1200 rows (150/300 input rows)", "evaluate": "ignored: not running"}
    lines = stage_table(states, live)
    assert lines[0].split()[1:] == ["stage", "state", "progress", "elapsed"]
    cells = {line.split()[1]: line[len("[pipeline] "):] for line in lines[1:]}
    assert "1200 steps" in cells["ssft"] and "95s" in cells["ssft"]
    assert "1200 rows (150/300 input rows)" in cells["sample_test"] and "12s" in cells["sample_test"]
    assert cells["prm"].split()[2] == "-"            # running, no progress known yet
    assert cells["evaluate"].split()[1:] == ["waiting", "-", "-"]
    col = lines[0].index("progress")                 # one column: every row's progress starts under its header
    assert all(line[col - 2:col] == "  " for line in lines[1:])


def test_stage_summary_progress_counts_earlier_runs():
    s = StageSummary(job="sample", output_uri="x", input_rows=300, input_rows_done=100, rows_before=800)
    s.rows_written = 400
    assert s.progress() == "1200 rows (100/300 input rows)"


def test_training_progress_record_and_text(tmp_path):
    out = str(tmp_path / "train" / "verifier_xent")
    assert read_progress(out) is None and progress_text(None, 1800) == "starting, 1800 steps"
    t0 = time.time()
    write_progress(out, 40, 1800, "verifier")
    record = read_progress(out, since=t0 - 1)
    assert record["step"] == 40 and record["total"] == 1800 and progress_text(record, 1800) == "step 40/1800 (verifier)"
    assert (record["host"], record["pid"]) == (socket.gethostname(), os.getpid())   # the writing process
    assert read_progress(out, since=time.time() + 60) is None   # written before the run being watched started
    (Path(out) / PROGRESS_FILE).write_text("{half")
    assert read_progress(out) is None


def test_live_progress_of_a_training_node_reads_its_record(tmp_path):
    cfg = TrainJobConfig(task="sequential", output=str(tmp_path / "seq"))
    total = sum(cfg.sequential.stage_steps)
    node = Node("sequential", "train", [], cfg, cfg.output)
    started = time.time()
    assert live_progress(node, started) == f"starting, {total} steps"
    write_progress(cfg.output, 7, total, "contrastive")
    assert live_progress(node, started - 1) == f"step 7/{total} (contrastive)"
    assert live_progress(Node("evaluate", "evaluate", [], None, str(tmp_path)), started) is None


def test_progress_callback_writes_on_rank_zero_only(tmp_path):
    from transformers import TrainerState

    from mathray.jobs.training.callbacks import ProgressCallback

    out = str(tmp_path / "prm")
    cb = ProgressCallback(out, "prm", offset=100, total=300)
    cb.on_log(None, TrainerState(global_step=20, is_world_process_zero=False), None, logs={"loss": 1.0})
    assert read_progress(out) is None
    cb.on_log(None, TrainerState(global_step=20, is_world_process_zero=True), None, logs={"loss": 1.0})
    assert read_progress(out)["step"] == 120 and read_progress(out)["total"] == 300


def test_training_workers_print_plainly_unless_the_user_says_otherwise(monkeypatch):
    from mathray.jobs.training.job import PRINT_PATCH_VAR, worker_env

    monkeypatch.delenv(PRINT_PATCH_VAR, raising=False)
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    env = worker_env()
    assert env[PRINT_PATCH_VAR] == "0" and env["AWS_REGION"] == "eu-west-1"
    monkeypatch.setenv(PRINT_PATCH_VAR, "1")
    assert worker_env()[PRINT_PATCH_VAR] == "1"
