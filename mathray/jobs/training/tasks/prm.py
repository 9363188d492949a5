"""The PRM on STEP_LABELS (``data.step_labels``: PRM800K ingest, Math-Shepherd labeler): per-step cross-entropy
on (+, -) at every step tag (hard), or BCE against Math-Shepherd's soft labels (soft)."""
from __future__ import annotations

from typing import Literal

from mathray.config import StrictModel
from mathray.jobs.training import data
from mathray.jobs.training.tasks.spec import Memory, Objective, Phase, PhaseSpec, Reads


class PRMSettings(StrictModel):
    targets: Literal["hard", "soft"] = "hard"


def step_scores(trainer, model, examples):
    """p(+) over (+, -) at every tag of each example, against its hard labels (PRM and ORM evaluation)."""
    from mathray.core import readout   # imports torch: only training workers call this
    from mathray.jobs.training import objectives   # imports torch: only training workers call this

    two_way, _ = objectives.step_two_way(model, examples, trainer.label_ids, trainer.pad_id, trainer.args.device)
    flat, out, at = readout.positive_prob(two_way).tolist(), [], 0
    for e in examples:
        out.append(flat[at:at + len(e["tag_positions"])])
        at += len(e["tag_positions"])
    return out, [[float(v) for v in e["hard_labels"]] for e in examples]


def _phase(targets: str) -> PhaseSpec:
    def examples(cfg, tokenizer, labels):
        return lambda rows: data.prm_examples(tokenizer, rows, labels.step_tag, cfg.data.max_len, targets)

    def loss(trainer, model, examples):
        from mathray.jobs.training import objectives   # imports torch: only training workers call this

        return objectives.prm_loss(model, examples, trainer.label_ids, trainer.pad_id, trainer.args.device,
                                   targets)[0]

    return PhaseSpec(f"prm_{targets}", reads="step_labels", examples=examples, loss=loss, scores=step_scores)


PRM_PHASES = {"hard": _phase("hard"), "soft": _phase("soft")}
# distinct label positions a PRM example reads (its step tags) in the planner's loss-head term
PLAN_STEPS = 16

PRM = Objective(
    "prm", phases=lambda cfg: [Phase(PRM_PHASES[cfg.prm.targets], cfg.optim.steps, cfg.optim.lr, "final")],
    reads=lambda cfg: Reads(("step_labels",), {"prm": None}),
    memory=lambda cfg: Memory(read_positions=PLAN_STEPS), section="prm")
