"""The training loop every task runs, inside Ray Train workers (``train_func``) or in one plain process
(``run_local``, the benchmark baseline): same data order, same steps, same checkpoints.

A run is a list of phases (one for ssft/verifier/prm; three for sequential, two for its control). Each
optimizer step takes ``grad_accum`` micro-batches of ``batch_size`` examples from this rank's shard of the
examples (``examples[rank::world]``) in an order that is a pure function of (seed, phase, step), so a
restored run continues the same data stream with no dataloader state. DDP averages gradients
(``ray.train.torch.prepare_model``; gloo on CPU, NCCL on GPU); gradient sync is skipped on all but the
last micro-batch. bf16 autocast on GPU only.

Checkpoint = ``model.pt`` (state dict; LoRA adapters included), ``optimizer.pt``, ``state.json``
(``{"phase", "step"}`` of the next step to run). At a phase end the model is exported in HF format first,
then the checkpoint points at the next phase, so a restore never re-trains a finished phase.

Ray Train V2 registers a reported checkpoint when its controller polls the worker (every
``controller_poll_s``, 0.5 s by default, Ray's own default is 2 s; each
worker's report queue holds one report, so the next ``ray.train.report`` waits for that poll). A worker that
dies within that window after reporting loses the checkpoint and the restore starts from the one before.
So the first log step after a checkpoint reports its metrics too (that report returns once the checkpoint
is registered), bounding the window to ``log_every`` steps; other log steps only print a progress line,
since every report costs a controller poll.
"""
from __future__ import annotations

import contextlib
import copy
import json
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from mathray.core import prompts
from mathray.runtime.models import staging_dir
from mathray.config import code_version, config_hash, resolved_config
from mathray.runtime.storage import ShardStore, join, resolve
from mathray.jobs.training import data, objectives
from mathray.jobs.training.config import TrainJobConfig


@dataclass
class Phase:
    kind: str          # ssft | verifier_xent | verifier_margin | prm | contrastive
    examples: list
    steps: int
    lr: float
    export: str        # directory name under ``output`` the model is exported to at the end
    stats: dict


def load_rows(uris: list[str]) -> list[dict]:
    rows = []
    for uri in uris:
        rows += ShardStore(uri).read_all().to_pylist()
    return rows


def label_ids(tokenizer, explicit, strings) -> tuple[int, int]:
    return tuple(explicit) if explicit else tuple(prompts.single_token_id(tokenizer, s) for s in strings)


def prm_tag_id(cfg: TrainJobConfig, tokenizer, model) -> int:
    """The step-tag id; with ``prm.add_tag_token`` a tag that is not one token becomes a new special token
    (embeddings resized, new row trained with the rest)."""
    if cfg.prm.tag_id is not None:
        return cfg.prm.tag_id
    try:
        return prompts.single_token_id(tokenizer, cfg.prm.tag)
    except ValueError:
        if not cfg.prm.add_tag_token:
            raise
    tokenizer.add_tokens([cfg.prm.tag], special_tokens=True)
    model.resize_token_embeddings(len(tokenizer))
    return prompts.single_token_id(tokenizer, cfg.prm.tag)


