"""How a reward model reads a solution: one small declaration per convention, selected per model in the score
config (``scorer.prm_convention`` / ``scorer.orm_convention``), next to mathray's own exports.

A convention turns (problem, steps) into token ids and the positions whose logits are read, and names the two
label tokens compared there (score = p(good) renormalised over good and bad, as mathray's own PRM). Positions
come from character offsets of the rendered text (a fast tokenizer's ``offset_mapping``), so a tag or a reply
lands on the token the model saw in training whatever the tokenizer merges around it.

- ``mathray``: the export's own tag and labels, read by ``prompts.encode_prm`` (today's scorer).
- ``StepTag``: a causal LM read at a tag after each step (Math-Shepherd's PRM: "Step k: ... ки", ``+``/``-``).
- ``ChatTurns``: each step a user turn and the assistant's reply read (RLHFlow's PRMs: p(``+``)).
- ``SeparatorHead``: a 2-way head at a separator after each step (Qwen2.5-Math-PRM), on vLLM's pooling runner.
- ``SequenceClassifier``: an ``AutoModelForSequenceClassification`` reward model, one score per solution.

Tokenizer-only (no torch): the scoring job runs the forward and the readout.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass


class ConventionError(ValueError):
    """A model or input that does not fit its convention (the message names the convention)."""


def _token_at(offsets: list[tuple[int, int]], char: int) -> int:
    """The index of the token whose span holds character ``char``."""
    for i, (start, end) in enumerate(offsets):
        if start <= char < end:
            return i
    raise ConventionError(f"no token covers character {char} of the rendered input")


def _encode_with_offsets(tokenizer, text: str, add_special_tokens: bool) -> tuple[list[int], list[tuple[int, int]]]:
    if not getattr(tokenizer, "is_fast", False):
        raise ConventionError("published conventions need a fast tokenizer (character offsets of tokens)")
    enc = tokenizer(text, add_special_tokens=add_special_tokens, return_offsets_mapping=True)
    return list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]


@dataclass(frozen=True)
class StepTag:
    """Steps laid out with ``step_template`` and joined with ``joiner`` after ``prefix``, each followed by
    ``tag``; step k's score is read at the last token of its tag over the ``good``/``bad`` tokens."""
    name: str
    source: str
    prefix: str = "{problem} "
    step_template: str = "Step {number}: {step}"
    joiner: str = "\n"
    tag: str = " ки"
    good: str = "+"
    bad: str = "-"
    add_special_tokens: bool = True

    def render(self, problem: str, steps: list[str]) -> tuple[str, list[int]]:
        """The input text and the character index of each tag's last character."""
        text, ends = self.prefix.format(problem=problem.strip()), []
        for k, step in enumerate(steps):
            text += (self.joiner if k else "") + self.step_template.format(number=k + 1, step=step.strip()) + self.tag
            ends.append(len(text) - 1)
        return text, ends

    def encode(self, tokenizer, problem: str, steps: list[str]) -> tuple[list[int], list[int]]:
        text, ends = self.render(problem, steps)
        ids, offsets = _encode_with_offsets(tokenizer, text, self.add_special_tokens)
        return ids, [_token_at(offsets, e) for e in ends]

    def label_ids(self, tokenizer) -> tuple[int, int]:
        """The last token of each label string (model cards encode "+" and "-" and take the last id)."""
        return tuple(tokenizer.encode(t, add_special_tokens=False)[-1] for t in (self.good, self.bad))


@dataclass(frozen=True)
class ChatTurns:
    """A conversation: the first user turn is ``first_turn`` (problem and first step), every later step a user
    turn of its own, each answered by the assistant with ``good``; step k's score is read at the token before
    the k-th reply (the logits that predict it), over the tokens the reply ``good``/``bad`` renders to."""
    name: str
    source: str
    first_turn: str = "{problem} {step}"
    good: str = "+"
    bad: str = "-"

    def _conversation(self, problem: str, steps: list[str], reply: str) -> list[dict]:
        turns = []
        for k, step in enumerate(steps):
            text = self.first_turn.format(problem=problem.strip(), step=step.strip()) if k == 0 else step.strip()
            turns += [{"role": "user", "content": text}, {"role": "assistant", "content": reply}]
        return turns

    def _render(self, tokenizer, turns: list[dict], **kwargs) -> str:
        if not getattr(tokenizer, "chat_template", None):
            raise ConventionError(f"convention {self.name!r} needs the tokenizer's chat template; it has none")
        return tokenizer.apply_chat_template(turns, tokenize=False, **kwargs)

    def _reply_chars(self, tokenizer, turns: list[dict], reply: str) -> tuple[str, list[int]]:
        """The rendered conversation and the first character of each assistant reply in it."""
        full, starts = self._render(tokenizer, turns), []
        for k in range(0, len(turns), 2):
            head = self._render(tokenizer, turns[:k + 1], add_generation_prompt=True)
            at = full.find(reply, len(head))
            if not full.startswith(head) or at < 0 or full[len(head):at].strip():
                raise ConventionError(f"convention {self.name!r}: the chat template does not render turn {k // 2} "
                                      "as a prefix followed by the reply")
            starts.append(at)
        return full, starts

    def encode(self, tokenizer, problem: str, steps: list[str]) -> tuple[list[int], list[int]]:
        turns = self._conversation(problem, steps, self.good)
        full, starts = self._reply_chars(tokenizer, turns, self.good)
        ids, offsets = _encode_with_offsets(tokenizer, full, add_special_tokens=False)
        return ids, [_token_at(offsets, s) - 1 for s in starts]

    def label_ids(self, tokenizer) -> tuple[int, int]:
        """The token each reply renders to at its place in a one-step conversation."""
        out = []
        for reply in (self.good, self.bad):
            full, (start,) = self._reply_chars(tokenizer, self._conversation("q", ["s"], reply), reply)
            ids, offsets = _encode_with_offsets(tokenizer, full, add_special_tokens=False)
            out.append(ids[_token_at(offsets, start)])
        return tuple(out)


