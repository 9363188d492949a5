"""A tiny randomly initialised Qwen2 and its locally trained tokenizer, saved as a model directory that
``transformers.AutoModelForCausalLM`` / ``AutoTokenizer`` and ``vllm.LLM`` load (nothing from a hub).

The tokenizer is a byte-level BPE (any text, unicode and LaTeX included, encodes; decoding round-trips it
exactly) trained on toy-task text in every format ``mathray.core.prompts`` produces: plain prompt + solution,
verifier prompt + `` correct``/`` incorrect``, and Math-Shepherd steps tagged `` ки`` with `` +``/`` -``.
Those label and tag strings are single tokens (added as tokens if BPE did not merge them). Specials:
``<|bos|>`` (never added automatically), ``<|endoftext|>`` (eos), ``<|pad|>``; a minimal chat template.

Defaults (sized with ``scripts/size_tiny_model.py``): hidden 64, 2 layers,
2 heads of dim 32 (vLLM's CPU attention rejects head_dim 16), MLP 256, vocab 512, tied embeddings,
max_position_embeddings 512: about 0.13M parameters.

Usage::

    model_dir = build_tiny_model(tmp_path / "tiny")   # then AutoModelForCausalLM.from_pretrained(model_dir)
"""
from __future__ import annotations

import json
import random
from pathlib import Path

from mathray.config import StrictModel
from mathray.core.prompts import (PRM_LABELS, STEP_TAG, VERIFIER_LABELS, completion, plain_prompt,
                             verifier_prompt)
from mathray.core.toy import ToyTaskConfig, generate_problems, inject_error

BOS, EOS, PAD = "<|bos|>", "<|endoftext|>", "<|pad|>"
SINGLE_TOKEN_STRINGS = (*VERIFIER_LABELS, STEP_TAG, *PRM_LABELS)
CHAT_TEMPLATE = ("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
                 "{% if add_generation_prompt %}assistant:{% endif %}")


class TinyModelConfig(StrictModel):
    vocab_size: int = 512             # BPE target size (bytes + merges + specials)
    corpus_problems: int = 2000       # toy problems the tokenizer is trained on
    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 2                # head_dim = hidden_size / num_heads; must be >= 32 for vLLM CPU
    num_kv_heads: int = 2
    intermediate_size: int = 256
    max_position_embeddings: int = 512
    tie_word_embeddings: bool = True


def tokenizer_corpus(num_problems: int, seed: int) -> list[str]:
    """Toy-task text in each format the project's prompts use (one document per string)."""
    rows = generate_problems(ToyTaskConfig(seed=seed, num_train=num_problems, num_test=0), "train")
    rng = random.Random(seed)
    docs = []
    for row in rows:
        solution = row["reference_solution"]
        steps = solution.split("\n")
        wrong = "\n".join(inject_error(steps, rng.randrange(len(steps) - 1), rng))
        docs.append(plain_prompt(row["problem"]) + completion(solution))
        docs.append(verifier_prompt(row["problem"], solution) + VERIFIER_LABELS[0])
        docs.append(verifier_prompt(row["problem"], wrong) + VERIFIER_LABELS[1])
        docs.append(plain_prompt(row["problem"]) + "".join(
            (" " if i == 0 else "\n") + s + STEP_TAG + PRM_LABELS[0] for i, s in enumerate(steps)))
    return docs


def build_tokenizer(cfg: TinyModelConfig, seed: int = 0):
    """A ``PreTrainedTokenizerFast`` (byte-level BPE) trained on ``tokenizer_corpus``."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    # transformers (hence vLLM) loads any qwen2-type model directory with Qwen2Tokenizer, which rebuilds
    # the pipeline from vocab + merges with Qwen2's normalizer and pre-tokenizer (digits split one by one);
    # train with exactly that pipeline so the merges are the ones that apply at load time.
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=cfg.vocab_size, special_tokens=[EOS, PAD, BOS],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(tokenizer_corpus(cfg.corpus_problems, seed), trainer=trainer)
    missing = [s for s in SINGLE_TOKEN_STRINGS if len(tok.encode(s).ids) != 1]
    if missing:  # BPE did not merge them: force them to be whole tokens
        tok.add_tokens([AddedToken(s, normalized=False) for s in missing])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD,
                                   chat_template=CHAT_TEMPLATE, model_max_length=cfg.max_position_embeddings,
                                   clean_up_tokenization_spaces=False)


def build_tiny_model(out_dir: str | Path, cfg: TinyModelConfig | None = None, seed: int = 0) -> Path:
    """Build the tokenizer and a randomly initialised ``Qwen2ForCausalLM`` (weights fixed by ``seed``),
    ``save_pretrained`` both into ``out_dir``; returns ``out_dir``."""
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    cfg = cfg or TinyModelConfig()
    if cfg.hidden_size % cfg.num_heads or cfg.hidden_size // cfg.num_heads < 32:
        raise ValueError(f"head_dim = hidden_size / num_heads must be an integer >= 32 (vLLM CPU), "
                         f"got {cfg.hidden_size} / {cfg.num_heads}")
    out_dir = Path(out_dir)
    tokenizer = build_tokenizer(cfg, seed)
    ids = {name: tokenizer.convert_tokens_to_ids(t) for name, t in (("bos", BOS), ("eos", EOS), ("pad", PAD))}
    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers, num_attention_heads=cfg.num_heads,
        num_key_value_heads=cfg.num_kv_heads, head_dim=cfg.hidden_size // cfg.num_heads,
        max_position_embeddings=cfg.max_position_embeddings, tie_word_embeddings=cfg.tie_word_embeddings,
        bos_token_id=ids["bos"], eos_token_id=ids["eos"], pad_token_id=ids["pad"],
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0}, torch_dtype="float32")
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.generation_config = GenerationConfig(bos_token_id=ids["bos"], eos_token_id=ids["eos"],
                                               pad_token_id=ids["pad"])
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    (out_dir / "mathray_tiny_model.json").write_text(json.dumps({"config": cfg.model_dump(), "seed": seed}))
    return out_dir