def build_phases(cfg: TrainJobConfig, tokenizer, model) -> tuple[list[Phase], dict]:
    """The phases of ``cfg.task`` with their examples, and the label ids they read."""
    d, o = cfg.data, cfg.optim
    eos = tokenizer.eos_token_id if d.append_eos else None
    ids: dict = {}

    def ssft(steps, lr, export):
        ex, st = data.ssft_examples(tokenizer, load_rows(d.ssft), d.max_len, eos)
        return Phase("ssft", ex, steps, lr, export, st)

    def verifier(steps, lr, export):
        ids["verifier"] = label_ids(tokenizer, cfg.verifier.label_ids, cfg.verifier.labels)
        rows = load_rows(d.samples)
        if cfg.verifier.loss == "margin":
            ex, st = data.verifier_pair_examples(tokenizer, rows, d.per_problem, d.max_len, d.seed)
            return Phase("verifier_margin", ex, steps, lr, export, st)
        ex, st = data.verifier_examples(tokenizer, rows, d.per_problem, d.max_len, d.seed)
        return Phase("verifier_xent", ex, steps, lr, export, st)

    if cfg.task == "ssft":
        phases = [ssft(o.steps, o.lr, "final")]
    elif cfg.task == "verifier":
        phases = [verifier(o.steps, o.lr, "final")]
    elif cfg.task == "prm":
        tag = prm_tag_id(cfg, tokenizer, model)
        ids["prm"] = label_ids(tokenizer, cfg.prm.label_ids, cfg.prm.labels)
        ex, st = data.prm_examples(tokenizer, load_rows(d.step_labels), tag, d.max_len, cfg.prm.targets)
        phases = [Phase("prm", ex, o.steps, o.lr, "final", st)]
    else:
        s = cfg.sequential
        steps, lrs = s.stage_steps, s.stage_lr or (o.lr, o.lr, o.lr)
        if s.control:
            phases = [ssft(steps[0], lrs[0], "stage1-ssft"), ssft(steps[1] + steps[2], lrs[2], "final")]
        else:
            ex, st = data.generator_pair_examples(tokenizer, load_rows(d.samples), d.per_problem, d.max_len,
                                                  eos, d.seed)
            phases = [ssft(steps[0], lrs[0], "stage1-ssft"), verifier(steps[1], lrs[1], "stage2-verifier"),
                      Phase("contrastive", ex, steps[2], lrs[2], "final", st)]
    return phases, ids


def batch_indices(n: int, step: int, micro: int, batch_size: int, grad_accum: int, seed: int) -> list[int]:
    """Example indices of one micro-batch: epochs of seeded permutations of ``range(n)``, laid end to end."""
    start = (step * grad_accum + micro) * batch_size
    out = []
    for pos in range(start, start + batch_size):
        epoch, k = divmod(pos, n)
        perm = list(range(n))
        random.Random(f"{seed}:{epoch}").shuffle(perm)
        out.append(perm[k])
    return out


def micro_batch_loss(phase: Phase, model, batch: list, cfg: TrainJobConfig, ids: dict, pad_id: int, device):
    if phase.kind == "ssft":
        return objectives.ssft_loss(model, batch, pad_id, device)
    if phase.kind == "verifier_xent":
        return objectives.verifier_xent_loss(model, batch, ids["verifier"], pad_id, device, cfg.verifier.xent_over)
    if phase.kind == "verifier_margin":
        return objectives.verifier_margin_loss(model, batch, ids["verifier"], cfg.verifier.margin, pad_id, device)
    if phase.kind == "prm":
        return objectives.prm_loss(model, batch, ids["prm"], pad_id, device, cfg.prm.targets)
    s = cfg.sequential
    return objectives.contrastive_loss(model, batch, s.margin, s.alpha, s.length_normalize, pad_id, device)


def unwrap(model):
    return model.module if hasattr(model, "module") else model


def export_model(model, tokenizer, dest_uri: str, info: dict) -> None:
    """HF ``save_pretrained`` (LoRA merged into a copy) + tokenizer, published to ``dest_uri`` with its
    completion mark last (``runtime.models.publish_model``): readers never load half an export."""
    from mathray.runtime.models import publish_model, staging_dir

    m = unwrap(model)
    if hasattr(m, "merge_and_unload"):
        m = copy.deepcopy(m).merge_and_unload()
    with staging_dir() as tmp:
        m.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        publish_model(tmp, dest_uri, info)


