"""Train/infer alignment: the logits position (and label tokens) a training target sits on is the one the
scoring readout (``mathray.core.readout``) reads, for the PRM and the verifier; plus objective masking.

A fixed-logits module stands in for the model (pure logic under test: which positions the losses use);
inputs come from the real tiny-model tokenizer through ``prompts.encode_prm`` / ``verifier_prompt``.
"""
from types import SimpleNamespace

import pytest
import torch

from helpers.completion_nll import ssft_loss
from mathray.core import prompts, readout
from mathray.jobs.tiny_model import build_tiny_model
from mathray.jobs.training import data, objectives


class FixedLogits(torch.nn.Module):
    def __init__(self, batch, length, vocab):
        super().__init__()
        self.logits = torch.nn.Parameter(torch.randn(batch, length, vocab, generator=torch.Generator().manual_seed(0)))

    def forward(self, input_ids, attention_mask):
        return SimpleNamespace(logits=self.logits[: input_ids.shape[0], : input_ids.shape[1]])


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(build_tiny_model(tmp_path_factory.mktemp("tiny")))


def test_prm_target_positions_are_the_scored_positions(tokenizer):
    tag = prompts.single_token_id(tokenizer, prompts.STEP_TAG)
    labels = tuple(prompts.single_token_id(tokenizer, s) for s in prompts.PRM_LABELS)
    steps, hard = ["3 * 4 = 12", "12 + 5 = 17", "17 - 2 = 16", "The answer is \\boxed{16}."], [1, 0, 1, 0]
    ex = data.prm_example(tokenizer, prompts.plain_prompt("Compute 3 * 4 + 5 - 2."), steps, hard, None, tag, max_len=512)
    ids, positions = prompts.encode_prm(tokenizer, prompts.plain_prompt("Compute 3 * 4 + 5 - 2."), steps, tag)
    assert ex["input_ids"] == ids and ex["tag_positions"] == positions
    assert all(ids[p] == tag for p in positions)

    model = FixedLogits(1, len(ids), len(tokenizer))
    loss, _ = objectives.prm_loss(model, [ex], labels, pad_id=0, device="cpu")
    loss.backward()
    train_grad = model.logits.grad[0]
    # training: gradient only at the tag positions and only on the two label columns
    used = train_grad.abs().sum(-1).nonzero().flatten().tolist()
    assert used == positions
    assert set(train_grad[positions].abs().sum(0).nonzero().flatten().tolist()) == set(labels)
    # step i's target sits at positions[i]: pushing " +" up for a good step, down for a bad one
    for i, p in enumerate(positions):
        assert (train_grad[p, labels[0]] < 0) == (hard[i] == 1)

    # scoring: step i's score depends on exactly the logits row positions[i]
    logits = model.logits.detach()[0].clone().requires_grad_(True)
    scores = readout.positive_prob(readout.step_logits(logits, positions, labels))
    for i, p in enumerate(positions):
        (g,) = torch.autograd.grad(scores[i], logits, retain_graph=True)
        assert g.abs().sum(-1).nonzero().flatten().tolist() == [p]
    # and it is p(" +") over the two labels there: sigmoid(z+ - z-) of that row, computed apart from readout
    z = model.logits.detach()[0]
    want = [torch.sigmoid(z[p, labels[0]] - z[p, labels[1]]).item() for p in positions]
    assert scores.tolist() == pytest.approx(want, abs=1e-6)
    assert readout.step_scores(logits.detach(), positions, labels) == pytest.approx(want, abs=1e-6)


def test_prm_alignment_survives_right_padding(tokenizer):
    tag = prompts.single_token_id(tokenizer, prompts.STEP_TAG)
    labels = tuple(prompts.single_token_id(tokenizer, s) for s in prompts.PRM_LABELS)
    short = data.prm_example(tokenizer, prompts.plain_prompt("What is 2 + 2?"), ["2 + 2 = 4"], [1], None, tag, 512)
    long = data.prm_example(tokenizer, prompts.plain_prompt("Compute 9 * 9 - 1."), ["9 * 9 = 81", "81 - 1 = 80"], [1, 1], None, tag, 512)
    model = FixedLogits(2, len(long["input_ids"]), len(tokenizer))
    loss, _ = objectives.prm_loss(model, [short, long], labels, pad_id=0, device="cpu")
    loss.backward()
    assert model.logits.grad[0].abs().sum(-1).nonzero().flatten().tolist() == short["tag_positions"]
    assert model.logits.grad[1].abs().sum(-1).nonzero().flatten().tolist() == long["tag_positions"]


