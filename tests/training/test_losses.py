"""Each loss against values computed by hand on small tensors, and masking (no loss outside the mask)."""
import math

import pytest
import torch

from mathray.core import losses


def lse(*xs):
    return math.log(sum(math.exp(x) for x in xs))


def test_completion_nll_hand_value_and_mask():
    # B=1, T=3, V=2; tokens [0, 1, 0]; only token 2 is completion. It is predicted by logits[:, 1].
    logits = torch.tensor([[[5.0, -3.0], [1.0, 2.0], [7.0, 7.0]]], requires_grad=True)
    ids = torch.tensor([[0, 1, 0]])
    mask = torch.tensor([[0, 0, 1]])
    loss = losses.completion_nll(logits, ids, mask)
    assert loss.item() == pytest.approx(lse(1.0, 2.0) - 1.0, abs=1e-6)
    loss.backward()
    # logits[:, 0] predicts the masked prompt token 1 and logits[:, 2] predicts nothing: no gradient there
    assert torch.all(logits.grad[0, 0] == 0) and torch.all(logits.grad[0, 2] == 0)
    assert torch.any(logits.grad[0, 1] != 0)


def test_completion_nll_is_token_mean_over_batch():
    logits = torch.zeros(2, 4, 3)                      # row 0 uniform: each of its 3 tokens costs log 3
    logits[1, 1] = torch.tensor([2.0, 0.0, 0.0])       # row 1's one completion token (id 0) costs lse(2, 0, 0) - 2
    logits[1, 2] = torch.tensor([-5.0, 5.0, 0.0])      # predicts row 1's padding: must not count
    ids = torch.tensor([[0, 1, 2, 0], [0, 0, 0, 0]])
    mask = torch.tensor([[0, 1, 1, 1], [0, 0, 1, 0]])   # 4 completion tokens; padding at row 2 end
    row1 = lse(2.0, 0.0, 0.0) - 2.0
    # token-weighted: (3 log 3 + row1) / 4; a mean of the row means, (log 3 + row1) / 2, is another number
    want = (3 * math.log(3) + row1) / 4
    assert abs(want - (math.log(3) + row1) / 2) > 0.1
    assert losses.completion_nll(logits, ids, mask).item() == pytest.approx(want, abs=1e-6)


def test_completion_nll_rejects_bad_masks():
    with pytest.raises(ValueError, match="no token"):
        losses.completion_nll(torch.zeros(1, 3, 2), torch.zeros(1, 3, dtype=torch.long), torch.zeros(1, 3))
    with pytest.raises(ValueError, match="first token"):
        losses.completion_nll(torch.zeros(1, 3, 2), torch.zeros(1, 3, dtype=torch.long), torch.ones(1, 3))


def test_sequence_logprob_sum_and_length_normalised():
    logits = torch.tensor([[[0.0, 0.0], [2.0, 0.0], [0.0, 0.0]]])
    ids = torch.tensor([[1, 0, 1]])
    mask = torch.tensor([[0, 1, 1]])
    t1 = -math.log(2)                   # token 1 (=0) from uniform logits[0]
    t2 = 0.0 - lse(2.0, 0.0)            # token 2 (=1) from logits[1]
    assert losses.sequence_logprob(logits, ids, mask).item() == pytest.approx(t1 + t2, abs=1e-6)
    assert losses.sequence_logprob(logits, ids, mask, True).item() == pytest.approx((t1 + t2) / 2, abs=1e-6)


def test_cls_xent_two_way_and_vocab():
    # rows differ, so swapping the targets changes the value: correct row -log p(+) = log(1 + e^-(2 - 0)),
    # incorrect row -log p(-) = log(1 + e^(1 - 0)); swapped it would be log(1 + e^2) + log(1 + e^-1)
    two_way = torch.tensor([[2.0, 0.0], [1.0, 0.0]])
    correct = torch.tensor([True, False])
    expected = (math.log(1 + math.exp(-2)) + math.log(1 + math.exp(1))) / 2
    assert losses.cls_xent(two_way, correct).item() == pytest.approx(expected, abs=1e-6)
    full = torch.tensor([[2.0, 0.0, 1.0], [1.0, 0.0, 3.0]])   # label ids (0, 1); vocab softmax counts token 2
    z0, z1 = lse(2.0, 0.0, 1.0), lse(1.0, 0.0, 3.0)
    got = losses.cls_xent(full[:, :2], correct, full, (0, 1)).item()
    assert got == pytest.approx(((z0 - 2.0) + (z1 - 0.0)) / 2, abs=1e-6)


def test_cls_margin_hand_values():
    good, bad = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    log_s_good, log_s_bad = -math.log(1 + math.exp(-1)), -math.log(1 + math.exp(1))
    assert losses.cls_margin(good, bad, 2.0).item() == pytest.approx(log_s_bad - log_s_good + 2.0, abs=1e-6)
    assert losses.cls_margin(good, bad, 0.5).item() == 0.0            # separated by more than the margin
    assert losses.cls_margin(bad, good, 1.0).item() == pytest.approx(log_s_good - log_s_bad + 1.0, abs=1e-6)


def test_prm_hard_ce_targets_plus_for_good_steps():
    # good step (label 1): -log p(+) = log(1 + e^-(1 - 0)); bad step (label 0): -log p(-) = log(1 + e^(2 - 0)).
    # The two rows differ, so targeting " -" for good steps would give log(1 + e^1) + log(1 + e^-2) instead.
    two_way = torch.tensor([[1.0, 0.0], [2.0, 0.0]])
    got = losses.prm_hard_ce(two_way, torch.tensor([1, 0])).item()
    assert got == pytest.approx((math.log(1 + math.exp(-1)) + math.log(1 + math.exp(2))) / 2, abs=1e-6)


def test_prm_soft_bce_hand_value():
    r = 1 / (1 + math.exp(-1.0))        # p(+) renormalised over (+, -) for logits (1.5, 0.5)
    y = 0.25
    got = losses.prm_soft_bce(torch.tensor([[1.5, 0.5]]), torch.tensor([y])).item()
    assert got == pytest.approx(-(y * math.log(r) + (1 - y) * math.log(1 - r)), abs=1e-6)


def test_seq_margin_and_contrastive():
    lp_good, lp_bad = torch.tensor([-3.0, -1.0]), torch.tensor([-2.0, -5.0])
    # pair 1: -2 - (-3) + 0.5 = 1.5; pair 2: -5 - (-1) + 0.5 < 0 -> 0
    assert losses.seq_margin(lp_good, lp_bad, 0.5).item() == pytest.approx(0.75)
    assert losses.contrastive(lp_good, lp_bad, torch.tensor(2.0), 0.5, 0.5).item() == pytest.approx(1.75)


def test_empty_step_sets_are_errors():
    with pytest.raises(ValueError):
        losses.prm_hard_ce(torch.zeros(0, 2), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError):
        losses.prm_soft_bce(torch.zeros(0, 2), torch.zeros(0))
