"""``mathray plan RECIPE``: what a training recipe needs, without a GPU or weights.

The model is built from its ``config.json`` on the meta device (shapes only), so the parameter count is the
architecture's, not a guess. Per-GPU memory, for the recipe's precision, sharding, LoRA and micro-batch:

- weights / gradients / optimizer: bytes per parameter (fp32 master weights, fp32 gradients and two fp32
  AdamW moments under bf16-mixed; everything bf16 under ``bf16``; frozen weights only under LoRA), divided by
  the world size under FSDP FULL_SHARD or ZeRO-3. FSDP adds the units being gathered: two decoder layers
  (the current and the prefetched one) and the root unit (embeddings, final norm, LM head), which FSDP2
  keeps unsharded from forward to backward, in bf16, plus their fp32 gradients before the reduce-scatter.
- activations, per token and decoder layer, from the tensors a Qwen2/Llama layer saves for backward under
  bf16 autocast with an fp32 residual stream (SDPA attention, K/V expanded for GQA): two RMSNorms (fp32 input
  and normalised output, 8H bytes each), the bf16 casts of their outputs for q/k/v and gate/up (10H), q, k, v
  and rotated q, k (6H + 6 kv_dim), the attention output and o_proj input (4H), the MLP's gate, up, SiLU and
  product (8I): ``38H + 6 kv_dim + 8I`` bytes. With gradient checkpointing each layer keeps its fp32 input
  (4H) and one layer is recomputed at a time. fp32 precision doubles the bf16 terms.
- the loss head: TRL's fused LM head for SSFT/L_ctr (a 4096-token x 32768-vocabulary tile, forward and
  backward); the readout objectives' ``[B, distinct read positions, V]`` fp32 logits and their gradient.
- a fixed 1.5 GiB for the CUDA context, cuBLAS workspaces and NCCL buffers, and 10% allocator slack.

GPU-hours: training FLOPs from TRL's ``compute_flops_per_token`` (3x the forward: matmuls, attention scores,
LM head) x tokens (steps x global batch x mean tokens per sequence), x4/3 with gradient checkpointing (one
more forward), over the GPUs' dense bf16 peak times an assumed model FLOP utilisation (``plan.mfu``).
The GPU check (``scripts/gpu_check.sh``) prints measured peak memory and tokens/s next to this estimate.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from mathray.config import load_config
from mathray.jobs.training.config import TrainJobConfig
from mathray.jobs.training.tasks import TASKS

REPO = Path(__file__).resolve().parents[3]
GIB = 2**30
FIXED_OVERHEAD = 1.5 * GIB
SLACK = 1.10


@dataclass(frozen=True)
class GPU:
    name: str
    per_node: int
    memory_bytes: int       # as the driver reports it
    bf16_tflops: float      # dense tensor-core peak


# instance types that cluster.yaml can launch
INSTANCES = {
    "g5.2xlarge": GPU("A10G 24 GB", 1, 23028 * 2**20, 70.0),       # A10G: 22.5 GiB usable, ~70 TF bf16 dense
    "p4d.24xlarge": GPU("A100 40 GB", 8, 40960 * 2**20, 312.0),
}


def cluster_gpus(cluster_yaml: Path = REPO / "cluster.yaml") -> dict[str, GPU]:
    import yaml

    types = yaml.safe_load(cluster_yaml.read_text()).get("available_node_types", {})
    found = {t["node_config"].get("InstanceType") for t in types.values()}
    return {k: v for k, v in INSTANCES.items() if k in found}


def model_config_path(cfg: TrainJobConfig, recipe: Path | None, override: str | None = None) -> Path:
    for cand in (override, cfg.plan.model_config_json):
        if cand:
            for base in (Path.cwd(), recipe.parent if recipe else None, REPO):
                if base is not None and (base / cand).is_file():
                    return (base / cand).resolve()
            raise FileNotFoundError(f"model config {cand} not found")
    local = Path(cfg.model, "config.json")
    if local.is_file():
        return local
    raise FileNotFoundError(f"no config.json for model {cfg.model!r}: set plan.model_config_json in the recipe")


def build_meta_model(config_json: Path):
    """The model with every tensor on the meta device (no memory, no weights): accelerate's
    ``init_empty_weights``, the way transformers itself builds big models before loading them."""
    from accelerate import init_empty_weights
    from transformers import AutoConfig, AutoModelForCausalLM

    if config_json.name == "config.json":
        config = AutoConfig.from_pretrained(str(config_json.parent), trust_remote_code=False)
    else:
        config = AutoConfig.for_model(**json.loads(config_json.read_text()))
    with init_empty_weights(include_buffers=True):
        return AutoModelForCausalLM.from_config(config)


def lora_params(model, cfg: TrainJobConfig) -> int:
    """r x (in + out) per targeted Linear."""
    import torch

    n = 0
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.Linear) and name.rsplit(".", 1)[-1] in cfg.lora.target_modules:
            n += cfg.lora.r * (mod.in_features + mod.out_features)
    return n


def plan(cfg: TrainJobConfig, config_json: Path) -> dict:
    from trl.trainer.utils import compute_flops_per_token

    model = build_meta_model(config_json)
    c = model.config
    params = sum(p.numel() for p in model.parameters())
    H, L, I, V = c.hidden_size, c.num_hidden_layers, c.intermediate_size, c.vocab_size
    kv = c.num_key_value_heads * (getattr(c, "head_dim", None) or H // c.num_attention_heads)
    layer_params = (params - V * H * (1 if c.tie_word_embeddings else 2) - H) // L
    root_params = params - L * layer_params
    precision = cfg.precision if cfg.precision != "auto" else "bf16-mixed"   # recipes are GPU recipes
    trainable = lora_params(model, cfg) if cfg.lora else params
    w_bytes = 2 if precision == "bf16" else 4
    world = cfg.num_workers
    shard = world if cfg.sharding in ("fsdp", "deepspeed") else 1
    weights = params * w_bytes / shard
    grads = trainable * w_bytes / (shard if not cfg.lora else 1)
    optim = trainable * 2 * w_bytes / (shard if not cfg.lora else 1)
    gathered = 0.0
    if cfg.sharding in ("fsdp", "deepspeed") and not cfg.lora:
        gathered = (2 * layer_params + root_params) * (2 + w_bytes)   # bf16 copy + full-size grad
    o, d = cfg.optim, cfg.data
    memory = TASKS[cfg.task].memory(cfg)
    tokens = o.batch_size * d.max_len * memory.sequences
    act_scale = 2 if precision == "fp32" else 1
    per_layer = (38 * H + 6 * kv + 8 * I) * act_scale
    acts = tokens * (L * 4 * H + per_layer) if cfg.gradient_checkpointing else tokens * L * per_layer
    if memory.read_positions is None:   # fused head tiles + hidden states
        head = 2 * 4096 * 32768 * (2 if precision != "fp32" else 4) + tokens * H * 4
    else:
        head = o.batch_size * o.batch_size * memory.read_positions * V * 4 * 2
    total = (weights + grads + optim + gathered + acts + head) * SLACK + FIXED_OVERHEAD
    stage_steps = sum(p.steps for p in TASKS[cfg.task].phases(cfg))
    mean_tokens = cfg.plan.mean_tokens or d.max_len
    train_tokens = stage_steps * o.batch_size * o.grad_accum * world * mean_tokens
    flops = compute_flops_per_token(c, mean_tokens) * train_tokens * (4 / 3 if cfg.gradient_checkpointing else 1)
    if cfg.lora:
        flops *= 2 / 3   # no weight-gradient matmuls for frozen weights
    fits, hours = {}, {}
    for inst, gpu in cluster_gpus().items():
        fits[f"{gpu.name} ({inst})"] = total <= gpu.memory_bytes
        hours[f"{gpu.name} ({inst})"] = flops / (gpu.bf16_tflops * 1e12 * cfg.plan.mfu) / 3600
    return {"model": config_json.stem if config_json.name != "config.json" else cfg.model, "params": params,
            "trainable_params": trainable, "precision": precision, "sharding": cfg.sharding, "world": world,
            "micro_batch_tokens": tokens, "gradient_checkpointing": cfg.gradient_checkpointing,
            "bytes": {"weights": weights, "gradients": grads, "optimizer": optim, "gathered_units": gathered,
                      "activations": acts, "loss_head": head, "total": total},
            "fits": fits, "train_tokens": train_tokens, "train_flops": flops, "gpu_hours": hours}


def render(p: dict) -> str:
    b = p["bytes"]
    lines = [f"model {p['model']}: {p['params'] / 1e9:.3f}B parameters ({p['trainable_params'] / 1e6:.1f}M trainable); "
             f"{p['precision']}, {p['sharding']} x {p['world']} GPUs, micro-batch {p['micro_batch_tokens']} tokens, "
             f"gradient checkpointing {'on' if p['gradient_checkpointing'] else 'off'}",
             "per-GPU memory (GiB): " + ", ".join(f"{k} {v / GIB:.2f}" for k, v in b.items() if k != "total")
             + f", + fixed {FIXED_OVERHEAD / GIB:.1f} and 10% slack = total {b['total'] / GIB:.2f}"]
    for gpu, ok in p["fits"].items():
        lines.append(f"  {gpu}: {'fits' if ok else 'DOES NOT FIT'}; {p['gpu_hours'][gpu]:.2f} GPU-hours "
                     f"for {p['train_tokens'] / 1e6:.1f}M tokens ({p['train_flops'] / 1e15:.0f} PFLOP)")
    return "\n".join(lines)


def print_plan(cfg: TrainJobConfig, title: str, recipe: Path, model_config: str | None = None) -> None:
    print(title)
    print(render(plan(cfg, model_config_path(cfg, recipe, model_config))))


def main(recipe: str, overrides: list[str], model_config: str | None = None) -> int:
    """Plan a train recipe (a pipeline recipe's training stages: ``cli.plan_recipe``)."""
    cfg = load_config(TrainJobConfig, recipe, overrides)
    print_plan(cfg, f"recipe {recipe} (task {cfg.task})", Path(recipe), model_config)
    return 0
