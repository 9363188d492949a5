"""One micro-batch of examples (from ``training.data``) -> a scalar loss, for each training objective.

Verifier and PRM losses take their logits through ``mathray.core.readout`` (the functions the scoring job
uses), so the trained position and label tokens are the scored ones by construction. Sequences are padded
on the right, which leaves every real position (hence the readout positions) unchanged.
"""
from __future__ import annotations

from typing import Sequence

import torch

from mathray.core import readout
from mathray.core import losses


def pad(seqs: Sequence[Sequence[int]], pad_value: int, device) -> torch.Tensor:
    width = max(len(s) for s in seqs)
    out = torch.full((len(seqs), width), pad_value, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.as_tensor(list(s), dtype=torch.long)
    return out.to(device)


def forward(model, seqs: Sequence[Sequence[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Logits ``[B, T, V]``, the padded ids and the number of real tokens."""
    ids = pad(seqs, pad_id, device)
    attn = pad([[1] * len(s) for s in seqs], 0, device)
    logits = model(input_ids=ids, attention_mask=attn).logits
    return logits, ids, int(attn.sum())


def ssft_loss(model, batch: Sequence[dict], pad_id: int, device) -> tuple[torch.Tensor, int]:
    logits, ids, n = forward(model, [e["input_ids"] for e in batch], pad_id, device)
    mask = pad([e["loss_mask"] for e in batch], 0, device)
    return losses.completion_nll(logits, ids, mask), n


def verifier_xent_loss(model, batch: Sequence[dict], label_ids: tuple[int, int], pad_id: int, device,
                       over: str = "two_way") -> tuple[torch.Tensor, int]:
    logits, _, n = forward(model, [e["input_ids"] for e in batch], pad_id, device)
    last = torch.tensor([e["last_index"] for e in batch], device=device)
    two_way = readout.verifier_logits(logits, last, label_ids)
    is_correct = torch.tensor([e["is_correct"] for e in batch], device=device)
    if over == "vocab":
        rows = torch.arange(len(batch), device=device)
        return losses.cls_xent(two_way, is_correct, logits[rows, last], label_ids), n
    return losses.cls_xent(two_way, is_correct), n


def verifier_margin_loss(model, pairs: Sequence[dict], label_ids: tuple[int, int], margin: float, pad_id: int,
                         device) -> tuple[torch.Tensor, int]:
    """One forward over the correct then the incorrect member of every pair."""
    members = [p["correct"] for p in pairs] + [p["incorrect"] for p in pairs]
    logits, _, n = forward(model, [e["input_ids"] for e in members], pad_id, device)
    two_way = readout.verifier_logits(logits, torch.tensor([e["last_index"] for e in members], device=device),
                                      label_ids)
    k = len(pairs)
    return losses.cls_margin(two_way[:k], two_way[k:], margin), n


def prm_loss(model, batch: Sequence[dict], label_ids: tuple[int, int], pad_id: int, device,
             targets: str = "hard") -> tuple[torch.Tensor, int]:
    logits, _, n = forward(model, [e["input_ids"] for e in batch], pad_id, device)
    two_way = torch.cat([readout.step_logits(logits[i], e["tag_positions"], label_ids)
                         for i, e in enumerate(batch)])
    if targets == "soft":
        soft = torch.tensor([v for e in batch for v in e["soft_labels"]], device=device)
        return losses.prm_soft_bce(two_way, soft), n
    hard = torch.tensor([v for e in batch for v in e["hard_labels"]], device=device)
    return losses.prm_hard_ce(two_way, hard), n


def contrastive_loss(model, pairs: Sequence[dict], margin: float, alpha: float, length_normalize: bool,
                     pad_id: int, device) -> tuple[torch.Tensor, int]:
    """L_ctr = L_seq(pairs) + alpha * L_mle(correct members), one forward over both members."""
    members = [p["correct"] for p in pairs] + [p["incorrect"] for p in pairs]
    logits, ids, n = forward(model, [e["input_ids"] for e in members], pad_id, device)
    mask = pad([e["loss_mask"] for e in members], 0, device)
    logp = losses.sequence_logprob(logits, ids, mask, length_normalize)
    k = len(pairs)
    mle = losses.completion_nll(logits[:k], ids[:k], mask[:k])
    return losses.contrastive(logp[:k], logp[k:], mle, margin, alpha), n
