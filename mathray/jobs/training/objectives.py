"""One micro-batch of examples (from ``training.data``) -> a scalar loss, for each training objective; the
task declarations (``tasks``) call these as their phases' losses.

Memory: no objective materialises the ``[B, T, vocab]`` logits of a transformers model.
- Verifier, PRM and ORM read two label tokens at a few positions: ``readout.logits_at`` runs the LM head at
  those positions only (``logits_to_keep``), the function the scorer uses, so the trained position and label
  tokens are the scored ones by construction.
- SSFT (through TRL's ``SFTTrainer``) and L_ctr need log p(token) at every completion token: TRL's fused LM
  head (``trl.trainer.utils.add_fused_lm_head``) computes them in vocabulary tiles inside the model's forward
  (valid under DDP/FSDP/ZeRO-3), never building the logits; ``token_logprobs`` uses it when the model has it.
A model without these paths (a test double returning fixed logits) goes through the full logits, read at
the same positions. Sequences are padded on the right, which leaves every real position unchanged.
"""
from __future__ import annotations

from typing import Sequence

import torch

from mathray.core import losses, readout

FUSED_HEAD_FLAG = "_mathray_fused_head"


def pad(seqs: Sequence[Sequence[int]], pad_value: int, device) -> torch.Tensor:
    width = max(len(s) for s in seqs)
    out = torch.full((len(seqs), width), pad_value, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.as_tensor(list(s), dtype=torch.long)
    return out.to(device)


def _inputs(seqs: Sequence[Sequence[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor, int]:
    ids = pad(seqs, pad_id, device)
    attn = pad([[1] * len(s) for s in seqs], 0, device)
    return ids, attn, int(attn.sum())


def add_fused_head(model) -> None:
    """TRL's fused LM head on the transformers model (before peft wraps it), marked for ``token_logprobs``."""
    from trl.trainer.utils import add_fused_lm_head

    add_fused_lm_head(model)
    setattr(model, FUSED_HEAD_FLAG, True)


def token_logprobs(model, ids: torch.Tensor, attn: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``[B, T]`` log p(ids[t] | < t) where ``mask`` is 1 (0 elsewhere; position 0 is 0)."""
    if getattr(readout._base_model(model), FUSED_HEAD_FLAG, False):
        labels = ids.masked_fill(mask == 0, -100)
        out = model(input_ids=ids, attention_mask=attn, labels=labels, fused_lm_head=True)
        return torch.nn.functional.pad(out.log_probs.float(), (1, 0), value=0.0)
    return losses.token_logprobs(model(input_ids=ids, attention_mask=attn).logits, ids) * mask


def read_logits(model, seqs: Sequence[Sequence[int]], positions: Sequence[Sequence[int]], pad_id: int,
                device, full: bool = False) -> tuple[torch.Tensor, int]:
    """Full-vocabulary logits ``[sum(len(p)), V]`` at each sequence's positions (row-major), and the token
    count."""
    ids, attn, n = _inputs(seqs, pad_id, device)
    rows = torch.tensor([i for i, p in enumerate(positions) for _ in p], device=ids.device)
    cols = torch.tensor([c for p in positions for c in p], device=ids.device)
    return readout.logits_at(model, ids, attn, rows, cols, full=full), n


def verifier_two_way(model, batch: Sequence[dict], label_ids: tuple[int, int], pad_id: int, device,
                     full: bool = False) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(``[B, 2]`` label logits at each last prompt token, ``[B, V]`` logits there, token count)."""
    logits, n = read_logits(model, [e["input_ids"] for e in batch], [[e["last_index"]] for e in batch], pad_id,
                            device, full)
    return readout.two_way_logits(logits, label_ids), logits, n


def verifier_xent_loss(model, batch: Sequence[dict], label_ids: tuple[int, int], pad_id: int, device,
                       over: str = "two_way", full: bool = False) -> tuple[torch.Tensor, int]:
    two_way, logits, n = verifier_two_way(model, batch, label_ids, pad_id, device, full)
    is_correct = torch.tensor([e["is_correct"] for e in batch], device=two_way.device)
    if over == "vocab":
        return losses.cls_xent(two_way, is_correct, logits, label_ids), n
    return losses.cls_xent(two_way, is_correct), n


def verifier_margin_loss(model, pairs: Sequence[dict], label_ids: tuple[int, int], margin: float, pad_id: int,
                         device) -> tuple[torch.Tensor, int]:
    """One forward over the correct then the incorrect member of every pair."""
    members = [p["correct"] for p in pairs] + [p["incorrect"] for p in pairs]
    two_way, _, n = verifier_two_way(model, members, label_ids, pad_id, device)
    k = len(pairs)
    return losses.cls_margin(two_way[:k], two_way[k:], margin), n


def step_two_way(model, batch: Sequence[dict], label_ids: tuple[int, int], pad_id: int,
                 device) -> tuple[torch.Tensor, int]:
    """``[total steps, 2]`` label logits at every tag position of the batch (PRM and ORM)."""
    logits, n = read_logits(model, [e["input_ids"] for e in batch], [e["tag_positions"] for e in batch], pad_id,
                            device)
    return readout.two_way_logits(logits, label_ids), n


def prm_loss(model, batch: Sequence[dict], label_ids: tuple[int, int], pad_id: int, device,
             targets: str = "hard") -> tuple[torch.Tensor, int]:
    """Per-step CE on (+, -) (hard) or BCE on soft labels; the ORM is the hard loss on one tag per example."""
    two_way, n = step_two_way(model, batch, label_ids, pad_id, device)
    if targets == "soft":
        soft = torch.tensor([v for e in batch for v in e["soft_labels"]], device=two_way.device)
        return losses.prm_soft_bce(two_way, soft), n
    hard = torch.tensor([v for e in batch for v in e["hard_labels"]], device=two_way.device)
    return losses.prm_hard_ce(two_way, hard), n


def contrastive_loss(model, pairs: Sequence[dict], margin: float, alpha: float, length_normalize: bool,
                     pad_id: int, device) -> tuple[torch.Tensor, int]:
    """L_ctr = L_seq(pairs) + alpha * L_mle, one forward over both members (and the references): L_mle on each
    pair's ``reference`` example when the pairs carry one (``data.with_references``), else on the correct
    members."""
    k = len(pairs)
    members = [p["correct"] for p in pairs] + [p["incorrect"] for p in pairs]
    references = [p["reference"] for p in pairs if "reference" in p]
    if references and len(references) != k:
        raise ValueError(f"{len(references)} of {k} pairs carry a reference example: all or none must")
    ids, attn, n = _inputs([e["input_ids"] for e in members + references], pad_id, device)
    mask = pad([e["loss_mask"] for e in members + references], 0, device)
    token_logp = token_logprobs(model, ids, attn, mask)
    logp = losses.masked_sequence_logprob(token_logp[:2 * k], mask[:2 * k], length_normalize)
    mle_rows = slice(2 * k, 3 * k) if references else slice(0, k)
    mle = losses.masked_nll(token_logp[mle_rows], mask[mle_rows])
    return losses.contrastive(logp[:k], logp[k:], mle, margin, alpha), n
