"""``TrainJobConfig``: one config for every trainer; ``task`` selects one of the tasks declared in ``tasks``
(ssft | verifier | prm | orm | sequential | ...), whose settings sections live with their declarations.

Defaults are documented knobs, not published values: Liu et al. publish no lambda, alpha, learning rate,
steps or batch size, and Lightman et al. say only "2 epochs, low lr". The defaults are sized for a ~1B model
on a few GPUs (lr 1e-5 as the reference repo uses, cosine decay after a 3% warmup); the tiny-model configs
override lr/steps.

Batching: ``optim.batch_size`` examples per worker per micro-batch (a pair counts as one example),
``optim.grad_accum`` micro-batches per optimizer step, so one step sees ``batch_size * grad_accum *
num_workers`` examples; ``optim.steps`` counts optimizer steps (``TrainingArguments.max_steps``).

Outputs under ``output`` (a local path or s3:// URI), each a model export (``runtime.models.publish_model``:
HF weights in the export dtype, tokenizer, ``mathray_labels.json``, ``mathray_export.json`` with the
resolved config, run identity, code version and data stats, completion mark last):

    <output>/final/                      the trained model (what the next sampling/scoring round loads)
    <output>/stage1-ssft/, stage2-verifier/   sequential task only: the model after each stage
    <output>/run.json, config.yaml       resolved config, result hash, code version
    <storage>/<name>/checkpoint_*/       Ray Train checkpoints: checkpoint/ (an HF Trainer checkpoint with
                                         optimizer, scheduler and per-rank RNG states) + mathray_phase.json
    <storage>/<name>/mathray_run.json    the run identity a resume must match

Fields marked ``outside_lineage`` cannot change the trained weights (logging, checkpoint cadence, paths of outputs,
failure policy); the run identity (``lineage.run_identity``) is the rest plus the fingerprints of the input data
and model, and names the run: re-running the same identity resumes from its latest checkpoint.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from mathray.config import ConfigError, StrictModel, outside_lineage
from mathray.core.label_tokens import LabelSettings
from mathray.jobs.training.tasks import TASK_NAMES, TASKS
from mathray.jobs.training.tasks.prm import PRMSettings
from mathray.jobs.training.tasks.sequential import SequentialSettings
from mathray.jobs.training.tasks.verifier import VerifierSettings


class DataConfig(StrictModel):
    # input URIs are knobs: the run identity holds their content fingerprints instead (runtime.lineage)
    ssft: list[str] = outside_lineage([])  # PROBLEMS (reference_solution) and/or SAMPLES (correct rows) URIs
    samples: list[str] = outside_lineage([])  # graded SAMPLES URIs: verifier/ORM candidates, sequential pairs
    step_labels: list[str] = outside_lineage([])  # STEP_LABELS URIs (PRM800K ingest, Math-Shepherd labeler)
    max_len: int = Field(1024, ge=8)     # tokens per sequence (reference repo: 1024)
    append_eos: bool = True              # SSFT targets end with eos so the generator learns to stop
    per_problem: int = Field(10, ge=1)   # verifier/ORM candidates (or pairs) per problem; Liu: "10 examples"
    eval_fraction: float = Field(0.0, ge=0.0, lt=1.0)   # problems held out (by problem_id hash) for eval
    seed: int = 0


class OptimConfig(StrictModel):
    lr: float = 1e-5              # reference repo SFT/verifier: 1e-5 (paper: not published)
    weight_decay: float = 0.0
    lr_scheduler: Literal["constant_with_warmup", "linear", "cosine"] = "cosine"
    warmup_ratio: float = Field(0.03, ge=0.0, lt=1.0)   # of each phase's steps; warmup_steps wins when > 0
    warmup_steps: int = Field(0, ge=0)
    max_grad_norm: float = 1.0
    steps: int = Field(200, ge=1)        # Liu: "best after about 200 steps" (one note)
    batch_size: int = Field(4, ge=1)     # per worker per micro-batch
    grad_accum: int = Field(1, ge=1)
    optimizer: str = "adamw_torch"       # TrainingArguments.optim
    adam_beta2: float = Field(0.999, gt=0.0, lt=1.0)   # Adam's second-moment decay (TrainingArguments.adam_beta2)


class LoraSettings(StrictModel):
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: list[str] = ["q_proj", "k_proj", "v_proj", "o_proj"]


class CallbackSpec(StrictModel):
    """An extra ``transformers.TrainerCallback`` every worker adds to each phase's trainer (a custom logger, a
    metric sink): ``cls`` is ``"module:Class"``, importable on the workers; it is built as
    ``Class(phase=<phase kind>, step_offset=<steps of the earlier phases>, **kwargs)``."""
    cls: str
    kwargs: dict[str, Any] = {}


class PlanSettings(StrictModel):
    """Inputs of ``mathray plan`` that a recipe states (they do not affect training)."""
    model_config_json: str | None = None   # the model's config.json when ``model`` is not readable here
    mean_tokens: int | None = None          # mean tokens per sequence of the data (default: data.max_len)
    mfu: float = Field(0.35, gt=0, le=1)    # model FLOP utilisation assumed for GPU-hours


class TrainJobConfig(StrictModel):
    task: Literal[TASK_NAMES] = "ssft"     # a training task declared in ``tasks``
    model: str = outside_lineage("")  # model URI (local dir, s3:// export, hub id); identity: its fingerprint
    output: str = outside_lineage("runs/train")
    storage: str | None = outside_lineage(None)  # Ray Train storage; default <output>/ray_train
    name: str | None = outside_lineage(None)  # Ray Train run name; default train-<task>-<identity hash>
    num_workers: int = Field(1, ge=1)
    use_gpu: bool = False
    cpus_per_worker: int = outside_lineage(1, ge=1)  # CPU workers also use this many torch threads
    # fp32: fp32 weights and math (CPU); bf16-mixed: fp32 master weights, bf16 autocast; bf16: bf16 weights
    # and optimizer state (half the memory, lossier updates). auto: bf16-mixed on GPU, fp32 on CPU.
    precision: Literal["auto", "fp32", "bf16-mixed", "bf16"] = "auto"
    # ddp: replicated weights; fsdp: FSDP2 FULL_SHARD via accelerate (decoder layers wrapped); deepspeed:
    # ZeRO-3 (needs the deepspeed package on the GPU nodes). accelerate shards only on accelerators.
    sharding: Literal["ddp", "fsdp", "deepspeed"] = "ddp"
    gradient_checkpointing: bool = False
    export_dtype: Literal["auto", "float32", "bfloat16"] = "auto"   # auto: the training compute dtype
    lora: LoraSettings | None = None
    labels: LabelSettings = LabelSettings()
    data: DataConfig = DataConfig()
    optim: OptimConfig = OptimConfig()
    verifier: VerifierSettings = VerifierSettings()
    prm: PRMSettings = PRMSettings()
    sequential: SequentialSettings = SequentialSettings()
    seed: int = 0
    checkpoint_every: int = outside_lineage(50, ge=1)  # optimizer steps between Ray Train checkpoints
    keep_checkpoints: int = outside_lineage(2, ge=1)
    max_failures: int = outside_lineage(3)  # worker-group restarts before the run fails (-1: unlimited)
    # Ray Train's controller polls the workers this often (RAY_TRAIN_HEALTH_CHECK_INTERVAL_S, Ray's default
    # 2 s): a checkpoint report waits for a poll, and so does noticing the end of training. A shorter interval
    # ends every job sooner; each poll is one small actor call per worker. An explicitly set env var wins.
    controller_poll_s: float = outside_lineage(0.5, gt=0)
    log_every: int = outside_lineage(10, ge=1)  # TrainingArguments.logging_steps
    eval_every: int = outside_lineage(0, ge=0)  # steps between evaluations (0: at the end of each phase only)
    report_to: list[str] = outside_lineage(["tensorboard"])  # TrainingArguments.report_to (tensorboard, wandb, none)
    verify_inputs: bool = outside_lineage(True)  # check data shards against their commit markers' sha256 when read
    callbacks: list[CallbackSpec] = outside_lineage([])
    plan: PlanSettings = outside_lineage(PlanSettings())

    def check_runnable(self) -> None:
        """Raise ConfigError naming what a run of this task lacks (the defaults alone are not runnable)."""
        if not self.model:
            raise ConfigError("model: set the model to train (a directory, an s3:// export or a hub id)")
        missing = [k for k in TASKS[self.task].reads(self).data if not getattr(self.data, k)]
        if missing:
            raise ConfigError(f"task {self.task!r} needs data.{', data.'.join(missing)}")
        if self.sharding != "ddp" and not self.use_gpu:
            raise ConfigError(f"sharding={self.sharding!r} needs use_gpu=true: accelerate applies FSDP and "
                             "DeepSpeed only on accelerators (on CPU it would silently run DDP instead)")

    def compute_dtype(self) -> str:
        p = self.precision if self.precision != "auto" else ("bf16-mixed" if self.use_gpu else "fp32")
        return "float32" if p == "fp32" else "bfloat16"

    def resolved_precision(self) -> str:
        return self.precision if self.precision != "auto" else ("bf16-mixed" if self.use_gpu else "fp32")
