import json

import pytest

from mathray.core.prompts import completion, encode_prm, plain_prompt, single_token_id, verifier_prompt
from mathray.jobs.tiny_model import BOS, EOS, PAD, SINGLE_TOKEN_STRINGS, TinyModelConfig, build_tiny_model
from mathray.core.toy import ToyTaskConfig, generate_problems

# Task text of a different seed and difficulty than the tokenizer corpus, so BPE merges are not tailored to it.
TASK_ROWS = generate_problems(ToyTaskConfig(seed=99, num_train=0, num_test=30, max_ops=5, max_operand=50,
                                            max_result=999), "test")
TASK_TEXTS = [plain_prompt(r["problem"]) + completion(r["reference_solution"]) for r in TASK_ROWS]
OTHER_TEXTS = [
    "Let $f(x) = \\frac{x^2 + 1}{\\sqrt{2}}$. Find $f(3)$.\n\nWe have $\\dfrac{10}{\\sqrt 2} = 5\\sqrt{2}$. ки",
    "  two leading spaces, a tab\tand trailing spaces  \n\n\nThe answer is $\\boxed{\\text{(B)}}$.",
    "Unicode: 日本語, Ελληνικά, émigré, ≤ ≥ ∞ π, emoji 🙂, Cyrillic шаг ки",
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def tokenizer(model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_dir)


def test_label_and_tag_strings_are_single_tokens(tokenizer):
    ids = [single_token_id(tokenizer, s) for s in SINGLE_TOKEN_STRINGS]
    assert len(set(ids)) == len(ids)
    # and they stay single tokens in context, where the prompts put them
    text = verifier_prompt("Compute 2 + 3.", "2 + 3 = 5\nThe answer is \\boxed{5}.")
    assert tokenizer.encode(text + " correct")[-1] == single_token_id(tokenizer, " correct")
    assert tokenizer.encode(text + " incorrect")[-1] == single_token_id(tokenizer, " incorrect")
    tag = single_token_id(tokenizer, " ки")
    ids, positions = encode_prm(tokenizer, plain_prompt("Compute 2 + 3."), ["2 + 3 = 5", "The answer is \\boxed{5}."], tag)
    assert [ids[p] for p in positions] == [tag, tag]
    assert tokenizer.encode("2 + 3 = 5 ки +", add_special_tokens=False)[-2:] == [
        tag, single_token_id(tokenizer, " +")]


@pytest.mark.parametrize("text", TASK_TEXTS + OTHER_TEXTS)
def test_text_round_trips(tokenizer, text):
    ids = tokenizer.encode(text, add_special_tokens=False)
    assert tokenizer.decode(ids) == text
    assert tokenizer.unk_token_id not in ids or tokenizer.unk_token_id is None


def test_prompt_and_completion_tokenize_at_the_boundary(tokenizer):
    # SSFT trains on encode(prompt) + encode(completion); generation continues encode(prompt): they must agree
    for row in TASK_ROWS:
        prompt, target = plain_prompt(row["problem"]), completion(row["reference_solution"])
        joined = tokenizer.encode(prompt + target, add_special_tokens=False)
        assert joined == tokenizer.encode(prompt, add_special_tokens=False) + tokenizer.encode(
            target, add_special_tokens=False)


def test_special_tokens_and_chat_template(tokenizer, model_dir):
    assert (tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token) == (BOS, EOS, PAD)
    assert len({tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id}) == 3
    assert tokenizer.encode("Compute 1 + 1.")[0] != tokenizer.bos_token_id  # nothing prepended
    chat = tokenizer.apply_chat_template([{"role": "user", "content": "Compute 1 + 1."}], tokenize=False,
                                         add_generation_prompt=True)
    assert chat == "user: Compute 1 + 1.\nassistant:"
    config = json.loads((model_dir / "config.json").read_text())
    assert config["model_type"] == "qwen2" and config["head_dim"] >= 32
    assert config["eos_token_id"] == tokenizer.eos_token_id and config["vocab_size"] >= len(tokenizer)


def test_transformers_loads_and_generates(model_dir, tokenizer):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    assert type(model).__name__ == "Qwen2ForCausalLM"
    enc = tokenizer(plain_prompt("Compute 7 + 5 * 3 - 4."), return_tensors="pt")
    out = model.generate(**enc, max_new_tokens=12, do_sample=False, min_new_tokens=12)
    assert out.shape == (1, enc["input_ids"].shape[1] + 12)
    logits = model(**enc).logits
    assert torch.isfinite(logits).all() and logits.shape[-1] == model.config.vocab_size


def test_build_is_deterministic_by_seed(tmp_path, model_dir):
    from safetensors.torch import load_file

    again = build_tiny_model(tmp_path / "again")
    other = build_tiny_model(tmp_path / "other", seed=1)
    assert (again / "tokenizer.json").read_text() == (model_dir / "tokenizer.json").read_text()
    w0, w1, w2 = (load_file(d / "model.safetensors") for d in (model_dir, again, other))
    assert all((w0[k] == w1[k]).all() for k in w0)
    assert any((w0[k] != w2[k]).any() for k in w0)


def test_config_is_validated(tmp_path):
    with pytest.raises(ValueError, match="head_dim"):
        build_tiny_model(tmp_path / "bad", TinyModelConfig(hidden_size=64, num_heads=4))
    with pytest.raises(ValueError, match=r"hidden_layers\s+Extra inputs are not permitted"):
        TinyModelConfig(hidden_layers=3)  # unknown key


@pytest.mark.slow
def test_vllm_loads_generates_and_detokenizes_exactly(model_dir, tokenizer):
    from vllm import SamplingParams

    from mathray.runtime.engine import EngineConfig, build_llm

    llm = build_llm(EngineConfig(model=str(model_dir), device="cpu", enforce_eager=True, dtype="float32",
                                 kv_cache_memory_bytes=256 * 2**20, max_model_len=512), "cpu")
    prompt = plain_prompt(TASK_ROWS[0]["problem"])
    # vLLM must see the same tokens transformers does
    assert llm.get_tokenizer().encode(prompt) == tokenizer.encode(prompt)
    # Random sequences over the task's own tokens (spaces, newlines, digits, \boxed, braces): vLLM's
    # incremental detokenizer must give exactly transformers' decode, which round-trips the task text.
    task_ids = sorted({i for t in TASK_TEXTS for i in tokenizer.encode(t, add_special_tokens=False)})
    params = SamplingParams(n=4, temperature=1.0, max_tokens=48, min_tokens=48, seed=0,
                            allowed_token_ids=task_ids)
    outputs = llm.generate([prompt, plain_prompt(TASK_ROWS[1]["problem"])], params)
    texts = [c.text for o in outputs for c in o.outputs]
    assert len(texts) == 8 and all(len(c.token_ids) == 48 for o in outputs for c in o.outputs)
    for o in outputs:
        for c in o.outputs:
            assert c.text == tokenizer.decode(list(c.token_ids))
    assert any("\n" in t for t in texts) and any(" " in t for t in texts)
