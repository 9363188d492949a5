"""GPU check of the training stack (one GPU, a few minutes): a random-initialised Qwen2.5-0.5B-shaped model
trained with the recipe settings (bf16-mixed, gradient checkpointing, 4 x ~1024-token micro-batches) for a
few dozen steps through ``worker.run_local`` -- the Trainer subclasses the Ray job runs -- then the measured
peak memory and tokens/s next to ``mathray plan``'s estimate for the same settings.

Runs: verifier (readout objective) with DDP settings, the same with FSDP2 FULL_SHARD (a one-process group,
so accelerate applies FSDP: wrapping, mixed precision, sharded checkpoints and the full-state export run;
the losses must equal the DDP run's), and SSFT through TRL's SFTTrainer when trl is installed.
Then the README's quick start (scripts/quickstart.sh) at reduced size: the first 20 MATH-500 problems, N=4,
512 tokens, which prints its report table; it needs vllm and ray (``pip install -e ".[gpu]"``) and the hub
(model and data), or the quick start's MODEL and SOURCE pointing at local copies; its LIMIT, N, MAX_TOKENS
and SAMPLE_SETS, when set, replace the reduced sizes. Last, the published-PRM scorer (Qwen2.5-Math-PRM's
convention on vLLM's pooling runner) on a tiny random model in that layout, against a CPU forward.
Needs torch, transformers, accelerate, peft, pyarrow, pydantic, pyyaml, tokenizers (trl, datasets optional).
    bash scripts/gpu_check.sh        (GPU_CHECK_STEPS=N to change the 30 steps)
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from transformers import TrainerCallback

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
STEPS = int(os.environ.get("GPU_CHECK_STEPS", 30))
# the quick start at reduced size; vLLM takes 0.8 of the GPU: this process's CUDA context stays on it
PRM_TOLERANCE = 1e-2   # GPU matmuls (TF32 where enabled) against the CPU's fp32
QUICKSTART = {"LIMIT": "20", "N": "4", "MAX_TOKENS": "512", "SAMPLE_SETS": "engine.gpu_memory_utilization=0.8"}


def build_model(root: Path) -> str:
    """The tiny model's tokenizer with a random Qwen2.5-0.5B body (vocab 151,936)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from mathray.jobs.tiny_model import build_tiny_model

    tiny = build_tiny_model(root / "tiny")
    spec = json.loads((REPO / "rayjobs/configs/recipes/models/Qwen2.5-0.5B.json").read_text())
    tok = AutoTokenizer.from_pretrained(tiny)
    spec.update(eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, bos_token_id=None)
    config = AutoConfig.for_model(**spec)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    out = root / "qwen2.5-0.5b-random"
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return str(out)


def build_data(root: Path) -> dict:
    """Toy samples whose texts are repeated to ~1000 tokens, as long as the recipes' max_len."""
    import random

    from mathray.core.schemas import PROBLEMS, SAMPLES, to_table
    from mathray.core.toy import ToyTaskConfig, generate_problems, inject_error
    from mathray.runtime.storage import ShardStore

    problems = generate_problems(ToyTaskConfig(seed=0, num_train=64, num_test=0), "train")
    rng, samples = random.Random(0), []
    for p in problems:
        steps = p["reference_solution"].split("\n")
        for sid, (text, ok) in enumerate([(p["reference_solution"], True),
                                          ("\n".join(inject_error(steps, rng.randrange(len(steps) - 1), rng)), False)]):
            samples.append({"problem_id": p["problem_id"], "sample_id": sid, "problem": p["problem"],
                            "reference_answer": p["answer"], "prompt_hash": "gpu", "text": "\n".join([text] * 10),
                            "answer": None, "is_correct": ok, "grade_reason": "x", "num_prompt_tokens": 0,
                            "num_output_tokens": 0, "finish_reason": "stop", "cumulative_logprob": None,
                            "generator": "gpu-check", "sampling_params_hash": "x", "seed": 0})
    long = [dict(p, reference_solution="\n".join([p["reference_solution"]] * 10)) for p in problems]
    uris = {"problems": str(root / "problems"), "samples": str(root / "samples")}
    ShardStore(uris["problems"]).commit_shard("part-00000", to_table(long, PROBLEMS))
    ShardStore(uris["samples"]).commit_shard("part-00000", to_table(samples, SAMPLES))
    return uris


