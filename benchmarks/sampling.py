"""Sampling throughput: (a) one vllm.LLM called directly, (b) the Ray Data sampling job with one replica,
(c) the same job with replicated rows (n=1 per row) instead of SamplingParams(n=N), (d) Ray's own
``ray.data.llm`` vLLM processor, one replica, on the same problems.

Same tiny model, prompts (toy problems, plain format) and sampling parameters everywhere. Output tokens/s in
steady state, excluding engine start:
- (a): one warm-up call, then one timed ``generate`` over all prompts (token-id prompts, per-problem seeds,
  exactly the requests the job's engine makes).
- (b), (c), (d): each runs twice, on SMALL and on ALL problems; steady tokens/s is
  (tokens_all - tokens_small) / (wall_all - wall_small), so engine start, Ray Data planning and pipeline
  fill/drain (the same in both runs) cancel out. Total wall times are printed too.
- (d): ``ray.data.llm`` keeps only the first output of each request, so each problem becomes N rows with
  n=1 and seeds s+i (the seeds of (b) and (c)) and prefix caching shares the prompt; engine arguments are the
  job's (``llm_kwargs``), the replica asks for one CPU, the output is written as parquet. Skipped, with the
  reason printed, where ``ray.data.llm`` does not import.

    .venv/bin/python benchmarks/sampling.py     (SAMPLING_BENCH_PROBLEMS=N: another size; default 1024)

1024 problems give ~40 s of steady generation per side on 2 cores (about 4.5 minutes in all for (a)-(c)); with 256,
one-second stalls on a shared machine moved the ratios by ~10% (benchmarks/RESULTS.md).
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

PROBLEMS = int(os.environ.get("SAMPLING_BENCH_PROBLEMS", 1024))  # ~40 s of steady generation per side on 2 cores
SMALL, SHARD_ROWS, N, MAX_TOKENS = 32, 32, 4, 128
BATCH = 64  # problems per engine call: 64 x N=4 = 256 sequences (vLLM's LLM default max_num_seqs below 70 GiB)


def make_config(model: str, inp: str, out: str, expand: str):
    from mathray.runtime.engine import EngineConfig
    from mathray.jobs.sampling import SampleJobConfig, SamplingConfig

    # vLLM's engine core in processes of its own on both sides, as ray.data.llm runs it
    engine = EngineConfig(model=model, device="cpu", enforce_eager=True, kv_cache_memory_bytes=256 * 2**20,
                          max_model_len=512, batch_size=BATCH, in_process=False)
    return SampleJobConfig(input=inp, output=out, engine=engine,
                           sampling=SamplingConfig(n=N, max_tokens=MAX_TOKENS, temperature=1.0, seed=0,
                                                   expand=expand))


def write_problems(rows: list[dict], uri: str) -> None:
    from mathray.core import schemas
    from mathray.runtime.storage import ShardStore, shard_name

    store = ShardStore(uri)
    for i in range(0, len(rows), SHARD_ROWS):
        store.commit_shard(shard_name(i // SHARD_ROWS), schemas.to_table(rows[i:i + SHARD_ROWS], schemas.PROBLEMS))
    store.write_manifest()


def raw_tokens_per_s(cfg, rows: list[dict]) -> tuple[float, float, int]:
    """(steady tokens/s, total wall incl. engine start, output tokens) of one LLM in this process."""
    from vllm import SamplingParams

    from mathray.core import prompts
    from mathray.runtime.engine import build_llm
    from mathray.jobs.sampling import problem_seed, request_params

    t0 = time.time()
    llm = build_llm(cfg.engine, "cpu")
    tok = llm.get_tokenizer()
    reqs = [{"prompt_token_ids": tok.encode(prompts.plain_prompt(r["problem"]))} for r in rows]
    params = [SamplingParams(n=N, seed=problem_seed(0, r["problem_id"]), **request_params(cfg.sampling))
              for r in rows]
    llm.generate(reqs[:8], params[:8], use_tqdm=False)  # warm-up
    t1 = time.time()
    outs = llm.generate(reqs, params, use_tqdm=False)
    t2 = time.time()
    tokens = sum(len(c.token_ids) for o in outs for c in o.outputs)
    del llm
    import gc

    gc.collect()
    return tokens / (t2 - t1), t2 - t0, tokens


def job_run(cfg) -> tuple[float, int]:
    from mathray.jobs.sampling import run_sampling
    from mathray.runtime.storage import ShardStore

    t0 = time.time()
    run_sampling(cfg)
    wall = time.time() - t0
    tokens = sum(ShardStore(cfg.output).read_all(["num_output_tokens"]).column(0).to_pylist())
    return wall, tokens


def steady_rate(t_small: int, w_small: float, t_all: int, w_all: float) -> float:
    """Tokens/s of the full run beyond the small one; NaN when the full run took no longer (the machine's
    load changed between the two), where no steady rate can be read."""
    return (t_all - t_small) / (w_all - w_small) if w_all > w_small else float("nan")


def job_tokens_per_s(model: str, small: str, full: str, tmp: Path, expand: str) -> tuple[float, float, int]:
    w_small, t_small = job_run(make_config(model, small, str(tmp / f"{expand}-small"), expand))
    w_all, t_all = job_run(make_config(model, full, str(tmp / f"{expand}-all"), expand))
    print(f"  job expand={expand}: small {t_small} tokens in {w_small:.1f}s, all {t_all} tokens in "
          f"{w_all:.1f}s", flush=True)
    return steady_rate(t_small, w_small, t_all, w_all), w_all, t_all


def ray_data_llm_unavailable() -> str | None:
    """Why side (d) cannot run here (``ray.data.llm`` needs ``ray[llm]``'s extras, aiohttp among them), or
    None."""
    try:
        from ray.data.llm import build_processor, vLLMEngineProcessorConfig  # noqa: F401
    except ImportError as e:
        return f"ray.data.llm does not import: {type(e).__name__}: {e}"
    return None


def ray_data_llm_processor(cfg):
    """A ``ray.data.llm`` vLLM processor with the job's engine arguments and request parameters: prompt text
    in (vLLM tokenizes it, as the job's engine encodes it: plain format, default special tokens), one CPU
    replica, ``BATCH * N`` rows per engine call (the sequences of one call of (b))."""
    from ray.data.llm import build_processor, vLLMEngineProcessorConfig

    from mathray.jobs.sampling import request_params
    from mathray.runtime.engine import llm_kwargs

    engine_kwargs = {k: v for k, v in llm_kwargs(cfg.engine, "cpu").items() if k != "model"}
    config = vLLMEngineProcessorConfig(
        model_source=cfg.engine.model, engine_kwargs=engine_kwargs, batch_size=BATCH * N, concurrency=1,
        chat_template_stage=False, tokenize_stage=False, detokenize_stage=False, log_engine_metrics=False,
        placement_group_config={"bundles": [{"CPU": 1}]})   # default is one GPU bundle per replica
    shared = request_params(cfg.sampling)
    return build_processor(
        config,
        preprocess=lambda r: {**r, "sampling_params": {**shared, "n": 1, "seed": int(r["seed"])}},
        postprocess=lambda r: {
            "problem_id": r["problem_id"], "sample_id": r["sample_id"], "text": r["generated_text"],
            "num_output_tokens": r["num_generated_tokens"],
            # logprobs=0: each token's dict holds only the sampled token
            "cumulative_logprob": sum(v["logprob"] for d in r["logprobs"] for v in d.values())})


def duplicate_rows(row: dict) -> list[dict]:
    """One problem -> N prompt rows with seeds s+i, the seeds of sample i in (b) and (c)."""
    from mathray.core import prompts
    from mathray.jobs.sampling import problem_seed

    seed = problem_seed(0, row["problem_id"])
    prompt = prompts.plain_prompt(row["problem"])
    return [{"problem_id": row["problem_id"], "sample_id": i, "prompt": prompt, "seed": seed + i}
            for i in range(N)]


def ray_data_llm_run(cfg, problems: str, out: str) -> tuple[float, int]:
    """(wall incl. engine start, output tokens) of one ``ray.data.llm`` run: problem shards -> N rows each
    -> processor -> parquet."""
    import pyarrow.parquet as pq
    import ray

    t0 = time.time()
    ds = ray.data.read_parquet(f"{problems}/shards", columns=["problem_id", "problem"]).flat_map(duplicate_rows)
    ray_data_llm_processor(cfg)(ds).write_parquet(out)
    wall = time.time() - t0
    return wall, sum(pq.read_table(out, columns=["num_output_tokens"]).column(0).to_pylist())


def ray_data_llm_tokens_per_s(model: str, small: str, full: str, tmp: Path) -> tuple[float, float, int]:
    cfg = make_config(model, "", "", "n")
    w_small, t_small = ray_data_llm_run(cfg, small, str(tmp / "rdl-small"))
    w_all, t_all = ray_data_llm_run(cfg, full, str(tmp / "rdl-all"))
    print(f"  ray.data.llm: small {t_small} tokens in {w_small:.1f}s, all {t_all} tokens in {w_all:.1f}s",
          flush=True)
    return steady_rate(t_small, w_small, t_all, w_all), w_all, t_all


def main() -> None:
    import ray

    from mathray.jobs.tiny_model import build_tiny_model
    from mathray.core.toy import ToyTaskConfig, generate_problems

    tmp = Path(tempfile.mkdtemp(prefix="bench-sampling-"))
    model = str(build_tiny_model(tmp / "model"))
    rows = generate_problems(ToyTaskConfig(num_train=PROBLEMS), "train")
    write_problems(rows, str(tmp / "problems-all"))
    write_problems(rows[:SMALL], str(tmp / "problems-small"))
    print(f"{PROBLEMS} problems x N={N}, max_tokens={MAX_TOKENS}, tiny Qwen2 on CPU ({os.cpu_count()} cores)")

    raw, raw_wall, raw_tokens = raw_tokens_per_s(make_config(model, "", "", "n"), rows)
    print(f"(a) raw vllm.LLM: {raw:.0f} tokens/s steady, {raw_tokens} tokens, {raw_wall:.1f}s wall incl. start",
          flush=True)
    ray.init(include_dashboard=False, log_to_driver=False)
    job, job_wall, _ = job_tokens_per_s(model, str(tmp / "problems-small"), str(tmp / "problems-all"), tmp, "n")
    print(f"(b) Ray Data job, 1 replica, n={N}: {job:.0f} tokens/s steady, {job_wall:.1f}s wall", flush=True)
    rows_tps, rows_wall, _ = job_tokens_per_s(model, str(tmp / "problems-small"), str(tmp / "problems-all"),
                                              tmp, "rows")
    print(f"(c) Ray Data job, 1 replica, replicated rows n=1: {rows_tps:.0f} tokens/s steady, {rows_wall:.1f}s wall")
    skipped = ray_data_llm_unavailable()
    if skipped:
        print(f"(d) ray.data.llm: skipped: {skipped}")
        rdl_result = "ray_data_llm=skipped"
    else:
        rdl, rdl_wall, _ = ray_data_llm_tokens_per_s(model, str(tmp / "problems-small"),
                                                     str(tmp / "problems-all"), tmp)
        print(f"(d) ray.data.llm, 1 replica, {N} rows n=1 per problem: {rdl:.0f} tokens/s steady, "
              f"{rdl_wall:.1f}s wall")
        rdl_result = f"ratio_ray_data_llm_vs_job={rdl / job:.3f} tokens_per_s_ray_data_llm={rdl:.0f}"
    ray.shutdown()
    print(f"ratios: job/raw (b/a) = {job / raw:.3f}, rows/n (c/b) = {rows_tps / job:.3f}")
    print(f"RESULT ratio_job_vs_raw={job / raw:.3f} ratio_rows_vs_n={rows_tps / job:.3f} "
          f"tokens_per_s_raw={raw:.0f} tokens_per_s_job={job:.0f} {rdl_result}")


if __name__ == "__main__":
    main()
