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


@pytest.mark.parametrize("shots,n,answers", [("minerva_math", 4, ["[2,5)", "24", "16", "-\\frac{2}{3}"]),
                                              ("gsm8k_cot", 8, ["6", "5", "39", "8", "9", "29", "33", "8"])])
def test_fixed_few_shot_sets(shots, n, answers):
    """Minerva's 4 MATH and Wei et al.'s 8 GSM8K exemplars, in the plain layout; each exemplar's solution grades
    correct against its own answer (the grader reads both closing formats)."""
    from mathray.core.exemplars import FIXED_SHOTS
    from mathray.grading import grade

    cfg = prompts.PromptConfig(format="few_shot", shots=shots)
    p = prompts.build_prompt("What is 1 + 1?", "x", cfg)
    assert p.count("Problem:") == n + 1 and p.endswith("\n\nProblem: What is 1 + 1?\nSolution:")
    assert p == prompts.build_prompt("What is 1 + 1?", "y", cfg)          # fixed: the same for every problem
    for ex, answer in zip(FIXED_SHOTS[shots], answers, strict=True):
        assert grade(ex["reference_solution"], answer).is_correct, ex["reference_solution"][-80:]


def test_sample_prompt_falls_back_to_plain():
    assert prompts.sample_prompt({"problem": "P", "prompt": "few-shot text"}) == "few-shot text"
    assert prompts.sample_prompt({"problem": "P", "prompt": None}) == prompts.plain_prompt("P")
    assert prompts.sample_prompt({"problem": "P"}) == prompts.plain_prompt("P")
