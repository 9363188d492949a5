import pytest

from mathray.core.steps import prefix_text, split_steps, step_texts


def test_newline_steps_keep_exact_spans():
    text = "  3 + 4 = 7\n\n7 * 2 = 14  \nThe answer is \\boxed{14}."
    steps = split_steps(text)
    assert [s.text for s in steps] == ["3 + 4 = 7", "7 * 2 = 14", "The answer is \\boxed{14}."]
    assert all(text[s.start:s.end] == s.text for s in steps)
    assert prefix_text(text, steps, 1) == "  3 + 4 = 7\n\n7 * 2 = 14"


def test_step_prefix_steps_span_lines():
    text = "Step 1: add\nthe numbers 3+4=7\nStep 2: double 7*2=14\nStep 3: The answer is 14"
    assert step_texts(text) == ["Step 1: add\nthe numbers 3+4=7", "Step 2: double 7*2=14",
                                "Step 3: The answer is 14"]


def test_shepherd_tags():
    text = "Step 1: a = 2 ки\nStep 2: b = 3 ки\nStep 3: The answer is: 5 ки"
    steps = split_steps(text)
    assert [s.text for s in steps] == ["Step 1: a = 2", "Step 2: b = 3", "Step 3: The answer is: 5"]
    assert all(text[s.start:s.end] == s.text for s in steps)


def test_empty_and_unknown_format():
    assert split_steps("  \n \n") == []
    with pytest.raises(ValueError, match="unknown step format"):
        split_steps("x", "bogus")


def test_paragraph_steps_are_separated_by_blank_lines():
    from mathray.core.steps import split_steps

    text = "First, 2 + 3 = 5.\nSo five.\n\n  \nThen 5 * 4 = 20.\n\nThe answer is $\\boxed{20}$."
    steps = split_steps(text, "paragraph")
    assert [s.text for s in steps] == ["First, 2 + 3 = 5.\nSo five.", "Then 5 * 4 = 20.", "The answer is $\\boxed{20}$."]
    assert all(text[s.start:s.end] == s.text for s in steps)