@dataclass(frozen=True)
class SeparatorHead:
    """A token-classification head read at a separator after each step (Qwen2.5-Math-PRM): the system prompt,
    the problem as the user turn, the steps joined and ended by ``separator`` as the assistant turn; the score
    of a step is the head's softmax probability of class ``positive`` at its separator. Transformers has no
    class for these models (their cards load them with ``trust_remote_code``): the scorer runs them on vLLM's
    pooling runner (``Qwen2ForProcessRewardModel``, step pooling at the separator)."""
    name: str
    source: str
    system: str = "Please reason step by step, and put your final answer within \\boxed{}."
    separator: str = "<extra_0>"
    positive: int = 1

    def separator_id(self, tokenizer) -> int:
        ids = tokenizer.encode(self.separator, add_special_tokens=False)
        if len(ids) != 1:
            raise ConventionError(f"convention {self.name!r}: the separator {self.separator!r} is {len(ids)} tokens "
                                  "in this tokenizer, not one")
        return ids[0]

    def encode(self, tokenizer, problem: str, steps: list[str]) -> tuple[list[int], list[int]]:
        turns = [{"role": "system", "content": self.system}, {"role": "user", "content": problem.strip()},
                 {"role": "assistant", "content": "".join(s.strip() + self.separator for s in steps)}]
        if not getattr(tokenizer, "chat_template", None):
            raise ConventionError(f"convention {self.name!r} needs the tokenizer's chat template; it has none")
        ids = tokenizer.encode(tokenizer.apply_chat_template(turns, tokenize=False), add_special_tokens=False)
        sep = self.separator_id(tokenizer)
        positions = [i for i, t in enumerate(ids) if t == sep]
        if len(positions) != len(steps):
            raise ConventionError(f"{len(positions)} separators for {len(steps)} steps (a step holds the separator?)")
        return ids, positions


@dataclass(frozen=True)
class SequenceClassifier:
    """An outcome reward model with a classification head: the problem and the whole solution rendered as a
    user and an assistant turn (``chat``) or joined as text; the score is the head's logit ``positive`` when the
    head has one label, else the softmax probability of label ``positive``."""
    name: str
    source: str
    chat: bool = True
    positive: int = 0

    def text(self, tokenizer, problem: str, solution: str) -> str:
        if not self.chat:
            return f"{problem.strip()}\n{solution.strip()}"
        turns = [{"role": "user", "content": problem.strip()}, {"role": "assistant", "content": solution.strip()}]
        return tokenizer.apply_chat_template(turns, tokenize=False)


MATHRAY = "mathray"
CONVENTIONS = {c.name: c for c in (
    # peiyi9979/math-shepherd-mistral-7b-prm model card: f"{question} {output}", "Step k: ... ки", softmax(+, -)
    StepTag("math-shepherd", source="huggingface.co/peiyi9979/math-shepherd-mistral-7b-prm"),
    # RLHFlow/Llama3.1-8B-PRM-Deepseek-Data model card: question + " " + step 1 as the first user turn, "+" replies
    ChatTurns("rlhflow", source="huggingface.co/RLHFlow/Llama3.1-8B-PRM-Deepseek-Data"),
    # Qwen/Qwen2.5-Math-PRM-7B model card: steps joined and ended by "<extra_0>" in the assistant turn, class 1
    SeparatorHead("qwen-math-prm", source="huggingface.co/Qwen/Qwen2.5-Math-PRM-7B"),
    # e.g. Skywork/Skywork-Reward-Llama-3.1-8B model card: chat-formatted pair, score = logits[0][0]
    SequenceClassifier("sequence-classifier", source="huggingface.co/Skywork/Skywork-Reward-Llama-3.1-8B"),
)}


def convention(name: str, options: dict | None = None):
    """The registered convention ``name`` with ``options`` replacing its fields (e.g. another tag)."""
    if name not in CONVENTIONS:
        raise ConventionError(f"unknown scoring convention {name!r}; known: {MATHRAY}, {', '.join(CONVENTIONS)}")
    base = CONVENTIONS[name]
    fields = {f.name for f in dataclasses.fields(base)} - {"name", "source"}
    if unknown := set(options or {}) - fields:
        raise ConventionError(f"convention {name!r} has no option {sorted(unknown)}; options: {sorted(fields)}")
    return dataclasses.replace(base, **(options or {}))
