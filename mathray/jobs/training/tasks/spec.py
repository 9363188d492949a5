"""The shape of a training task's declaration (``tasks.<name>``), read by the config check, the lineage, the
worker and the planner instead of branching on the task name.

A task (``Objective``) is a list of phases; each phase is one trainer run of a ``PhaseSpec``: the data field its
rows come from, how they become examples (``training.data``), the loss and eval scores the generic
``trainers.ObjectiveTrainer`` computes on a micro-batch (``None``: TRL's ``SFTTrainer``), the label tokens and
config section the trainer reads. Declarations import no torch: the loss and score functions import their
batch code (``training.objectives``) when called, so loading a config stays light.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from mathray.runtime.storage import ShardStore

if TYPE_CHECKING:
    from mathray.jobs.training.config import TrainJobConfig

# (trainer, model, micro-batch examples) -> a scalar loss tensor
BatchLoss = Callable[..., object]
# (trainer, model, examples) -> (per-example score lists, per-example label lists): accuracy/AUROC on eval
BatchScores = Callable[..., tuple[list[list[float]], list[list[float]]]]


@dataclass(frozen=True)
class PhaseSpec:
    """One kind of trainer run."""
    name: str                  # the phase kind in step logs, progress records and exports
    reads: str                 # the DataConfig field its rows come from: ssft | samples | step_labels
    # (cfg, tokenizer, labels) -> (rows -> (examples, stats)); the worker splits the rows into train/eval first
    examples: Callable
    loss: BatchLoss | None = None      # None: SSFT through TRL's SFTTrainer (completion-only NLL)
    scores: BatchScores | None = None  # None: eval reports the loss only
    label_tokens: str = "prm"          # the LabelTokens pair the trainer reads: verifier | prm
    settings: str | None = None        # the config section the trainer gets as ``settings``
    prepare: Callable | None = None    # (model) -> None once the Trainer holds the model (e.g. a fused LM head)
    # (cfg, tokenizer, train, held, stats) -> (train, held, stats): examples joined with another data set
    extend: Callable | None = None


@dataclass
class Phase:
    spec: PhaseSpec
    steps: int
    lr: float
    export: str        # directory under ``output`` the phase's model is published to

    @property
    def kind(self) -> str:
        return self.spec.name


@dataclass(frozen=True)
class Reads:
    """What a run's result depends on besides the model: data fields, and objective config sections (None:
    the whole section, else the fields it reads). Sections of other objectives cannot change the result."""
    data: tuple[str, ...]
    sections: dict[str, tuple[str, ...] | None]


@dataclass(frozen=True)
class Memory:
    """The loss-head terms of ``mathray plan``."""
    sequences: int = 1                  # sequences per example in a micro-batch (a pair: 2)
    read_positions: int | None = None   # label positions read per example; None: fused LM head over all tokens


@dataclass(frozen=True)
class Objective:
    """One value of ``TrainJobConfig.task``."""
    name: str
    phases: Callable[[TrainJobConfig], list[Phase]]
    reads: Callable[[TrainJobConfig], Reads]
    memory: Callable[[TrainJobConfig], Memory]
    section: str | None = None      # the TrainJobConfig field holding its settings, when it has any


def single_phase(spec: PhaseSpec) -> Callable[[TrainJobConfig], list[Phase]]:
    """The plan of a one-phase task: ``optim.steps`` at ``optim.lr``, exported as ``final``."""
    return lambda cfg: [Phase(spec, cfg.optim.steps, cfg.optim.lr, "final")]


def load_rows(uris: list[str], verify: bool = True) -> list[dict]:
    rows = []
    for uri in uris:
        rows += ShardStore(uri, verify=verify).read_all().to_pylist()
    return rows


def eos_id(cfg: TrainJobConfig, tokenizer) -> int | None:
    """The token SSFT-style targets end with (``data.append_eos``), or None."""
    return tokenizer.eos_token_id if cfg.data.append_eos else None
