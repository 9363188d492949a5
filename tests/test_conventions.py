"""Published reward-model conventions on tiny random models built here: the scorer's values equal a plain
transformers forward written the way each model card reads its model; tags and replies land where the
convention says; inputs and models that do not fit are quarantined or refused naming the convention."""
import pyarrow as pa
import pytest
import torch
from helpers.score_data import sample_rows
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

from mathray.core.conventions import ConventionError, convention
from mathray.core.steps import step_texts
from mathray.jobs.scoring import Scorer, ScorerConfig
from mathray.jobs.tiny_model import build_tiny_model

ROWS = sample_rows(2, 3, seed=5)


@pytest.fixture(scope="module")
def causal(tmp_path_factory):
    return str(build_tiny_model(tmp_path_factory.mktemp("prm") / "m", seed=3))


@pytest.fixture(scope="module")
def classifier(tmp_path_factory, causal):
    """A sequence-classification reward model (one label) on the tiny Qwen2 body, head initialised at random."""
    out = tmp_path_factory.mktemp("rm") / "m"
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(causal, num_labels=1)
    model.config.pad_token_id = AutoTokenizer.from_pretrained(causal).pad_token_id
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(causal).save_pretrained(out)
    return str(out)


def score(cfg: ScorerConfig, rows: list[dict]) -> dict:
    batch = pa.Table.from_pylist([dict(r, _src_shard="s", _src_row=i) for i, r in enumerate(rows)])
    out = Scorer(cfg.model_dump(), "cpu")(batch).to_pylist()
    return {r["_src_row"]: r for r in out}


def card_math_shepherd(model_dir: str, problem: str, steps: list[str]) -> list[float]:
    """The Math-Shepherd PRM card: "Step k: ... ки" lines after the question, encode the whole text, softmax over
    (+, -) at every position holding the tag token."""
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    output = "\n".join(f"Step {k + 1}: {s.strip()} ки" for k, s in enumerate(steps))
    ids = torch.tensor([tok.encode(f"{problem} {output}")])
    plus, minus, tag = (tok.encode(t, add_special_tokens=False)[-1] for t in ("+", "-", " ки"))
    with torch.no_grad():
        probs = model(ids).logits[:, :, [plus, minus]].softmax(dim=-1)[:, :, 0]
    return probs[ids == tag].tolist()


def card_rlhflow(model_dir: str, problem: str, steps: list[str]) -> list[float]:
    """The RLHFlow card, one step at a time: the conversation so far with "+" replies, read at the position
    before the last reply token."""
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    plus_reply = tok.apply_chat_template([{"role": "user", "content": "q"}, {"role": "assistant", "content": "+"}], return_dict=False)
    minus_reply = tok.apply_chat_template([{"role": "user", "content": "q"}, {"role": "assistant", "content": "-"}], return_dict=False)
    at = next(i for i, (a, b) in enumerate(zip(plus_reply, minus_reply)) if a != b)
    plus, minus, tail = plus_reply[at], minus_reply[at], len(plus_reply) - at   # reply token, tokens after it
    conversation, out = [], []
    for k, step in enumerate(steps):
        conversation += [{"role": "user", "content": f"{problem} {step}" if k == 0 else step},
                         {"role": "assistant", "content": "+"}]
        ids = torch.tensor([tok.apply_chat_template(conversation, return_dict=False)])
        with torch.no_grad():
            logits = model(ids).logits[0, -tail - 1, [plus, minus]]
        out.append(logits.softmax(dim=-1)[0].item())
    return out


def test_math_shepherd_convention_equals_the_model_card(causal):
    got = score(ScorerConfig(prm=causal, prm_convention="math-shepherd", batch_size=2), ROWS)
    for i, row in enumerate(ROWS):
        want = card_math_shepherd(causal, row["problem"], step_texts(row["text"], "auto"))
        assert got[i]["step_scores"] == pytest.approx(want, abs=1e-5)


def test_rlhflow_convention_equals_the_model_card(causal):
    got = score(ScorerConfig(prm=causal, prm_convention="rlhflow", batch_size=2), ROWS)
    for i, row in enumerate(ROWS):
        want = card_rlhflow(causal, row["problem"], step_texts(row["text"], "auto"))
        assert got[i]["step_scores"] == pytest.approx(want, abs=1e-5)


