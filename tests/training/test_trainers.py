"""The Trainer side of the objectives: TRL's SFT loss equals the hand-checked ``completion_nll``, the fused-head
L_ctr equals the full-logits one, eval metrics (accuracy, AUROC) on hand values, and the training readout
reads the same positions and ids as before the switch to ``logits_to_keep``."""
import math

import numpy as np
import pytest
import torch

from helpers.completion_nll import ssft_loss
from mathray.core import losses
from mathray.jobs.training import data, objectives, trainers


@pytest.fixture(scope="module")
def tok_model(tiny_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model), AutoModelForCausalLM.from_pretrained(tiny_model)


def ssft_batch(tok):
    return [data.ssft_example(tok, "Compute 1 + 2.", "1 + 2 = 3\nThe answer is \\boxed{3}.", 256, tok.eos_token_id),
            data.ssft_example(tok, "Compute 12 * 3 - 4.", "12 * 3 = 36\n36 - 4 = 32", 256, tok.eos_token_id)]


def test_sft_trainer_loss_is_the_completion_nll(tok_model, tmp_path):
    from trl import SFTConfig

    tok, model = tok_model
    batch = ssft_batch(tok)
    ids = objectives.pad([e["input_ids"] for e in batch], tok.pad_token_id, "cpu")
    attn = objectives.pad([[1] * len(e["input_ids"]) for e in batch], 0, "cpu")
    mask = objectives.pad([e["loss_mask"] for e in batch], 0, "cpu")
    with torch.no_grad():
        expected = losses.completion_nll(model(input_ids=ids, attention_mask=attn).logits, ids, mask).item()
    args = SFTConfig(output_dir=str(tmp_path), max_length=None, use_cpu=True, report_to="none",
                     per_device_train_batch_size=2, completion_only_loss=True)
    trainer = trainers.sft_trainer(model, args, batch, None, tok, [])
    inputs = trainer._prepare_inputs(trainer.data_collator([trainer.train_dataset[i] for i in range(2)]))
    with torch.no_grad():
        got = trainer.compute_loss(trainer.model, inputs).item()
        fused, _ = ssft_loss(trainer.model, batch, tok.pad_token_id, "cpu")   # our fused-head path
    assert got == pytest.approx(expected, rel=1e-5)
    assert fused.item() == pytest.approx(expected, rel=1e-5)


def test_contrastive_fused_head_equals_full_logits(tok_model):
    import copy

    tok, model = tok_model
    a, b = ssft_batch(tok)
    pairs = [{"correct": a, "incorrect": b}]
    plain = copy.deepcopy(model)
    fused = copy.deepcopy(model)
    objectives.add_fused_head(fused)
    ref, _ = objectives.contrastive_loss(plain, pairs, 1.0, 0.5, False, tok.pad_token_id, "cpu")
    got, _ = objectives.contrastive_loss(fused, pairs, 1.0, 0.5, False, tok.pad_token_id, "cpu")
    assert got.item() == pytest.approx(ref.item(), rel=1e-5)
    g_ref = torch.autograd.grad(ref, plain.model.embed_tokens.weight)[0]
    g_got = torch.autograd.grad(got, fused.model.embed_tokens.weight)[0]
    assert torch.allclose(g_ref, g_got, atol=1e-5)


def test_auroc_and_accuracy_hand_values():
    scores, labels = np.array([0.9, 0.8, 0.3, 0.6, 0.1]), np.array([1, 0, 1, 0, 0])
    # positive/negative pairs ranked right: (0.9 > 0.8, 0.6, 0.1) 3 + (0.3 > 0.1) 1 = 4 of 6
    assert trainers.auroc(scores, labels) == pytest.approx(4 / 6)
    assert trainers.auroc(np.array([0.5, 0.5]), np.array([1, 0])) == pytest.approx(0.5)   # tie: half
    assert math.isnan(trainers.auroc(np.array([0.5]), np.array([1])))

    class Pred:
        predictions = np.array([[0.9, -100], [0.2, 0.7]])
        label_ids = np.array([[1, -100], [1, 0]])
    m = trainers.eval_metrics(Pred())
    assert m["accuracy"] == pytest.approx(1 / 3) and m["scored"] == 3 and m["auroc"] == pytest.approx(0.5)
