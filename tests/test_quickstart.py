"""scripts/quickstart.sh as a user runs it, with its settings pointed at the tiny model on CPU and at a folder in
the hub's layout holding the MATH-500 fixture (read through hf:// with the hub client offline): ingest of the
split's first problems, N samples and the greedy pass in one engine pass through real vLLM, then the report with
the rows a user reads; then its optional published-PRM steps (their recipes as committed, a tiny model in that
PRM's layout). Its jobs join the session's Ray cluster, as they join a ``ray start`` cluster on the user's
machine (a job that starts its own local Ray: ``test_console_output.py``). The tiny model's answers are noise:
this checks the plumbing, not accuracy."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from test_ingest_hub import hub  # noqa: F401  (fixture: hub-layout folders, the working directory their root)

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "quickstart.sh"
RECIPES = Path(__file__).resolve().parents[1] / "rayjobs" / "configs" / "recipes" / "quickstart"
LIMIT, N = 5, 4
CPU_ENGINE = ("engine.device=cpu engine.enforce_eager=true engine.kv_cache_memory_bytes=268435456 "
              "engine.max_model_len=512 engine.batch_size=8")


def _run(env: dict, cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT)], cwd=cwd, env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.slow
def test_quickstart_on_the_tiny_model(hub, tmp_path, fixture_data, ray_cluster):  # noqa: F811
    from mathray.jobs.tiny_model import build_tiny_model
    from mathray.runtime.storage import ShardStore

    root = tmp_path / "run"
    env = {"MODEL": str(build_tiny_model(tmp_path / "model")), "ROOT": str(root), "N": str(N),
           "MAX_TOKENS": "32", "LIMIT": str(LIMIT), "SOURCE": "hf://HuggingFaceH4/MATH-500?split=test",
           "SAMPLE_SETS": CPU_ENGINE, "PYTHON": sys.executable, "RAY_AUTH_MODE": "disabled",
           "HF_HOME": str(tmp_path / "hf-home"), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "RAY_ADDRESS": ray_cluster.get_runtime_context().gcs_address}
    proc = _run(env, hub, timeout=1500)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    first = [json.loads(line) for line in (fixture_data / "math500/test.jsonl").read_text().splitlines()][:LIMIT]
    ids = sorted(f"math500-{r['unique_id']}" for r in first)
    rows = ShardStore(str(root / "samples")).read_all().to_pylist()
    samples, greedy = [r for r in rows if not r["greedy_pass"]], [r for r in rows if r["greedy_pass"]]
    assert sorted({r["problem_id"] for r in samples}) == ids and len(samples) == LIMIT * N
    assert sorted(r["problem_id"] for r in greedy) == ids and {r["sample_id"] for r in greedy} == {N}
    assert all(r["prompt"].startswith("user: ") and r["prompt"].endswith("\nassistant:") for r in rows)
    assert all(r["num_output_tokens"] <= 32 and r["cumulative_logprob"] is not None for r in rows)

    report = json.loads((root / "report" / "report.json").read_text())
    assert report["num_problems"] == LIMIT and report["pool_size"] == N
    assert report["per_problem"]["problem_ids"] == ids
    rows = {r["selector"]: r for r in report["table"]}
    assert {"Pass@1 (greedy)", "Pass@1 (sample avg)", "Maj1@N", "Pass@N (oracle)", "LogProb BoN"} <= set(rows)
    assert rows["Pass@1 (greedy)"]["accuracy"] == sum(bool(r["is_correct"]) for r in greedy) / LIMIT
    markdown = (root / "report" / "report.md").read_text()
    assert "| LogProb BoN |" in markdown and "| Maj1@N |" in markdown
    assert proc.stdout.rstrip().splitlines()[-1].startswith(f"Report: {root}/report/report.md")
    _published_prm_steps(root, tmp_path / "prm")


def _published_prm_steps(root: Path, prm_dir: Path) -> None:
    """The quick start's optional steps 4-5 (recipes/quickstart/score_prm.yaml and evaluate_prm.yaml) as
    committed on the samples above, the published PRM replaced by a tiny random model in its layout, on CPU:
    every sample scored step by step in that convention, and the report's PRM rows beside majority voting."""
    from helpers.quarantine import read_all_quarantine
    from helpers.tiny_reward_models import build_separator_prm

    from mathray.config import load_config
    from mathray.jobs.evaluation import EvaluateConfig, run_evaluate
    from mathray.jobs.scoring import ScoreConfig, run_score
    from mathray.runtime.storage import ShardStore

    prm = build_separator_prm(prm_dir, seed=4)
    score = load_config(ScoreConfig, RECIPES / "score_prm.yaml", [
        f"input={root}/samples", f"output={root}/scores_prm", f"scorer.prm={prm}", "scorer.device=cpu",
        "scorer.dtype=float32", "scorer.max_length=512"])
    assert (score.scorer.prm_convention, score.scorer.step_format) == ("qwen-math-prm", "paragraph")
    run_score(score)
    store = ShardStore(f"{root}/scores_prm")
    scores = store.read_all().to_pylist()
    # the tiny model's 512 positions: a solution whose problem and steps do not fit is quarantined, not cut
    refused = (q.to_pylist() if (q := read_all_quarantine(store)) is not None else [])
    assert len(scores) + len(refused) == LIMIT * (N + 1) and len(scores) >= LIMIT * N // 2, refused
    assert all("> max_length 512" in r["reason"] for r in refused), refused
    assert all(r["step_scores"] and r["verifier_score"] is None for r in scores)
    report = run_evaluate(load_config(EvaluateConfig, RECIPES / "evaluate_prm.yaml", [
        f"samples={root}/samples", f"scores={root}/scores_prm", f"output={root}/report_prm"])).report
    rows = {r["selector"] for r in report["table"]}
    assert {"PRM BoN (product)", "PRM BoN (min)", "PRM vote (min)", "Maj1@N", "LogProb BoN"} <= rows, rows


@pytest.mark.parametrize("env, message", [
    ({"LIMIT": "twenty"}, "LIMIT must be a positive whole number"),
    ({"LIMIT": "20", "SOURCE": "data/math500.jsonl"}, "LIMIT takes the first problems of an hf:// split"),
    ({"LIMIT": "20", "SOURCE": "hf://HuggingFaceH4/MATH-500?split=test[:5]"}, "LIMIT takes the first problems"),
])
def test_a_limit_the_script_cannot_apply_is_refused_before_any_job(env, message, tmp_path):
    proc = _run({**env, "ROOT": str(tmp_path / "run"), "PYTHON": "false"}, tmp_path, timeout=30)
    assert proc.returncode == 2 and message in proc.stderr
    assert not (tmp_path / "run").exists()
