"""Where verifier and PRM scores are read from a causal LM's logits, shared by training and scoring.

Training and inference must read the same position (a public reference PRM trained one token off its
inference position). Both sides call these functions:

- Verifier (Liu et al.): the logits at the LAST token of ``verifier_prompt(P, X)`` (the token ``is``),
  restricted to the two label tokens `` correct`` / `` incorrect``; S = softmax over the two, index 0.
- PRM: the logits AT each step-tag token (positions from ``prompts.encode_prm``), restricted to the
  label tokens `` +`` / `` -``; step score = softmax over the two, index 0.

With a causal LM, ``logits[t]`` predicts token ``t+1``: reading at the tag means "which label token comes
after the tag". Training puts its target there directly (no HF label shift involved).
"""
from __future__ import annotations

from typing import Sequence

import torch


def two_way_logits(logits: torch.Tensor, label_ids: Sequence[int]) -> torch.Tensor:
    """``logits[..., V]`` -> ``[..., 2]`` over (positive, negative) label ids."""
    return logits[..., list(label_ids)]


def positive_prob(two_way: torch.Tensor) -> torch.Tensor:
    """p(positive) renormalised over the two label tokens."""
    return torch.softmax(two_way.float(), dim=-1)[..., 0]


def verifier_logits(logits: torch.Tensor, last_index: torch.Tensor | int, label_ids: Sequence[int]) -> torch.Tensor:
    """``logits[B, T, V]`` and the index of each row's last prompt token -> ``[B, 2]``."""
    idx = torch.as_tensor(last_index, device=logits.device).reshape(-1)
    rows = torch.arange(logits.shape[0], device=logits.device)
    return two_way_logits(logits[rows, idx], label_ids)


def step_logits(logits: torch.Tensor, tag_positions: Sequence[int], label_ids: Sequence[int]) -> torch.Tensor:
    """``logits[T, V]`` of one sequence and its tag positions -> ``[num_steps, 2]``."""
    pos = torch.as_tensor(list(tag_positions), dtype=torch.long, device=logits.device)
    return two_way_logits(logits[pos], label_ids)


def step_scores(logits: torch.Tensor, tag_positions: Sequence[int], label_ids: Sequence[int]) -> list[float]:
    return positive_prob(step_logits(logits, tag_positions, label_ids)).tolist()


def _base_model(model):
    """The transformers model under DDP/FSDP1 (``.module``) and peft (``get_base_model``) wrappers."""
    while hasattr(model, "module"):
        model = model.module
    if hasattr(model, "get_base_model"):
        model = model.get_base_model()
    return model


def takes_logits_to_keep(model) -> bool:
    import inspect

    return "logits_to_keep" in inspect.signature(type(_base_model(model)).forward).parameters


def logits_at(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, rows: torch.Tensor,
              cols: torch.Tensor, full: bool = False) -> torch.Tensor:
    """The full-vocabulary logits ``[N, V]`` at positions ``(rows[i], cols[i])`` of a right-padded batch.

    The LM head runs only at the positions read: transformers causal LMs take ``logits_to_keep`` as a tensor of
    sequence indices and apply their own head (soft-capping or scaling included) to ``hidden[:, indices]``; the
    distinct columns of the batch are passed, so the head output is ``[B, distinct cols, V]`` instead of
    ``[B, T, V]``. Going through the model's own forward keeps this valid under DDP, FSDP and ZeRO-3, which
    gather parameters only inside a module's forward. ``full=True`` (or a model whose forward has no
    ``logits_to_keep``) computes all logits and indexes them: the reference the fast path must equal.
    """
    if full or not takes_logits_to_keep(model):
        return model(input_ids=input_ids, attention_mask=attention_mask).logits[rows, cols]
    keep, inverse = torch.unique(cols, return_inverse=True)
    logits = model(input_ids=input_ids, attention_mask=attention_mask, logits_to_keep=keep).logits
    return logits[rows, inverse]