class StepLog(TrainerCallback):
    """The training loss of every logged step, one JSON line each (added through ``TrainJobConfig.callbacks``)."""

    def __init__(self, path: str, phase: str, step_offset: int):
        self.path = path

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs and "loss" in logs:
            with open(self.path, "a") as f:
                f.write(json.dumps({"step": state.global_step, "loss": logs["loss"]}) + "\n")


def run(name: str, cfg, model_config: Path) -> dict:
    import torch

    from mathray.jobs.training.plan import GIB, plan
    from mathray.jobs.training.worker import run_local

    torch.cuda.reset_peak_memory_stats()
    log = Path(cfg.output) / "steps.jsonl"
    cfg = cfg.model_copy(update={"callbacks": [{"cls": "gpu_check:StepLog", "kwargs": {"path": str(log)}}]})
    t0 = time.perf_counter()
    metrics = run_local(cfg)
    wall = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated()
    losses = [json.loads(x)["loss"] for x in log.read_text().splitlines()]
    tokens = metrics.get("num_tokens") or cfg.optim.steps * cfg.optim.batch_size * cfg.data.max_len
    estimate = plan(cfg.model_copy(update={"num_workers": 1}), model_config)["bytes"]["total"]
    print(f"{name}: peak {peak / GIB:.2f} GiB allocated (planner {estimate / GIB:.2f} GiB incl. 1.5 GiB fixed + 10%), "
          f"~{tokens / metrics['train_runtime']:.0f} tokens/s in train(), {wall:.0f} s wall; "
          f"loss {losses[0]:.4f} -> {losses[-1]:.4f}", flush=True)
    return {"name": name, "peak_bytes": peak, "planner_bytes": estimate, "losses": losses, "metrics": metrics}


def run_quickstart(root: Path) -> dict:
    """scripts/quickstart.sh at the reduced size under ``root`` (its output streams through: the job summaries
    and the report table); the report's rows when it finished."""
    missing = [m for m in ("vllm", "ray") if importlib.util.find_spec(m) is None]
    if missing:
        print(f"quick start skipped: {', '.join(missing)} not installed (pip install -e '.[gpu]')", flush=True)
        return {"name": "quickstart", "skipped": f"{', '.join(missing)} not installed"}
    env = {**os.environ, **{k: os.environ.get(k, v) for k, v in QUICKSTART.items()},
           "ROOT": str(root), "PYTHON": sys.executable}
    t0 = time.perf_counter()
    code = subprocess.run(["bash", str(REPO / "scripts" / "quickstart.sh")], env=env).returncode
    wall = time.perf_counter() - t0
    settings = {k: env[k] for k in ("MODEL", "SOURCE", *QUICKSTART) if k in env}
    print(f"quick start: exit {code}, {wall:.0f} s wall, settings {settings}", flush=True)
    report = root / "report" / "report.json"
    table = json.loads(report.read_text())["table"] if code == 0 and report.exists() else None
    return {"name": "quickstart", "exit": code, "wall_s": wall, "settings": settings, "table": table}


