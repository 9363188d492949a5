"""The training losses, as pure functions of logits and masks (no model, no data loading).

Shapes: ``B`` batch, ``T`` sequence length, ``V`` vocabulary. ``two_way`` tensors are ``[..., 2]`` logits over
the (positive, negative) label tokens, as ``mathray.core.readout`` extracts them; the verifier score
S = softmax(two_way)[..., 0] and the PRM step score is the same renormalisation (docs/methods.md, sections 2 and 4).

- ``completion_nll``: completion-only MLE (SSFT, docs/methods.md section 2): mean -log p of the tokens whose
  ``loss_mask`` is 1; prompt and padding positions contribute nothing.
- ``sequence_logprob``: log p(X|P) summed (or length-normalised) over each row's completion tokens.
- ``cls_xent`` / ``cls_margin``: the Liu et al. verifier losses (Eq. 9 / Eq. 8).
- ``prm_hard_ce`` / ``prm_soft_bce``: per-step CE on (+, -) and BCE on a soft label (Math-Shepherd).
- ``seq_margin`` and ``contrastive``: L_seq and L_ctr = L_seq + alpha * L_mle (docs/methods.md section 2).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def token_logprobs(logits: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """``[B, T, V]``, ``[B, T]`` -> ``[B, T]``: log p(input_ids[t] | < t); position 0 (no context) is 0.

    ``logits[:, t]`` predicts token ``t + 1``, so the log-prob of token t is read from ``logits[:, t - 1]``.
    """
    logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    picked = logp.gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    return F.pad(picked, (1, 0), value=0.0)


def _check_mask(loss_mask: torch.Tensor) -> torch.Tensor:
    mask = loss_mask.to(torch.float32)
    if mask[:, 0].any():
        raise ValueError("loss_mask[:, 0] must be 0: the first token has no context to predict it")
    return mask


def masked_sequence_logprob(token_logp: torch.Tensor, loss_mask: torch.Tensor,
                            length_normalize: bool = False) -> torch.Tensor:
    """``[B]`` from per-token log-probs ``[B, T]`` (as ``token_logprobs`` lays them out, or as a fused LM head
    computes them without the logits): sum over masked tokens, or their mean with ``length_normalize``."""
    mask = _check_mask(loss_mask)
    total = (token_logp * mask).sum(-1)
    return total / mask.sum(-1).clamp(min=1.0) if length_normalize else total


def masked_nll(token_logp: torch.Tensor, loss_mask: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood over all masked tokens of the batch (token-weighted)."""
    mask = _check_mask(loss_mask)
    n = mask.sum()
    if n == 0:
        raise ValueError("completion_nll: no token has loss_mask 1")
    return -(token_logp * mask).sum() / n


def sequence_logprob(logits: torch.Tensor, input_ids: torch.Tensor, loss_mask: torch.Tensor,
                     length_normalize: bool = False) -> torch.Tensor:
    """``[B]``: sum over the masked (completion) tokens of log p(token | prefix); with
    ``length_normalize`` the sum is divided by the number of masked tokens."""
    _check_mask(loss_mask)
    return masked_sequence_logprob(token_logprobs(logits, input_ids), loss_mask, length_normalize)


def completion_nll(logits: torch.Tensor, input_ids: torch.Tensor, loss_mask: torch.Tensor) -> torch.Tensor:
    """L_mle: mean negative log-likelihood over all masked tokens of the batch (token-weighted)."""
    _check_mask(loss_mask)
    return masked_nll(token_logprobs(logits, input_ids), loss_mask)


def log_score(two_way: torch.Tensor) -> torch.Tensor:
    """log S = log p(positive) renormalised over the two label tokens."""
    return torch.log_softmax(two_way.float(), dim=-1)[..., 0]


def cls_xent(two_way: torch.Tensor, is_correct: torch.Tensor, full_vocab_logits: torch.Tensor | None = None,
             label_ids: tuple[int, int] | None = None) -> torch.Tensor:
    """L_cls-xent (Liu Eq. 9), mean over the batch: -log p(" correct") for correct candidates and
    -log p(" incorrect") for incorrect ones.

    By default p is renormalised over the two label tokens (the same distribution the score S uses);
    pass ``full_vocab_logits`` ``[B, V]`` and ``label_ids`` to use the full-vocabulary softmax instead
    (the paper does not say which; docs/methods.md section 2)."""
    target = (~is_correct.bool()).long()          # 0 -> positive label, 1 -> negative label
    if full_vocab_logits is None:
        return F.cross_entropy(two_way.float(), target)
    logp = torch.log_softmax(full_vocab_logits.float(), dim=-1)[:, list(label_ids)]
    return -logp.gather(-1, target.unsqueeze(-1)).mean()


def cls_margin(two_way_correct: torch.Tensor, two_way_incorrect: torch.Tensor, margin: float) -> torch.Tensor:
    """L_cls-margin (Liu Eq. 8), mean over pairs: max(0, log S(X_inc) - log S(X_cor) + margin)."""
    return torch.relu(log_score(two_way_incorrect) - log_score(two_way_correct) + margin).mean()


def prm_hard_ce(two_way: torch.Tensor, hard_labels: torch.Tensor) -> torch.Tensor:
    """Mean over steps of cross-entropy on (+, -): label 1 (good step) -> " +", 0 -> " -"."""
    if two_way.shape[0] == 0:
        raise ValueError("prm_hard_ce: no labelled step")
    return F.cross_entropy(two_way.float(), (hard_labels == 0).long())


def prm_soft_bce(two_way: torch.Tensor, soft_labels: torch.Tensor) -> torch.Tensor:
    """Mean over steps of BCE(r, y) with r = p(" +") renormalised over (+, -) and y in [0, 1]
    (Math-Shepherd soft estimation). sigmoid(z+ - z-) equals that renormalised p(" +")."""
    if two_way.shape[0] == 0:
        raise ValueError("prm_soft_bce: no labelled step")
    z = two_way.float()
    return F.binary_cross_entropy_with_logits(z[:, 0] - z[:, 1], soft_labels.float())


def seq_margin(logp_correct: torch.Tensor, logp_incorrect: torch.Tensor, margin: float) -> torch.Tensor:
    """L_seq (Liu 2.4), mean over pairs: max(0, log p(X_inc|P) - log p(X_cor|P) + margin)."""
    return torch.relu(logp_incorrect - logp_correct + margin).mean()


def contrastive(logp_correct: torch.Tensor, logp_incorrect: torch.Tensor, mle: torch.Tensor,
                margin: float, alpha: float) -> torch.Tensor:
    """L_ctr = L_seq + alpha * L_mle."""
    return seq_margin(logp_correct, logp_incorrect, margin) + alpha * mle
