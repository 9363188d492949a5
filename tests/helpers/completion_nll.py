"""The SFT loss through mathray's own token log-prob path (the fused LM head when present), as a reference the
tests hold TRL's ``SFTTrainer`` loss and the objectives' prompt masking against."""
from __future__ import annotations

from typing import Sequence

from mathray.core import losses
from mathray.jobs.training.objectives import pad, token_logprobs


def ssft_loss(model, batch: Sequence[dict], pad_id: int, device):
    """(completion-only mean NLL of ``batch``'s SSFT examples, token count)."""
    ids = pad([e["input_ids"] for e in batch], pad_id, device)
    attn = pad([[1] * len(e["input_ids"]) for e in batch], 0, device)
    mask = pad([e["loss_mask"] for e in batch], 0, device)
    return losses.masked_nll(token_logprobs(model, ids, attn, mask), mask), int(attn.sum())
