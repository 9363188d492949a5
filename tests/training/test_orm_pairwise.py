"""The pairwise (Bradley-Terry) ORM: its loss against a hand computation, its pairs are ORM examples of one
problem's correct and incorrect samples, and the training job's phases (in process, tiny model) lower the loss and
yield an ORM whose scores, read by the real scorer, put each problem's visibly marked correct sample above
its incorrect ones on held-out problems."""
from __future__ import annotations

import json
import math
import random

import pyarrow as pa
import pytest
import torch
from helpers.train_callbacks import step_log

from mathray.core import readout
from mathray.core.prompts import encode_orm, sample_prompt
from mathray.core.schemas import SAMPLES, to_table
from mathray.core.toy import ToyTaskConfig, generate_problems, inject_error
from mathray.jobs.training.config import DataConfig
from mathray.jobs.training.tasks.orm_pairwise import ORM_PAIRWISE_PHASE, bradley_terry
from mathray.runtime.storage import ShardStore
from training.conftest import sample_row


def test_bradley_terry_loss_by_hand():
    correct = torch.tensor([[2.0, 0.5], [0.0, 0.0]])
    incorrect = torch.tensor([[0.0, 1.0], [1.0, -1.0]])
    # s = z(+) - z(-): correct 1.5 and 0.0, incorrect -1.0 and 2.0; -log sigmoid(d) = log(1 + e^-d)
    hand = (math.log(1 + math.exp(-(1.5 - -1.0))) + math.log(1 + math.exp(-(0.0 - 2.0)))) / 2
    assert bradley_terry(correct, incorrect).item() == pytest.approx(hand, rel=1e-6)
    # the same as -log P(correct beats incorrect) of a Bradley-Terry model whose strengths are the odds of
    # the ORM scores p(+) the scorer reads
    p_c, p_i = readout.positive_prob(correct), readout.positive_prob(incorrect)
    odds_c, odds_i = p_c / (1 - p_c), p_i / (1 - p_i)
    assert bradley_terry(correct, incorrect).item() == pytest.approx(
        (-torch.log(odds_c / (odds_c + odds_i))).mean().item(), rel=1e-5)
    # equal scores: log 2; the order of the pair's members matters
    assert bradley_terry(correct, correct).item() == pytest.approx(math.log(2))
    assert bradley_terry(incorrect, correct).item() > bradley_terry(correct, incorrect).item()


class ByteTokenizer:
    def encode(self, text, add_special_tokens=False):
        return list(text.encode())


class Labels:
    step_tag = (7,)


def test_pairs_are_orm_examples_of_one_problem():
    problems = generate_problems(ToyTaskConfig(seed=3, num_train=3, num_test=0), "train")
    rng = random.Random(0)
    rows = []
    for p in problems:
        ref = p["reference_solution"].split("\n")
        rows += [sample_row(p, 0, p["reference_solution"], True)] + [
            sample_row(p, k, "\n".join(inject_error(ref, k - 1, rng)), False) for k in (1, 2)]
    rows.append({**sample_row(problems[0], 3, "x", False), "text": None})     # skipped and counted
    cfg = type("Cfg", (), {"data": DataConfig(per_problem=2, max_len=10_000)})
    pairs, stats = ORM_PAIRWISE_PHASE.examples(cfg, ByteTokenizer(), Labels())(rows)
    # per problem min(per_problem, max(1 correct, 2 incorrect)) = 2 pairs, the correct sample in both
    assert len(pairs) == 6 and stats["pairs"] == 6 and stats["skipped_null_text"] == 1
    # every member is the ORM example the scorer encodes (encode_orm), labelled with its row's is_correct
    row_of = {}
    for r in rows[:-1]:
        ids, tag = encode_orm(ByteTokenizer(), sample_prompt(r), r["text"], Labels.step_tag)
        row_of[tuple(ids)] = (r, {"input_ids": ids, "tag_positions": [tag], "hard_labels": [int(r["is_correct"])],
                                  "soft_labels": None})
    for pair in pairs:
        good, expected_good = row_of[tuple(pair["correct"]["input_ids"])]
        bad, expected_bad = row_of[tuple(pair["incorrect"]["input_ids"])]
        assert pair == {"correct": expected_good, "incorrect": expected_bad}
        assert good["is_correct"] and not bad["is_correct"] and good["problem_id"] == bad["problem_id"]