class Env:
    """Where the loop runs: rank, world size, device, DDP wrapping, checkpoints and reports."""

    rank, world = 0, 1

    def wrap(self, model):
        return model

    def latest_checkpoint(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext(None)

    def report(self, metrics: dict, checkpoint_dir: str | None) -> None:
        pass

    def log(self, metrics: dict) -> None:
        """Progress between checkpoints: a line from rank 0 (the worker's stdout reaches the driver)."""
        if self.rank == 0:
            print(f"[train] {metrics['phase']} step {metrics['step']} (global {metrics['global_step']}): "
                  f"loss {metrics['loss']:.4f}, {metrics['tokens_per_s']:.0f} tokens/s", flush=True)

    def all_reduce_sum(self, values: list[float]) -> list[float]:
        return values


class RayEnv(Env):
    def __init__(self):
        import ray.train
        import ray.train.torch

        ctx = ray.train.get_context()
        self.rank, self.world = ctx.get_world_rank(), ctx.get_world_size()
        self.device = ray.train.torch.get_device()

    def wrap(self, model):
        import ray.train.torch

        return ray.train.torch.prepare_model(model)

    def latest_checkpoint(self):
        import ray.train

        ckpt = ray.train.get_checkpoint()
        return ckpt.as_directory() if ckpt else contextlib.nullcontext(None)

    def report(self, metrics, checkpoint_dir):
        import ray.train

        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(checkpoint_dir)
                         if checkpoint_dir else None)

    def all_reduce_sum(self, values):
        import torch
        import torch.distributed as dist

        if self.world == 1 or not dist.is_initialized():
            return values
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return t.tolist()


class LocalEnv(Env):
    """One process, no Ray: checkpoints are directories under ``checkpoint_root`` (latest kept)."""

    def __init__(self, device: str = "cpu", checkpoint_root: str | None = None):
        self.device, self.root = device, checkpoint_root

    def latest_checkpoint(self):
        latest = Path(self.root or "", "latest")
        return contextlib.nullcontext(str(latest) if self.root and latest.is_dir() else None)

    def report(self, metrics, checkpoint_dir):
        import shutil

        if checkpoint_dir and self.root:
            dest = Path(self.root, "latest")
            shutil.rmtree(dest, ignore_errors=True)
            shutil.copytree(checkpoint_dir, dest)


