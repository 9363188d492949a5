"""The pipeline driver SIGKILLed in the middle of a stage, then re-run: finished stages are skipped, the
interrupted sampling stage resumes (its committed shards untouched), and its rows equal an uninterrupted run
of the same stage. The pipeline is limited to the stages up to ``sample_train`` (tiny SSFT: 2 steps)."""
from __future__ import annotations

import pytest
from helpers.faults import assert_same_rows, driver_env, finish, kill_once_committed, start, write_config

from conftest import REPO
from mathray.config import load_config
from mathray.pipeline import PipelineConfig, build_graph
from mathray.runtime.storage import ShardStore

pytestmark = [pytest.mark.slow, pytest.mark.cluster, pytest.mark.faults]
LABEL_SHARDS = 4
SMALL = ["data.train.toy.num_train=40", "data.label.toy.num_train=8", f"data.label.shard_rows={8 // LABEL_SHARDS}",
         "ssft.num_workers=1", "ssft.optim.steps=2", "ssft.optim.batch_size=4", "ssft.checkpoint_every=2",
         "ssft.report_to=[none]", "sample_train.sampling.n=2", "sample_train.sampling.max_tokens=32",
         "sample_train.engine.batch_size=1", "progress_every_s=5"]


def test_pipeline_driver_killed_mid_stage_then_rerun_is_exact(ray_cluster, tmp_path):
    from mathray.jobs.sampling import run_sampling

    cfg = load_config(PipelineConfig, REPO / "rayjobs/configs/demo.yaml", [f"root={tmp_path / 'run'}", *SMALL])
    cfg_file = write_config(cfg, tmp_path / "pipeline.yaml")
    node = next(n for n in build_graph(cfg) if n.name == "sample_train")
    store = ShardStore(node.output)
    args = ["tests/helpers/pausing_pipeline.py", "--only", "sample_train", "--config", str(cfg_file)]
    at_kill = kill_once_committed(start(args, driver_env(ray_cluster, MATHRAY_TEST_PAUSE_S="2")), store,
                                  LABEL_SHARDS, timeout=900)
    assert 1 <= at_kill < LABEL_SHARDS, f"the kill did not land mid-stage ({at_kill} shards committed)"
    before = {n: c.sha256 for n, c in store.committed().items()}
    log = finish(start(args, driver_env(ray_cluster, MATHRAY_TEST_PAUSE_S="0")), timeout=900)
    for stage in ("base_model", "problems_train", "problems_label", "ssft"):
        assert f"[pipeline] {stage}: skipped" in log, log[-3000:]
    assert "[pipeline] sample_train: running" in log and "(config or inputs changed" not in log
    assert f"{len(before)} already committed, {LABEL_SHARDS - len(before)} committed now" in log
    assert all(store.committed()[n].sha256 == sha for n, sha in before.items())
    reference = str(tmp_path / "reference")
    run_sampling(node.cfg.model_copy(update={"output": reference}))
    assert_same_rows(node.output, reference, ("problem_id", "sample_id"))
