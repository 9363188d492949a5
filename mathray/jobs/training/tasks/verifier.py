"""The Liu et al. verifier on graded SAMPLES (``data.samples``): cls-xent (Eq. 9) on balanced candidates, or
cls-margin (Eq. 8) on (correct, incorrect) pairs of one problem; the label is read at the last prompt token
(``readout.verifier_logits``), where the scorer reads it."""
from __future__ import annotations

from typing import Literal

from mathray.config import StrictModel
from mathray.jobs.training import data
from mathray.jobs.training.tasks.spec import Memory, Objective, Phase, PhaseSpec, Reads


class VerifierSettings(StrictModel):
    loss: Literal["xent", "margin"] = "xent"
    margin: float = 1.0           # lambda of cls-margin (Liu Eq. 8): not published
    xent_over: Literal["two_way", "vocab"] = "two_way"   # softmax over the 2 label tokens or the vocabulary


def _xent_examples(cfg, tokenizer, labels):
    d = cfg.data
    return lambda rows: data.verifier_examples(tokenizer, rows, d.per_problem, d.max_len, d.seed,
                                               labels.verifier_suffix)


def _pair_examples(cfg, tokenizer, labels):
    d = cfg.data
    return lambda rows: data.verifier_pair_examples(tokenizer, rows, d.per_problem, d.max_len, d.seed,
                                                    labels.verifier_suffix)


def _xent_loss(trainer, model, examples):
    from mathray.jobs.training import objectives   # imports torch: only training workers call this

    return objectives.verifier_xent_loss(model, examples, trainer.label_ids, trainer.pad_id, trainer.args.device,
                                         trainer.settings.get("xent_over", "two_way"))[0]


def _margin_loss(trainer, model, pairs):
    from mathray.jobs.training import objectives   # imports torch: only training workers call this

    return objectives.verifier_margin_loss(model, pairs, trainer.label_ids, trainer.settings["margin"],
                                           trainer.pad_id, trainer.args.device)[0]


def _scores(trainer, model, examples):
    """S = p(positive) over the two label tokens per candidate, against its is_correct."""
    from mathray.core import readout   # imports torch: only training workers call this
    from mathray.jobs.training import objectives   # imports torch: only training workers call this

    two_way, _, _ = objectives.verifier_two_way(model, examples, trainer.label_ids, trainer.pad_id,
                                                trainer.args.device)
    s = readout.positive_prob(two_way).tolist()
    return [[v] for v in s], [[float(e["is_correct"])] for e in examples]


def _pair_scores(trainer, model, pairs):
    """S of each pair's correct then incorrect member, labelled 1 and 0."""
    from mathray.core import readout   # imports torch: only training workers call this
    from mathray.jobs.training import objectives   # imports torch: only training workers call this

    members = [p["correct"] for p in pairs] + [p["incorrect"] for p in pairs]
    two_way, _, _ = objectives.verifier_two_way(model, members, trainer.label_ids, trainer.pad_id,
                                                trainer.args.device)
    s, k = readout.positive_prob(two_way).tolist(), len(pairs)
    return [[s[i], s[k + i]] for i in range(k)], [[1.0, 0.0]] * k


VERIFIER_PHASES = {
    "xent": PhaseSpec("verifier_xent", reads="samples", examples=_xent_examples, loss=_xent_loss, scores=_scores,
                      label_tokens="verifier", settings="verifier"),
    "margin": PhaseSpec("verifier_margin", reads="samples", examples=_pair_examples, loss=_margin_loss,
                        scores=_pair_scores, label_tokens="verifier", settings="verifier"),
}


def verifier_phase(cfg) -> PhaseSpec:
    return VERIFIER_PHASES[cfg.verifier.loss]


VERIFIER = Objective(
    "verifier", phases=lambda cfg: [Phase(verifier_phase(cfg), cfg.optim.steps, cfg.optim.lr, "final")],
    reads=lambda cfg: Reads(("samples",), {"verifier": None}),
    memory=lambda cfg: Memory(sequences=2 if cfg.verifier.loss == "margin" else 1, read_positions=1),
    section="verifier")