def run_loop(cfg: TrainJobConfig, env: Env, on_step: Callable[[dict], None] | None = None,
             lineage: dict | None = None) -> dict:
    """Train ``cfg`` in ``env``; returns the last metrics."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(cfg.seed)
    device = torch.device(env.device)
    if device.type == "cpu":
        torch.set_num_threads(cfg.cpus_per_worker)
    from mathray.runtime.models import fetch_model

    model_dir = fetch_model(cfg.model)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    phases, ids = build_phases(cfg, tokenizer, model)
    if cfg.lora is not None:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", r=cfg.lora.r, lora_alpha=cfg.lora.alpha,
                                                 lora_dropout=cfg.lora.dropout,
                                                 target_modules=cfg.lora.target_modules))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)

    start_phase, start_step, optim_state = 0, 0, None
    unconfirmed = False   # a checkpoint was reported and no report since has confirmed it
    with env.latest_checkpoint() as ckpt:
        if ckpt:
            state = json.loads(Path(ckpt, "state.json").read_text())
            model.load_state_dict(torch.load(Path(ckpt, "model.pt"), map_location="cpu"))
            start_phase, start_step = state["phase"], state["step"]
            if start_step > 0:
                optim_state = torch.load(Path(ckpt, "optimizer.pt"), map_location="cpu")
    model = env.wrap(model.to(device))
    params = [p for p in model.parameters() if p.requires_grad]
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if cfg.bf16 and device.type == "cuda"
                else contextlib.nullcontext())
    info = {"job": "train", "config": resolved_config(cfg), "config_hash": config_hash(cfg),
            "code_version": code_version(), "lineage": lineage}
    o = cfg.optim
    metrics: dict = {}
    started, tokens = time.perf_counter(), 0
    for pi, phase in enumerate(phases):
        if pi < start_phase:
            continue
        shard = phase.examples[env.rank :: env.world]
        if not shard:
            raise ValueError(f"phase {phase.kind}: {len(phase.examples)} examples for {env.world} workers "
                             f"(skipped: {phase.stats})")
        opt = torch.optim.AdamW(params, lr=phase.lr, weight_decay=o.weight_decay)
        first = start_step if pi == start_phase else 0
        if optim_state is not None and pi == start_phase:
            opt.load_state_dict(optim_state)
        loss_sum, loss_n = 0.0, 0
        for step in range(first, phase.steps):
            for group in opt.param_groups:
                group["lr"] = phase.lr * min(1.0, (step + 1) / o.warmup_steps) if o.warmup_steps else phase.lr
            step_loss = 0.0
            for micro in range(o.grad_accum):
                batch = [shard[i] for i in batch_indices(len(shard), step, micro, o.batch_size, o.grad_accum,
                                                         cfg.seed * 1000 + pi)]
                sync = micro == o.grad_accum - 1 or not hasattr(model, "no_sync")
                with (contextlib.nullcontext() if sync else model.no_sync()), autocast:
                    loss, n = micro_batch_loss(phase, model, batch, cfg, ids, pad_id, device)
                (loss / o.grad_accum).backward()
                step_loss += loss.item() / o.grad_accum
                tokens += n
            torch.nn.utils.clip_grad_norm_(params, o.max_grad_norm)
            opt.step()
            opt.zero_grad(set_to_none=True)
            loss_sum, loss_n = loss_sum + step_loss, loss_n + 1
            done = step + 1
            global_step = sum(p.steps for p in phases[:pi]) + done
            line = {"phase": phase.kind, "step": done, "global_step": global_step, "loss": step_loss,
                    "pid": os.getpid(), "time": time.time()}
            if on_step:
                on_step(line)
            if cfg.step_log and env.rank == 0:
                with open(cfg.step_log, "a") as f:
                    f.write(json.dumps(line) + "\n")
            phase_end = done == phase.steps
            checkpoint = phase_end or done % cfg.checkpoint_every == 0
            if checkpoint or done % cfg.log_every == 0:
                total_loss, total_n, total_tokens = env.all_reduce_sum([loss_sum, loss_n, tokens])
                metrics = {"phase": phase.kind, "step": done, "global_step": global_step,
                           "loss": total_loss / max(total_n, 1), "tokens": total_tokens,
                           "tokens_per_s": total_tokens / (time.perf_counter() - started)}
                loss_sum, loss_n = 0.0, 0
                if checkpoint:
                    if phase_end and env.rank == 0:
                        export_model(model, tokenizer, join(cfg.output, phase.export),
                                     {**info, "phase": phase.kind, "phase_index": pi, "steps": done,
                                      "data_stats": phase.stats})
                    nxt = {"phase": pi + 1, "step": 0} if phase_end else {"phase": pi, "step": done}
                    with staging_dir("checkpoints") as tmp:
                        if env.rank == 0:
                            torch.save(unwrap(model).state_dict(), Path(tmp, "model.pt"))
                            if not phase_end:
                                torch.save(opt.state_dict(), Path(tmp, "optimizer.pt"))
                            Path(tmp, "state.json").write_text(json.dumps(nxt))
                        env.report(metrics, tmp if env.rank == 0 else None)
                    unconfirmed = True
                elif unconfirmed:
                    env.report(metrics, None)   # waits until the controller has taken the checkpoint
                    unconfirmed = False
                else:
                    # not ray.train.report: each call waits for the controller's poll (~0.6 s per call
                    # measured on 2 CPUs at Ray's 2 s interval), which made the loop 1.5x slower at a
                    # report every 10 steps
                    env.log(metrics)
            f = cfg.fault
            if (f.exit_after_step == global_step and env.rank == 0 and f.marker
                    and not os.path.exists(f.marker)):
                Path(f.marker).write_text(str(os.getpid()))
                os._exit(1)   # simulated worker crash (test hook): no cleanup, like a killed process
    return metrics


def train_func(config: dict) -> None:
    """Ray Train worker entry: ``config = {"job": resolved TrainJobConfig}``."""
    run_loop(TrainJobConfig.model_validate(config["job"]), RayEnv(), lineage=config.get("lineage"))


def run_local(cfg: TrainJobConfig, device: str = "cpu", checkpoint_root: str | None = None,
              on_step: Callable[[dict], None] | None = None) -> dict:
    """The same loop in this process without Ray (benchmark baseline, debugging)."""
    return run_loop(cfg, LocalEnv(device, checkpoint_root), on_step)
