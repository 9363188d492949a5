"""Liu et al.'s sequential multi-task recipe (2.4): stage 1 SSFT, stage 2 the verifier loss on the same weights,
stage 3 the generator on L_ctr = L_seq + alpha * L_mle; its ``control``: stage 1, then SSFT continued for the
stage 2 + stage 3 steps (same compute, no verifier)."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from mathray.config import StrictModel
from mathray.jobs.training import data
from mathray.jobs.training.tasks.spec import Memory, Objective, Phase, PhaseSpec, Reads, eos_id, load_rows
from mathray.jobs.training.tasks.ssft import SSFT_PHASE
from mathray.jobs.training.tasks.verifier import verifier_phase


class SequentialSettings(StrictModel):
    """Liu et al. 2.4: stage 1 SSFT, stage 2 verifier loss on the same weights, stage 3 generator with
    L_ctr = L_seq + alpha * L_mle: L_seq on pairs of the generator's own graded samples (``data.samples``),
    L_mle on the SSFT reference solutions (``data.ssft``; ``mle_data="pairs"``: on the pairs' correct members).
    ``control``: stage 1, then SSFT continued for stage2 + stage3 steps (same compute, no verifier)."""
    # stage 1 may be 0: the model is then taken as the SSFT generator (the pipeline's SSFT export)
    stage_steps: tuple[Annotated[int, Field(ge=0)], Annotated[int, Field(ge=1)], Annotated[int, Field(ge=1)]] = (
        200, 200, 200)
    stage_lr: tuple[float, float, float] | None = None   # None: optim.lr for every stage
    margin: float = 1.0           # lambda of L_seq: not published
    alpha: float = 1.0            # weight of L_mle in L_ctr: not published
    length_normalize: bool = False   # L_seq on mean instead of summed token log-probs
    # what L_mle is the likelihood of: the fine-tuning references, as in SLiC (Zhao et al. 2023), whose
    # calibration loss L_ctr follows (its regulariser is cross-entropy on the gold targets); or the correct
    # members of the L_seq pairs (the model's own samples of far fewer problems)
    mle_data: Literal["references", "pairs"] = "references"
    control: bool = False


def _pair_examples(cfg, tokenizer, labels):
    d = cfg.data
    return lambda rows: data.generator_pair_examples(tokenizer, rows, d.per_problem, d.max_len,
                                                     eos_id(cfg, tokenizer), d.seed)


def _with_references(cfg, tokenizer, train, held, stats):
    """``mle_data=references``: each L_seq pair carries an SSFT reference example for L_mle."""
    if cfg.sequential.mle_data != "references":
        return train, held, stats
    d = cfg.data
    references, ref_stats = data.ssft_examples(tokenizer, load_rows(d.ssft, cfg.verify_inputs), d.max_len,
                                               eos_id(cfg, tokenizer))
    if not references:
        raise ValueError(f"phase contrastive: mle_data=references but data.ssft gives no SSFT example "
                         f"({ref_stats}); set data.ssft or sequential.mle_data=pairs")
    stats = {**stats, "pairs": len(train), "references": len(references)}
    return (data.with_references(train, references, d.seed),
            data.with_references(held, references, d.seed, cycle_pairs=False), stats)


def _fused_head(model) -> None:
    from mathray.core import readout   # imports torch: only training workers call this
    from mathray.jobs.training import objectives   # imports torch: only training workers call this

    objectives.add_fused_head(readout._base_model(model))


def _contrastive_loss(trainer, model, pairs):
    from mathray.jobs.training import objectives   # imports torch: only training workers call this

    s = trainer.settings
    return objectives.contrastive_loss(model, pairs, s["margin"], s["alpha"], s["length_normalize"],
                                       trainer.pad_id, trainer.args.device)[0]


CONTRASTIVE_PHASE = PhaseSpec("contrastive", reads="samples", examples=_pair_examples, loss=_contrastive_loss,
                              settings="sequential", prepare=_fused_head, extend=_with_references)


def _phases(cfg) -> list[Phase]:
    s = cfg.sequential
    steps, lrs = s.stage_steps, s.stage_lr or (cfg.optim.lr,) * 3
    if s.control:
        plan = [Phase(SSFT_PHASE, steps[0], lrs[0], "stage1-ssft"),
                Phase(SSFT_PHASE, steps[1] + steps[2], lrs[2], "final")]
    else:
        plan = [Phase(SSFT_PHASE, steps[0], lrs[0], "stage1-ssft"),
                Phase(verifier_phase(cfg), steps[1], lrs[1], "stage2-verifier"),
                Phase(CONTRASTIVE_PHASE, steps[2], lrs[2], "final")]
    # stage_steps[0] == 0: the model is already the SSFT generator (the pipeline starts from its SSFT export)
    return plan[1:] if steps[0] == 0 else plan


def _reads(cfg) -> Reads:
    if cfg.sequential.control:   # the SSFT control: its step plan (SSFT for stage2 + stage3 steps) on the SSFT data
        return Reads(("ssft",), {"sequential": ("stage_steps", "stage_lr", "control")})
    return Reads(("ssft", "samples"), {"verifier": None, "sequential": None})


SEQUENTIAL = Objective("sequential", phases=_phases, reads=_reads, memory=lambda cfg: Memory(sequences=2),
                       section="sequential")