def test_verifier_target_is_the_scored_last_prompt_token(tokenizer):
    labels = tuple(prompts.single_token_id(tokenizer, s) for s in prompts.VERIFIER_LABELS)
    good = data.verifier_example(tokenizer, "Compute 2 + 3.", "2 + 3 = 5\nThe answer is \\boxed{5}.", True, 512)
    bad = data.verifier_example(tokenizer, "Compute 2 + 3.", "2 + 3 = 6\nThe answer is \\boxed{6}.", False, 512)
    model = FixedLogits(2, max(len(good["input_ids"]), len(bad["input_ids"])), len(tokenizer))
    for loss_fn in (lambda: objectives.verifier_xent_loss(model, [good, bad], labels, 0, "cpu"),
                    lambda: objectives.verifier_margin_loss(model, [{"correct": good, "incorrect": bad}],
                                                            labels, 100.0, 0, "cpu")):
        model.zero_grad()
        loss_fn()[0].backward()
        g = model.logits.grad
        for row, ex in enumerate([good, bad]):
            assert g[row].abs().sum(-1).nonzero().flatten().tolist() == [ex["last_index"]]
            assert set(g[row, ex["last_index"]].nonzero().flatten().tolist()) == set(labels)
        assert g[0, good["last_index"], labels[0]] < 0 and g[1, bad["last_index"], labels[0]] > 0
    # the scorer reads the same row
    two_way = readout.verifier_logits(model.logits.detach(), [good["last_index"], bad["last_index"]], labels)
    assert torch.equal(two_way[0], model.logits.detach()[0, good["last_index"], list(labels)])


def test_ssft_and_contrastive_ignore_prompt_positions(tokenizer):
    a = data.ssft_example(tokenizer, "Compute 1 + 1.", "1 + 1 = 2", 512, tokenizer.eos_token_id)
    b = data.ssft_example(tokenizer, "Compute 1 + 1.", "1 + 1 = 3", 512, tokenizer.eos_token_id)
    n_prompt = a["loss_mask"].index(1)
    model = FixedLogits(2, max(len(a["input_ids"]), len(b["input_ids"])), len(tokenizer))
    ssft_loss(model, [a], 0, "cpu")[0].backward()
    rows = model.logits.grad[0].abs().sum(-1).nonzero().flatten().tolist()
    # token t is predicted at t - 1: gradient rows are the completion positions minus one
    assert rows == list(range(n_prompt - 1, len(a["input_ids"]) - 1))
    model.zero_grad()
    objectives.contrastive_loss(model, [{"correct": a, "incorrect": b}], margin=100.0, alpha=1.0,
                                length_normalize=False, pad_id=0, device="cpu")[0].backward()
    for row, ex in enumerate([a, b]):
        used = model.logits.grad[row].abs().sum(-1).nonzero().flatten().tolist()
        assert used == list(range(n_prompt - 1, len(ex["input_ids"]) - 1))


def test_contrastive_mle_on_references_when_pairs_carry_them(tokenizer):
    """L_ctr = L_seq(pairs) + alpha * NLL(references): the pairs' correct members then count in L_seq only."""
    from mathray.core import losses

    eos = tokenizer.eos_token_id
    a = data.ssft_example(tokenizer, "Compute 2 * 3.", "2 * 3 = 6", 512, eos)
    b = data.ssft_example(tokenizer, "Compute 2 * 3.", "2 * 3 = 7", 512, eos)
    ref = data.ssft_example(tokenizer, "Compute 4 + 5.", "4 + 5 = 9", 512, eos)
    width = max(len(e["input_ids"]) for e in (a, b, ref))
    model = FixedLogits(3, width, len(tokenizer))
    margin, alpha = 100.0, 0.5
    got, _ = objectives.contrastive_loss(model, [{"correct": a, "incorrect": b, "reference": ref}], margin, alpha,
                                         False, 0, "cpu")

    def logp(row, ex):   # summed log p of ex's completion under row `row` of the fixed logits
        ids = torch.tensor([ex["input_ids"]])
        mask = torch.tensor([ex["loss_mask"]])
        lp = losses.token_logprobs(model.logits[row: row + 1, : ids.shape[1]], ids) * mask
        return lp.sum(), mask.sum()

    (lp_a, _), (lp_b, _), (lp_ref, n_ref) = logp(0, a), logp(1, b), logp(2, ref)
    want = torch.relu(lp_b - lp_a + margin) + alpha * (-lp_ref / n_ref)
    assert got.item() == pytest.approx(want.item(), rel=1e-5)
    without, _ = objectives.contrastive_loss(model, [{"correct": a, "incorrect": b}], margin, alpha, False, 0, "cpu")
    assert without.item() != pytest.approx(got.item())
    with pytest.raises(ValueError, match="all or none"):
        objectives.contrastive_loss(model, [{"correct": a, "incorrect": b, "reference": ref},
                                            {"correct": a, "incorrect": b}], margin, alpha, False, 0, "cpu")


def test_with_references_uses_every_pair_and_every_reference():
    pairs = [{"correct": {"id": f"c{i}"}, "incorrect": {"id": f"i{i}"}} for i in range(3)]
    refs = [{"id": f"r{i}"} for i in range(7)]
    out = data.with_references(pairs, refs, seed=0)
    assert len(out) == 7
    assert {e["reference"]["id"] for e in out} == {r["id"] for r in refs}
    assert {e["correct"]["id"] for e in out} == {"c0", "c1", "c2"}
    assert out == data.with_references(pairs, refs, seed=0)      # deterministic in the seed
    assert len(data.with_references(pairs * 4, refs, seed=0)) == 12
    held = data.with_references(pairs, refs, seed=0, cycle_pairs=False)   # evaluation: each pair once
    assert [e["correct"] for e in held] == [p["correct"] for p in pairs] and all("reference" in e for e in held)
    assert data.with_references([], refs, 0) == [] and data.with_references(pairs, [], 0) == []
