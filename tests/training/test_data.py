"""Example and pair builders on a character-level fake tokenizer (one token per character)."""
import pytest

from mathray.core import prompts
from mathray.jobs.training import data

TAG = 9999


class CharTokenizer:
    def encode(self, text, add_special_tokens=False):
        return [ord(c) for c in text]


TOK = CharTokenizer()


def sample(pid, sid, correct, text=None):
    return {"problem_id": pid, "sample_id": sid, "problem": f"problem {pid}", "is_correct": correct,
            "text": text or f"{pid} solution {sid}"}


def test_ssft_example_masks_the_prompt_and_keeps_the_exact_texts():
    ex = data.ssft_example(TOK, "1 + 2?", "1 + 2 = 3", max_len=100, eos_id=0)
    prompt, target = prompts.plain_prompt("1 + 2?"), prompts.completion("1 + 2 = 3")
    assert ex["input_ids"] == TOK.encode(prompt) + TOK.encode(target) + [0]
    assert ex["loss_mask"] == [0] * len(prompt) + [1] * (len(target) + 1)


def test_ssft_example_truncates_completion_never_the_prompt():
    prompt_len = len(prompts.plain_prompt("p"))
    ex = data.ssft_example(TOK, "p", "a long solution", max_len=prompt_len + 3, eos_id=None)
    assert len(ex["input_ids"]) == prompt_len + 3 and sum(ex["loss_mask"]) == 3
    assert data.ssft_example(TOK, "p", "x", max_len=prompt_len, eos_id=None) is None


def test_ssft_sources_take_references_and_correct_samples_only():
    rows = [{"problem": "a", "reference_solution": "ra"}, {"problem": "b", "reference_solution": None},
            sample("c", 0, True, "good"), sample("c", 1, False, "bad")]
    pairs, stats = data.ssft_sources(rows)
    assert pairs == [("a", "ra"), ("problem c", "good")]
    assert stats == {"skipped_no_reference_solution": 1, "skipped_incorrect_sample": 1}


def test_verifier_example_reads_at_the_last_prompt_token():
    ex = data.verifier_example(TOK, "P", "X", True, max_len=1000)
    text = prompts.verifier_prompt("P", "X")
    assert ex["input_ids"] == TOK.encode(text) and ex["last_index"] == len(text) - 1
    assert text.endswith("is")
    assert data.verifier_example(TOK, "P", "X", True, max_len=10) is None    # never cut: skipped


def test_verifier_candidates_balance_and_one_class_problems():
    rows = ([sample("a", i, True) for i in range(8)] + [sample("a", 8 + i, False) for i in range(2)]
            + [sample("b", i, False) for i in range(3)])
    chosen, stats = data.verifier_candidates(rows, per_problem=6, seed=0)
    a = [r for r in chosen if r["problem_id"] == "a"]
    # 2 incorrect exist: both taken, correct fills the rest up to 6
    assert sum(not r["is_correct"] for r in a) == 2 and sum(r["is_correct"] for r in a) == 4
    b = [r for r in chosen if r["problem_id"] == "b"]
    assert len(b) == 3 and not any(r["is_correct"] for r in b)   # xent keeps a one-class problem
    assert stats["problems_one_class_only"] == 1
    rows_even = [sample("c", i, i % 2 == 0) for i in range(20)]
    chosen, _ = data.verifier_candidates(rows_even, per_problem=6, seed=0)
    assert sum(r["is_correct"] for r in chosen) == 3


def test_candidate_pairs_same_problem_and_skip_one_class():
    rows = ([sample("a", i, True) for i in range(3)] + [sample("a", 3, False)]
            + [sample("b", i, True) for i in range(4)])
    pairs, stats = data.candidate_pairs(rows, per_problem=10, seed=1)
    assert len(pairs) == 3 and stats["problems_without_pair"] == 1
    assert all(g["problem_id"] == b["problem_id"] == "a" and g["is_correct"] and not b["is_correct"]
               for g, b in pairs)
    assert len({g["sample_id"] for g, _ in pairs}) == 3      # every correct candidate used before repeats
    again, _ = data.candidate_pairs(list(reversed(rows)), per_problem=10, seed=1)
    assert [(g["sample_id"], b["sample_id"]) for g, b in again] == [(g["sample_id"], b["sample_id"]) for g, b in pairs]


def test_pair_examples_for_margin_and_generator():
    rows = [sample("a", 0, True), sample("a", 1, False)]
    vp, _ = data.verifier_pair_examples(TOK, rows, 4, 1000, 0)
    assert len(vp) == 1 and vp[0]["correct"]["is_correct"] and not vp[0]["incorrect"]["is_correct"]
    gp, _ = data.generator_pair_examples(TOK, rows, 4, 1000, None, 0)
    assert gp[0]["correct"]["input_ids"][-len("a solution 0"):] == TOK.encode("a solution 0")


def test_prm_example_labels_at_tags_and_truncation():
    steps, labels = ["s1", "s2", "s3"], [1, 1, 0]
    ex = data.prm_example(TOK, prompts.plain_prompt("P"), steps, labels, [1.0, 0.5, 0.0], TAG, max_len=1000)
    ids, positions = prompts.encode_prm(TOK, prompts.plain_prompt("P"), steps, TAG)
    assert ex["input_ids"] == ids and ex["tag_positions"] == positions
    assert [ex["input_ids"][p] for p in positions] == [TAG] * 3
    cut = data.prm_example(TOK, prompts.plain_prompt("P"), steps, labels, None, TAG, max_len=positions[1] + 1)
    assert cut["tag_positions"] == positions[:2] and cut["hard_labels"] == [1, 1]
    assert len(cut["input_ids"]) == positions[1] + 1
    with pytest.raises(ValueError):
        data.prm_example(TOK, prompts.plain_prompt("P"), steps, [1], None, TAG, 1000)


def test_prm_examples_soft_needs_soft_labels():
    rows = [{"problem": "P", "steps": ["a", "b"], "hard_labels": [1, 0], "soft_labels": [0.75, 0.0]},
            {"problem": "Q", "steps": ["a"], "hard_labels": [1], "soft_labels": None},
            {"problem": "R", "steps": ["a", "b"], "hard_labels": [1], "soft_labels": None}]
    soft, stats = data.prm_examples(TOK, rows, TAG, 1000, targets="soft")
    assert len(soft) == 1 and soft[0]["soft_labels"] == [0.75, 0.0] and stats["skipped_no_soft_labels"] == 2
    hard, stats = data.prm_examples(TOK, rows, TAG, 1000, targets="hard")
    assert len(hard) == 2 and stats["skipped_label_count_mismatch"] == 1
