"""Training fixtures: the tiny model and small committed PROBLEMS / SAMPLES / STEP_LABELS stores built
from the toy task (correct samples are reference solutions, incorrect ones carry one injected error)."""
from __future__ import annotations

import random

import pytest

from mathray.core.schemas import PROBLEMS, SAMPLES, STEP_LABELS, to_table
from mathray.runtime.storage import ShardStore
from mathray.jobs.tiny_model import build_tiny_model
from mathray.core.toy import ToyTaskConfig, generate_problems, inject_error

NUM_PROBLEMS = 8


def toy_rows(n: int = NUM_PROBLEMS) -> list[dict]:
    return generate_problems(ToyTaskConfig(seed=0, num_train=n, num_test=0), "train")


def sample_row(p: dict, sample_id: int, text: str, correct: bool) -> dict:
    answer = text.rsplit("\\boxed{", 1)[-1].split("}")[0] if "\\boxed{" in text else None
    return {"problem_id": p["problem_id"], "sample_id": sample_id, "problem": p["problem"],
            "reference_answer": p["answer"], "prompt_hash": "test", "text": text, "answer": answer,
            "is_correct": correct, "grade_reason": "equal" if correct else "not-equal",
            "num_prompt_tokens": 10, "num_output_tokens": 20, "finish_reason": "stop",
            "cumulative_logprob": None, "generator": "tiny", "sampling_params_hash": "test", "seed": 0}


def build_samples(problems: list[dict], one_class_problems: int = 1) -> list[dict]:
    """Per problem: the reference solution (correct) and one injected-error solution (incorrect); the last
    ``one_class_problems`` problems only get incorrect samples (no pair possible)."""
    rng = random.Random(0)
    rows = []
    for i, p in enumerate(problems):
        steps = p["reference_solution"].split("\n")
        wrong = inject_error(steps, rng.randrange(len(steps) - 1), rng)
        # every other wrong sample stops before its answer line (a truncated, unanswered sample)
        wrong = "\n".join(wrong[:-1] if i % 2 else wrong)
        if i < len(problems) - one_class_problems:
            rows.append(sample_row(p, 0, p["reference_solution"], True))
        rows.append(sample_row(p, 1, wrong, False))
    return rows


def build_step_labels(problems: list[dict]) -> list[dict]:
    """PRM800K-style rows: the reference (all good) and an injected-error path cut after its first bad step;
    soft labels: 1.0 for good steps, 0.0 for the bad one."""
    rng = random.Random(1)
    rows = []
    for p in problems:
        steps = p["reference_solution"].split("\n")
        k = rng.randrange(len(steps) - 1)
        wrong = inject_error(steps, k, rng)[: k + 1]
        for sid, (st, hard) in enumerate([(steps, [1] * len(steps)), (wrong, [1] * k + [0])]):
            rows.append({"problem_id": p["problem_id"], "sample_id": sid, "problem": p["problem"], "steps": st,
                         "hard_labels": hard, "soft_labels": [float(h) for h in hard], "label_source": "test",
                         "rollouts": None, "tokens_generated": None, "metadata": None})
    return rows


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> str:
    return str(build_tiny_model(tmp_path_factory.mktemp("tiny_model") / "model"))


@pytest.fixture(scope="session")
def train_data(tmp_path_factory) -> dict:
    """URIs of committed PROBLEMS, SAMPLES and STEP_LABELS stores (local disk)."""
    root = tmp_path_factory.mktemp("train_data")
    problems = toy_rows()
    uris = {}
    for key, rows, schema in (("problems", problems, PROBLEMS), ("samples", build_samples(problems), SAMPLES),
                              ("step_labels", build_step_labels(problems), STEP_LABELS)):
        uris[key] = str(root / key)
        ShardStore(uris[key]).commit_shard("part-00000", to_table(rows, schema))
        ShardStore(uris[key]).write_manifest()
    return uris


QWEN_VOCAB = 151_936   # Qwen2.5-0.5B/1.5B embedding rows (the tokenizer has fewer entries; the rest is padding)


def build_qwen_vocab_model(out_dir, vocab: int = QWEN_VOCAB):
    """A tiny Qwen2 with Qwen2.5's embedding size and a byte-level BPE tokenizer trained only on plain
    prompt + solution text, so the verifier labels and the step tag are SEVERAL tokens in it (as label strings
    can be in a real tokenizer)."""
    import torch
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    from mathray.core.prompts import completion, plain_prompt

    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>", "<|pad|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    docs = [plain_prompt(r["problem"]) + completion(r["reference_solution"]) for r in toy_rows(300)]
    tok.train_from_iterator(docs, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|pad|>",
                                        clean_up_tokenization_spaces=False)
    eos, pad = tokenizer.convert_tokens_to_ids("<|endoftext|>"), tokenizer.convert_tokens_to_ids("<|pad|>")
    config = Qwen2Config(vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, head_dim=32, max_position_embeddings=512,
                         tie_word_embeddings=True, eos_token_id=eos, pad_token_id=pad, bos_token_id=None,
                         rope_parameters={"rope_type": "default", "rope_theta": 10000.0})
    torch.manual_seed(0)
    Qwen2ForCausalLM(config).save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return str(out_dir)


@pytest.fixture(scope="session")
def qwen_vocab_model(tmp_path_factory) -> str:
    return build_qwen_vocab_model(tmp_path_factory.mktemp("qwen_vocab") / "model")