def test_sequence_classifier_equals_a_plain_forward(classifier):
    got = score(ScorerConfig(orm=classifier, orm_convention="sequence-classifier", batch_size=4), ROWS)
    tok = AutoTokenizer.from_pretrained(classifier)
    model = AutoModelForSequenceClassification.from_pretrained(classifier, dtype=torch.float32).eval()
    for i, row in enumerate(ROWS):
        text = tok.apply_chat_template([{"role": "user", "content": row["problem"]},
                                        {"role": "assistant", "content": row["text"]}], tokenize=False)
        with torch.no_grad():
            want = model(**tok(text, return_tensors="pt", add_special_tokens=False)).logits[0][0].item()
        assert got[i]["orm_score"] == pytest.approx(want, abs=1e-5)


def test_tags_land_on_the_tag_token_of_each_step(causal):
    tok = AutoTokenizer.from_pretrained(causal)
    steps = ["2 + 3 = 5", "5 * 4 = 20", "The answer is \\boxed{20}."]
    ids, positions = convention("math-shepherd").encode(tok, "What is (2 + 3) * 4?", steps)
    tag = tok.encode(" ки", add_special_tokens=False)[-1]
    assert len(positions) == 3 and [ids[p] for p in positions] == [tag] * 3
    assert tok.decode(ids[:positions[0] + 1]).endswith("Step 1: 2 + 3 = 5 ки")
    ids, positions = convention("rlhflow").encode(tok, "What is (2 + 3) * 4?", steps)
    plus = convention("rlhflow").label_ids(tok)[0]
    assert [ids[p + 1] for p in positions] == [plus] * 3          # the next token is each step's reply
    other = convention("math-shepherd", {"tag": " <step>"})
    assert other.render("q", ["a", "b"])[0] == "q Step 1: a <step>\nStep 2: b <step>"


def test_inputs_that_do_not_fit_are_quarantined_with_the_reason(causal):
    rows = [dict(ROWS[0], text="   "), dict(ROWS[1], text="1 + 1 = 2\n" * 300)]
    got = score(ScorerConfig(prm=causal, prm_convention="math-shepherd", max_length=400), rows)
    assert got[0]["_quarantine"] == "no step found in the solution for the PRM"
    assert got[1]["_quarantine"].startswith("PRM input of") and got[1]["_quarantine"].endswith("> max_length 400")


def test_models_that_do_not_fit_the_convention_are_refused(causal, classifier, tmp_path):
    with pytest.raises(ConventionError, match=r"does not fit convention 'sequence-classifier'.*ForSequenceClass"):
        Scorer(ScorerConfig(orm=causal, orm_convention="sequence-classifier").model_dump(), "cpu")
    with pytest.raises(ConventionError, match=r"does not fit convention 'math-shepherd'.*ForCausalLM"):
        Scorer(ScorerConfig(prm=classifier, prm_convention="math-shepherd").model_dump(), "cpu")
    tok = AutoTokenizer.from_pretrained(causal)
    tok.chat_template = None
    with pytest.raises(ConventionError, match="'rlhflow' needs the tokenizer's chat template"):
        convention("rlhflow").encode(tok, "q", ["a"])
    with pytest.raises(ConventionError, match="no option"):
        convention("math-shepherd", {"tags": "x"})


@pytest.mark.slow
def test_separator_head_on_vllm_pooling_equals_a_plain_forward(tmp_path):
    """Qwen2.5-Math-PRM's layout run by vLLM's pooling runner (step pooling at the separator) equals the
    head's class-1 probability from a plain forward at each separator."""
    from helpers.tiny_reward_models import build_separator_prm, separator_prm_forward

    model = build_separator_prm(tmp_path / "sep-prm", seed=4)
    got = score(ScorerConfig(prm=str(model), prm_convention="qwen-math-prm", max_length=512), ROWS)
    tok = AutoTokenizer.from_pretrained(model)
    conv = convention("qwen-math-prm")
    for i, row in enumerate(ROWS):
        steps = step_texts(row["text"], "auto")
        ids, positions = conv.encode(tok, row["problem"], steps)
        assert [tok.decode([ids[p]]) for p in positions] == ["<extra_0>"] * len(steps)
        want = separator_prm_forward(model, ids)[positions, 1].tolist()
        assert got[i]["step_scores"] == pytest.approx(want, abs=1e-4)
