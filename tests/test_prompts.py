import pytest

from mathray.core import prompts


class CharTokenizer:
    """Pure-logic stand-in: one token per character, with ' ки' as one extra token."""

    TAG = 1000

    def encode(self, text, add_special_tokens=False):
        out, i = [], 0
        while i < len(text):
            if text.startswith(" ки", i):
                out.append(self.TAG)
                i += 3
            else:
                out.append(ord(text[i]))
                i += 1
        return out


def test_plain_prompt_and_completion():
    assert prompts.plain_prompt(" 2+2? ") == "Problem: 2+2?\nSolution:"
    assert prompts.completion("4\n") == " 4"


def test_few_shot_deterministic_and_excludes_self():
    pool = [{"problem_id": f"p{i}", "problem": f"q{i}", "reference_solution": f"s{i}"} for i in range(10)]
    cfg = prompts.PromptConfig(format="few_shot", num_shots=4, seed=3)
    a = prompts.build_prompt("target", "p1", cfg, pool)
    assert a == prompts.build_prompt("target", "p1", cfg, pool)
    assert a.count("Problem:") == 5 and "q1\n" not in a and a.endswith("Problem: target\nSolution:")
    assert a != prompts.build_prompt("target", "p2", cfg, pool)
    with pytest.raises(ValueError, match="exemplar pool"):
        prompts.build_prompt("t", "p", cfg, [])


def test_verifier_template():
    assert prompts.verifier_prompt("What is 1+1?", "2") == (
        "Here is a math problem: What is 1+1?. Here is a candidate solution: 2. "
        "The above candidate solution is")


def test_single_token_id_checks():
    tok = CharTokenizer()
    assert prompts.single_token_id(tok, " ки") == CharTokenizer.TAG
    with pytest.raises(ValueError, match="2 tokens"):
        prompts.single_token_id(tok, "ab")


def test_encode_prm_tag_positions():
    tok = CharTokenizer()
    ids, pos = prompts.encode_prm(tok, prompts.plain_prompt("P"), ["a=1", "b=2"], CharTokenizer.TAG)
    assert [ids[p] for p in pos] == [CharTokenizer.TAG] * 2
    text = "".join(chr(i) if i != CharTokenizer.TAG else "|" for i in ids)
    assert text == "Problem: P\nSolution: a=1|\nb=2|"
