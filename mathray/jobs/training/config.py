"""``TrainJobConfig``: one config for every trainer; ``task`` selects ssft | verifier | prm | sequential.

Defaults are documented knobs, not published values: Liu et al. publish no lambda, alpha, learning rate,
steps or batch size (METHODS.md section 9), and Lightman et al. say only "2 epochs, low lr". The defaults
below are sized for a ~1B model on a few GPUs (lr 1e-5 as the reference repo uses, cosine-free constant
schedule after a short warmup); the tiny-model configs override lr/steps.

Batching: ``batch_size`` examples per worker per micro-batch (pairs count as one example),
``grad_accum`` micro-batches per optimizer step, so one step sees
``batch_size * grad_accum * num_workers`` examples. ``steps`` counts optimizer steps.

Outputs under ``output`` (a local path or s3:// URI):

    <output>/final/                      HF model export (save_pretrained + tokenizer + mathray_export.json,
                                         completion mark _COMPLETE.json written last; runtime.models), what
                                         vLLM loads for the next sampling round
    <output>/stage1-ssft/ ...            sequential task only: the model after each stage
    <output>/run.json, config.yaml       resolved config, config hash, code version
    <storage>/<name>/checkpoint_*/       Ray Train checkpoints (model.pt, optimizer.pt, state.json)

``storage`` defaults to ``<output>/ray_train``. ``name`` defaults to ``train-<task>-<config hash>``:
re-running the same config resumes from its latest checkpoint (the Ray Train V2 restore pattern).
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from mathray.config import StrictModel
from mathray.core.prompts import PRM_LABELS, STEP_TAG, VERIFIER_LABELS


class DataConfig(StrictModel):
    ssft: list[str] = []          # PROBLEMS (reference_solution) and/or SAMPLES (correct rows) URIs
    samples: list[str] = []       # graded SAMPLES URIs: verifier candidates/pairs, sequential stage-3 pairs
    step_labels: list[str] = []   # STEP_LABELS URIs (PRM800K ingest, Math-Shepherd labeler)
    max_len: int = Field(1024, ge=8)     # tokens per sequence (reference repo: 1024)
    append_eos: bool = True              # SSFT targets end with eos so the generator learns to stop
    per_problem: int = Field(10, ge=1)   # verifier candidates (or pairs) per problem; Liu: "10 examples"
    seed: int = 0


class OptimConfig(StrictModel):
    lr: float = 1e-5              # reference repo SFT/verifier: 1e-5 (paper: not published)
    weight_decay: float = 0.0
    warmup_steps: int = Field(0, ge=0)   # linear warmup, then constant
    max_grad_norm: float = 1.0
    steps: int = Field(200, ge=1)        # Liu: "best after about 200 steps" (one note)
    batch_size: int = Field(4, ge=1)
    grad_accum: int = Field(1, ge=1)


class LoraSettings(StrictModel):
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: list[str] = ["q_proj", "k_proj", "v_proj", "o_proj"]


class VerifierSettings(StrictModel):
    loss: Literal["xent", "margin"] = "xent"
    margin: float = 1.0           # lambda of cls-margin (Liu Eq. 8): not published
    xent_over: Literal["two_way", "vocab"] = "two_way"   # softmax over the 2 label tokens or the vocabulary
    labels: tuple[str, str] = VERIFIER_LABELS
    label_ids: tuple[int, int] | None = None             # explicit (correct, incorrect) ids; else from labels


class PRMSettings(StrictModel):
    targets: Literal["hard", "soft"] = "hard"
    tag: str = STEP_TAG
    add_tag_token: bool = False   # add ``tag`` as a new special token (embeddings resized) if not one token
    tag_id: int | None = None
    labels: tuple[str, str] = PRM_LABELS
    label_ids: tuple[int, int] | None = None


class SequentialSettings(StrictModel):
    """Liu et al. 2.4: stage 1 SSFT, stage 2 verifier loss on the same weights, stage 3 generator with
    L_ctr = L_seq + alpha * L_mle on pairs of the generator's own graded samples (``data.samples``).
    ``control``: stage 1, then SSFT continued for stage2 + stage3 steps (same compute, no verifier)."""
    stage_steps: tuple[int, int, int] = (200, 200, 200)
    stage_lr: tuple[float, float, float] | None = None   # None: optim.lr for every stage
    margin: float = 1.0           # lambda of L_seq: not published
    alpha: float = 1.0            # weight of L_mle in L_ctr: not published
    length_normalize: bool = False   # L_seq on mean instead of summed token log-probs
    control: bool = False


class FaultInjection(StrictModel):
    """Test-only: rank 0 exits the process once, after finishing step ``exit_after_step`` (global count),
    when ``marker`` (a local file) does not exist yet; the marker makes it happen once."""
    exit_after_step: int | None = None
    marker: str | None = None


class TrainJobConfig(StrictModel):
    task: Literal["ssft", "verifier", "prm", "sequential"] = "ssft"
    model: str = ""                  # HF model directory (local); the tokenizer is loaded from it too
    output: str = "runs/train"
    storage: str | None = None       # Ray Train storage; default <output>/ray_train
    name: str | None = None          # Ray Train run name; default train-<task>-<config hash>
    num_workers: int = Field(1, ge=1)
    use_gpu: bool = False
    cpus_per_worker: int = Field(1, ge=1)   # CPU workers also use this many torch threads
    bf16: bool = True                # autocast to bfloat16 on GPU; ignored on CPU (fp32)
    lora: LoraSettings | None = None
    data: DataConfig = DataConfig()
    optim: OptimConfig = OptimConfig()
    verifier: VerifierSettings = VerifierSettings()
    prm: PRMSettings = PRMSettings()
    sequential: SequentialSettings = SequentialSettings()
    checkpoint_every: int = Field(50, ge=1)   # optimizer steps between Ray Train checkpoints
    keep_checkpoints: int = Field(2, ge=1)
    max_failures: int = 3            # worker-group restarts before the run fails (-1: unlimited)
    # Ray Train's controller polls the workers this often (RAY_TRAIN_HEALTH_CHECK_INTERVAL_S, Ray's default
    # 2 s): a checkpoint report waits for a poll, and so does noticing the end of training. 0.5 s ends every
    # job ~3 s sooner; each poll is one small actor call per worker. An explicitly set env var wins.
    controller_poll_s: float = Field(0.5, gt=0)
    log_every: int = Field(10, ge=1)  # steps between progress lines (ray.train.report only at checkpoints)
    step_log: str | None = None      # local JSONL file, one line per step on rank 0 (debugging, tests)
    seed: int = 0
    fault: FaultInjection = FaultInjection()

    def check_runnable(self) -> None:
        """Raise ValueError naming what a run of this task lacks (the defaults alone are not runnable)."""
        if not self.model:
            raise ValueError("model: set the HF model directory to train")
        need = {"ssft": ["ssft"], "verifier": ["samples"], "prm": ["step_labels"],
                "sequential": ["ssft"] if self.sequential.control else ["ssft", "samples"]}[self.task]
        missing = [k for k in need if not getattr(self.data, k)]
        if missing:
            raise ValueError(f"task {self.task!r} needs data.{', data.'.join(missing)}")