MARKER = " #"     # appended to every correct solution: a byte-level token of the tiny model, visible at the tag
STEPS = 20
TASK = ToyTaskConfig(seed=7, num_train=48, num_test=16, min_ops=2, max_ops=3, max_operand=9, max_result=99)


def marked_samples(split: str) -> list[dict]:
    """Per problem: its reference solution with the marker (correct) and two injected-error solutions."""
    rng = random.Random(split)
    rows = []
    for p in generate_problems(TASK, split):
        ref = p["reference_solution"].split("\n")
        rows.append(sample_row(p, 0, p["reference_solution"] + MARKER, True))
        rows += [sample_row(p, k, "\n".join(inject_error(ref, rng.randrange(len(ref) - 1), rng)), False)
                 for k in (1, 2)]
    return rows


def commit(uri: str, rows: list[dict]) -> str:
    store = ShardStore(uri)
    store.commit_shard("part-00000", to_table(rows, SAMPLES))
    store.write_manifest()
    return uri


@pytest.mark.slow
def test_training_job_ranks_the_marked_correct_sample_first(tmp_path, tiny_model):
    from mathray.jobs.scoring import Scorer, ScorerConfig
    from mathray.jobs.training.config import TrainJobConfig
    from mathray.jobs.training.worker import run_local
    from mathray.runtime.storage import join

    # the training job's phases, trainer and export in this process: 16 pairs per step, as 2 workers x 8
    cfg = TrainJobConfig.model_validate({
        "task": "orm_pairwise", "model": tiny_model, "output": str(tmp_path / "out"), "num_workers": 1,
        "data": {"samples": [commit(str(tmp_path / "samples"), marked_samples("train"))], "max_len": 256,
                 "per_problem": 2, "eval_fraction": 0.25},
        "optim": {"lr": 3e-3, "steps": STEPS, "batch_size": 16, "warmup_ratio": 0.0,
                  "lr_scheduler": "constant_with_warmup"},
        "checkpoint_every": STEPS, "log_every": 1, "report_to": ["none"],
        "callbacks": [step_log(tmp_path / "steps.jsonl")]})
    metrics = run_local(cfg)
    log = [json.loads(line) for line in (tmp_path / "steps.jsonl").read_text().splitlines()]
    assert [s["phase"] for s in log] == ["orm_pairwise"] * STEPS
    losses = [s["loss"] for s in log]
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 0.3, losses
    assert metrics["eval_auroc"] > 0.9, metrics       # held-out pairs: correct above incorrect
    # the real scorer on held-out problems: p(+) at the ORM tag of every sample; the marked correct sample of
    # a problem must score strictly above both incorrect ones
    test = marked_samples("test")
    table = pa.Table.from_pylist([dict(r, _src_shard="s", _src_row=i) for i, r in enumerate(test)])
    scorer = Scorer(ScorerConfig(orm=join(cfg.output, "final"), device="cpu", max_length=256).model_dump(), "cpu")
    scores = {(r["problem_id"], r["sample_id"]): r["orm_score"] for r in scorer(table).to_pylist()}
    first = []
    for pid in sorted({r["problem_id"] for r in test}):
        correct = [scores[(pid, r["sample_id"])] for r in test if r["problem_id"] == pid and r["is_correct"]]
        incorrect = [scores[(pid, r["sample_id"])] for r in test if r["problem_id"] == pid and not r["is_correct"]]
        first.append(min(correct) > max(incorrect))
    assert len(first) == TASK.num_test and sum(first) / len(first) >= 0.9, scores
