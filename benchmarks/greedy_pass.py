"""An evaluation set's N samples and greedy decodes: (a) two sampling jobs, the N samples and then a greedy run
(``sampling.greedy: true``), each loading the model into its own engine replica, against (b) one job with
``sampling.greedy_pass: true``, which sends each problem's greedy request beside its n-request in the same
engine call.

Same tiny model, toy problems, seeds and engine settings on both sides, one replica each, on a local Ray cluster.
Each side runs ROUNDS times on fresh outputs, alternating, and the last round is timed (the first pays the
cluster's and the imports' warm-up). The outputs must agree: the same N samples, and greedy rows with the texts
of the greedy run. On CPU the difference is mostly the second engine's start (vLLM's import and engine build);
on a GPU the model load and warm-up of the second replica, which this machine cannot measure.

    .venv/bin/python benchmarks/greedy_pass.py
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

PROBLEMS, SHARD_ROWS, N, MAX_TOKENS, ROUNDS = 64, 32, 4, 64, 2


def config(model: str, problems: str, out: str, **sampling):
    from mathray.jobs.sampling import SampleJobConfig, SamplingConfig
    from mathray.runtime.engine import EngineConfig

    engine = EngineConfig(model=model, device="cpu", enforce_eager=True, kv_cache_memory_bytes=256 * 2**20,
                          max_model_len=512, batch_size=32)
    return SampleJobConfig(input=problems, output=out, engine=engine,
                           sampling=SamplingConfig(**{"n": N, "max_tokens": MAX_TOKENS, "seed": 0, **sampling}))


def write_problems(uri: str) -> None:
    from mathray.core import schemas
    from mathray.core.toy import ToyTaskConfig, generate_problems
    from mathray.runtime.storage import ShardStore, shard_name

    rows = generate_problems(ToyTaskConfig(num_test=PROBLEMS), "test")
    store = ShardStore(uri)
    for i in range(0, len(rows), SHARD_ROWS):
        store.commit_shard(shard_name(i // SHARD_ROWS), schemas.to_table(rows[i:i + SHARD_ROWS], schemas.PROBLEMS))
    store.write_manifest()


def timed(*cfgs) -> float:
    from mathray.jobs.sampling import run_sampling

    t0 = time.perf_counter()
    for cfg in cfgs:
        run_sampling(cfg)
    return time.perf_counter() - t0


def texts(uri: str, greedy_pass: bool = False) -> dict:
    """{problem_id: its texts in sample_id order} of the rows that are (or are not) greedy-pass rows."""
    from mathray.runtime.storage import ShardStore

    rows = ShardStore(uri).read_all(["problem_id", "sample_id", "text", "greedy_pass"]).to_pylist()
    out: dict[str, list[str]] = {}
    for r in sorted(rows, key=lambda r: (r["problem_id"], r["sample_id"])):
        if bool(r["greedy_pass"]) == greedy_pass:
            out.setdefault(r["problem_id"], []).append(r["text"])
    return out


def main() -> None:
    from mathray.jobs.tiny_model import build_tiny_model
    from mathray.runtime.entry import init_ray

    tmp = Path(tempfile.mkdtemp(prefix="greedy-pass-bench-"))
    model, problems = str(build_tiny_model(tmp / "model")), str(tmp / "problems")
    write_problems(problems)
    init_ray()
    for r in range(ROUNDS):
        two = [config(model, problems, str(tmp / f"samples{r}")),
               config(model, problems, str(tmp / f"greedy{r}"), n=1, greedy=True)]
        two_jobs_s = timed(*two)
        one_job_s = timed(config(model, problems, str(tmp / f"with_pass{r}"), greedy_pass=True))
        print(f"round {r}: two jobs {two_jobs_s:.1f} s, one job with greedy_pass {one_job_s:.1f} s", flush=True)
    last = ROUNDS - 1
    same_samples = texts(str(tmp / f"samples{last}")) == texts(str(tmp / f"with_pass{last}"))
    same_greedy = texts(str(tmp / f"greedy{last}")) == texts(str(tmp / f"with_pass{last}"), greedy_pass=True)
    print(f"RESULT two_jobs_s={two_jobs_s:.1f} greedy_pass_s={one_job_s:.1f} saved_s={two_jobs_s - one_job_s:.1f} "
          f"problems={PROBLEMS} n={N} same_samples={same_samples} same_greedy_texts={same_greedy}")


if __name__ == "__main__":
    main()