def run_published_prm(root: Path) -> dict:
    """The published-PRM recipes' scorer on this GPU: Qwen2.5-Math-PRM's convention on vLLM's pooling runner,
    with a tiny random model in that checkpoint's layout built here (no hub). Its step scores against a plain fp32
    forward of the same weights on the CPU, and both wall times (benchmarks/conventions.py, sides c and d)."""
    if importlib.util.find_spec("vllm") is None:
        print("published PRM skipped: vllm not installed (pip install -e '.[gpu]')", flush=True)
        return {"name": "published_prm", "skipped": "vllm not installed"}
    sys.path[:0] = [str(REPO / "benchmarks"), str(REPO / "tests")]
    from conventions import race, samples, separator_loop
    from helpers.tiny_reward_models import build_separator_prm

    from mathray.jobs.scoring import Scorer, ScorerConfig

    model = str(build_separator_prm(root / "separator-prm", seed=4))
    rows = samples(256)
    cfg = ScorerConfig(prm=model, prm_convention="qwen-math-prm", max_length=512, dtype="float32", device="gpu")
    pool_s, loop_s, diff, steps = race(Scorer(cfg.model_dump(), "gpu"), rows, lambda rs: separator_loop(model, rs))
    ok = diff < PRM_TOLERANCE
    print(f"published PRM (qwen-math-prm on vLLM pooling, GPU): {len(rows)} solutions, {steps} steps in "
          f"{pool_s:.2f} s (CPU forward loop {loop_s:.2f} s); max |diff| against the CPU forward {diff:.2e} "
          f"({'OK' if ok else 'DIFFERENT'})", flush=True)
    return {"name": "published_prm", "exit": 0 if ok else 1, "pooling_s": pool_s, "cpu_loop_s": loop_s,
            "max_abs_diff": diff, "steps": steps}


def main() -> int:
    import torch

    from mathray.jobs.training.config import TrainJobConfig

    assert torch.cuda.is_available(), "no GPU"
    print(f"GPU: {torch.cuda.get_device_name()}, torch {torch.__version__}", flush=True)
    root = Path(tempfile.mkdtemp(prefix="gpu_check_"))
    model, data = build_model(root), build_data(root)
    model_config = REPO / "rayjobs/configs/recipes/models/Qwen2.5-0.5B.json"
    base = {"task": "verifier", "model": model, "use_gpu": True, "precision": "bf16-mixed",
            "gradient_checkpointing": True, "report_to": ["none"], "log_every": 1, "checkpoint_every": STEPS,
            "data": {"samples": [data["samples"]], "max_len": 1024, "per_problem": 2},
            "optim": {"lr": 1e-5, "steps": STEPS, "batch_size": 4, "warmup_ratio": 0.0}}
    results = [run("verifier ddp", TrainJobConfig.model_validate({**base, "output": str(root / "ddp")}), model_config)]
    # FSDP through accelerate needs a process group: a one-process one on this GPU
    os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1", MASTER_PORT="29577")
    fsdp = TrainJobConfig.model_validate({**base, "output": str(root / "fsdp"), "sharding": "fsdp"})
    results.append(run("verifier fsdp", fsdp, model_config))
    a, b = results[0]["losses"], results[1]["losses"]
    worst = max(abs(x - y) for x, y in zip(a, b))
    print(f"FSDP vs DDP loss: max |diff| over {len(a)} steps = {worst:.2e} ({'OK' if worst < 2e-2 else 'DIFFERENT'})")
    try:
        import datasets  # noqa: F401
        import trl  # noqa: F401
    except ImportError as e:
        print(f"SSFT skipped: {e} (carry trl and datasets wheels to run it)")
    else:
        ssft = TrainJobConfig.model_validate({**base, "task": "ssft", "output": str(root / "ssft"),
                                              "data": {"ssft": [data["problems"]], "max_len": 1024}})
        os.environ.pop("WORLD_SIZE")
        results.append(run("ssft ddp", ssft, model_config))
    for var in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        os.environ.pop(var, None)    # the quick start's Ray workers must not see this process group
    torch.cuda.empty_cache()
    results.append(run_quickstart(root / "quickstart"))
    results.append(run_published_prm(root))
    Path(os.environ.get("OUT", root), "gpu_check.json").write_text(json.dumps(
        [{k: v for k, v in r.items() if k != "metrics"} for r in results], indent=1))
    return 0 if all(r.get("exit", 0) == 0 for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
