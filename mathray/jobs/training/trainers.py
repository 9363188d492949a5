"""The ``transformers.Trainer`` of every phase: the Trainer brings the mechanics (DDP/FSDP/ZeRO-3 through
accelerate, gradient accumulation and checkpointing, mixed precision, schedules, evaluation, logging
integrations, checkpoints with RNG states); ``ObjectiveTrainer`` brings the phase's loss and eval scores from
its declaration (``tasks``: the batch functions of ``objectives``, the hand-checked ``core.losses`` on
``core.readout`` positions). SSFT is TRL's ``SFTTrainer`` itself (completion-only loss from the examples'
``completion_mask``, fused LM head).

Batches are lists of example dicts (``{"examples": [...]}``, ``collate``): the objectives pad them, so the
code a test runs on a batch is the code training runs. Evaluation (``prediction_step``) returns per-example
scores (p(positive) over the two label tokens, ``-100`` padding) and labels, from which ``eval_metrics``
computes accuracy and AUROC on the held-out problems.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from transformers import Trainer

from mathray.core import readout
from mathray.jobs.training import objectives
from mathray.jobs.training.tasks.spec import PhaseSpec

IGNORE = -100.0


def collate(batch: list[dict]) -> dict:
    return {"examples": batch}


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties); NaN with one class only."""
    pos, neg = int((labels == 1).sum()), int((labels == 0).sum())
    if pos == 0 or neg == 0:
        return math.nan
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):   # average rank over runs of equal scores
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[labels == 1].sum() - pos * (pos + 1) / 2) / (pos * neg))


def eval_metrics(pred) -> dict:
    """Accuracy (score >= 0.5 vs label) and AUROC over every scored position of the eval set."""
    scores, labels = np.asarray(pred.predictions).reshape(-1), np.asarray(pred.label_ids).reshape(-1)
    keep = labels != IGNORE
    scores, labels = scores[keep], labels[keep].astype(int)
    if not len(labels):
        return {}
    return {"accuracy": float(((scores >= 0.5).astype(int) == labels).mean()), "auroc": auroc(scores, labels),
            "positives": float(labels.mean()), "scored": float(len(labels))}


def _padded(rows: list[list[float]], device) -> torch.Tensor:
    width = max(len(r) for r in rows)
    return torch.tensor([r + [IGNORE] * (width - len(r)) for r in rows], dtype=torch.float32, device=device)


class ObjectiveTrainer(Trainer):
    """A phase's ``Trainer``: its ``PhaseSpec`` gives the loss and eval scores of a micro-batch; this class holds
    what they read (objective settings, the pad id, label ids) and counts flops from token counts."""

    def __init__(self, *args, phase: PhaseSpec, label_ids: tuple[int, int] | None = None, pad_id: int = 0,
                 settings: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.phase = phase
        self.label_ids, self.pad_id, self.settings = label_ids, pad_id, settings or {}
        # compute_loss returns a per-micro-batch mean: let the Trainer divide by the accumulation steps
        self.model_accepts_loss_kwargs = False
        if phase.prepare is not None:
            phase.prepare(self.model)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        return self.phase.loss(self, model, inputs["examples"])

    def floating_point_ops(self, inputs) -> int:
        tokens = sum(len(e["input_ids"]) for e in self._flat(inputs["examples"]))
        return 6 * tokens * sum(p.numel() for p in self.model.parameters())

    @staticmethod
    def _flat(examples):
        """Every sequence of a batch: a pair's members (and its reference), or the example itself."""
        out = []
        for e in examples:
            out += [e[k] for k in ("correct", "incorrect", "reference") if k in e] if "correct" in e else [e]
        return out

    def scores_and_labels(self, model, examples) -> tuple[list[list[float]], list[list[float]]] | None:
        return self.phase.scores(self, model, examples) if self.phase.scores is not None else None

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad():
            loss = self.compute_loss(model, inputs).detach()
            out = None if prediction_loss_only else self.scores_and_labels(model, inputs["examples"])
        if out is None:
            return loss, None, None
        return loss, _padded(out[0], loss.device), _padded(out[1], loss.device)


def sft_trainer(model, args, train: list[dict], eval_: list[dict] | None, tokenizer, callbacks):
    """TRL ``SFTTrainer`` on pre-tokenised examples: ``input_ids`` + ``completion_mask`` (= our loss mask),
    so TRL neither re-tokenises nor truncates (``max_length=None``; the builders already cut at max_len)."""
    from datasets import Dataset
    from trl import SFTTrainer

    def ds(rows):
        return Dataset.from_list([{"input_ids": e["input_ids"], "completion_mask": e["loss_mask"]} for e in rows])

    trainer = SFTTrainer(model=model, args=args, train_dataset=ds(train), eval_dataset=ds(eval_) if eval_ else None,
                         processing_class=tokenizer, callbacks=callbacks)
    setattr(readout._base_model(trainer.model), objectives.FUSED_HEAD_FLAG, True)
    return trainer
