"""Every text format a model sees, in one place, so a model is sampled, trained and scored in one format.

Generator formats (``PromptConfig.format``):
- ``plain``: ``Problem: {problem}\\nSolution:`` and the solution follows after one space; used for
  fine-tuned generators (SSFT trains exactly ``plain_prompt(p)`` -> ``completion(solution)``).
- ``few_shot``: k solved exemplars in the plain format, separated by blank lines, then the plain prompt
  (base models). ``shots`` picks them: ``minerva_math`` (Minerva's 4 MATH exemplars), ``gsm8k_cot`` (Wei et
  al.'s 8 GSM8K exemplars), both fixed (``core.exemplars``); or ``pool``: ``num_shots`` solved problems drawn
  from a PROBLEMS shard set, deterministically per (seed, problem_id). Generation stops at the next
  ``\\n\\nProblem:``.
- ``chat``: the tokenizer's chat template with the problem as the user message (instruct models).

The prompt a sample was generated with is stored in its SAMPLES row (``prompt``) and travels on: a
Math-Shepherd rollout continues exactly ``prompt + the sample's text up to the step``, STEP_LABELS rows keep
it, and the PRM and ORM read ``prompt`` + steps (``sample_prompt`` gives the plain prompt for rows without
one, e.g. label sets ingested from PRM800K). SSFT and the generator phases of sequential training train the
plain format (the format of the fine-tuned generator); Liu et al.'s verifier reads its own fixed template,
which quotes the problem, whatever prompt produced the solution.

Verifier (Liu et al. SCR evaluator): ``Here is a math problem: {P}. Here is a candidate solution: {X}.
The above candidate solution is`` followed by the label token `` correct`` / `` incorrect``.

PRM (Math-Shepherd style): the generation prompt, then each step followed by a step tag token; the PRM's
prediction for step i is read from the logits AT the i-th tag token (over the two label tokens). Inputs are
built from token ids (``encode_prm``) so the tag positions are exact whatever the tokenizer merges.
"""
from __future__ import annotations

import hashlib
import random
from typing import Literal, Sequence

from mathray.config import StrictModel, outside_lineage

from mathray.core.exemplars import FIXED_SHOTS

PLAIN_TEMPLATE = "Problem: {problem}\nSolution:"
FEW_SHOT_SEPARATOR = "\n\n"
STOP_STRINGS = ["\n\nProblem:", "\nProblem:"]
VERIFIER_TEMPLATE = ("Here is a math problem: {problem}. Here is a candidate solution: {solution}. "
                     "The above candidate solution is")
VERIFIER_LABELS = (" correct", " incorrect")   # (positive, negative) label strings; ids: ``core.label_tokens``
SHEPHERD_TAG = "ки"                            # the Math-Shepherd data set's step tag
STEP_TAG = " " + SHEPHERD_TAG                  # how mathray's PRM inputs tag a step
PRM_LABELS = (" +", " -")                      # (good step, bad step) label strings; ids: ``core.label_tokens``


class PromptConfig(StrictModel):
    format: Literal["plain", "few_shot", "chat"] = "plain"
    shots: Literal["pool", "minerva_math", "gsm8k_cot"] = "pool"   # few_shot: where the exemplars come from
    num_shots: int = 4                 # pool: exemplars per prompt (the fixed sets use all of theirs)
    # pool: PROBLEMS shards whose reference_solution are the exemplars (its content is in the lineage)
    exemplar_pool: str | None = outside_lineage(None)
    seed: int = 0


def plain_prompt(problem: str) -> str:
    return PLAIN_TEMPLATE.format(problem=problem.strip())


def completion(solution: str) -> str:
    """What follows the plain prompt in training: one space, then the solution."""
    return " " + solution.strip()


def pick_exemplars(pool: Sequence[dict], k: int, problem_id: str, seed: int) -> list[dict]:
    """k exemplars (dicts with problem, reference_solution), deterministic per (seed, problem_id),
    never the problem itself."""
    candidates = [e for e in pool if e.get("problem_id") != problem_id]
    digest = hashlib.sha256(f"{seed}:{problem_id}".encode()).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))
    return rng.sample(candidates, min(k, len(candidates)))


def few_shot_prompt(problem: str, exemplars: Sequence[dict]) -> str:
    shots = [plain_prompt(e["problem"]) + completion(e["reference_solution"]) for e in exemplars]
    return FEW_SHOT_SEPARATOR.join([*shots, plain_prompt(problem)])


def chat_prompt(problem: str, tokenizer) -> str:
    messages = [{"role": "user", "content": problem.strip()}]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def build_prompt(problem: str, problem_id: str, cfg: PromptConfig, pool: Sequence[dict] = (),
                 tokenizer=None) -> str:
    if cfg.format == "plain":
        return plain_prompt(problem)
    if cfg.format == "few_shot":
        if cfg.shots != "pool":
            return few_shot_prompt(problem, FIXED_SHOTS[cfg.shots])
        if not pool:
            raise ValueError("few_shot prompts with shots=pool need an exemplar pool (prompt.exemplar_pool)")
        return few_shot_prompt(problem, pick_exemplars(pool, cfg.num_shots, problem_id, cfg.seed))
    if tokenizer is None:
        raise ValueError("chat prompts need the model's tokenizer")
    return chat_prompt(problem, tokenizer)


def sample_prompt(row: dict) -> str:
    """The prompt a SAMPLES or STEP_LABELS row's solution was generated with: its ``prompt``, else the plain
    prompt of its problem (rows from data sets, or written before prompts were stored)."""
    return row.get("prompt") or plain_prompt(row["problem"])


def prompt_hash(prompt: str) -> str:
    return hashlib.sha256(prompt.encode()).hexdigest()[:16]


def verifier_prompt(problem: str, solution: str) -> str:
    return VERIFIER_TEMPLATE.format(problem=problem.strip(), solution=solution.strip())


def encode_verifier(tokenizer, problem: str, solution: str, suffix: Sequence[int] = ()) -> list[int]:
    """Token ids of ``verifier_prompt(problem, solution)`` without special tokens (as ``encode_prm``), then
    ``suffix`` (``label_tokens.LabelTokens.verifier_suffix``: the label strings' shared leading tokens, usually
    none); the verifier score is read from the logits at the last of them (``readout.verifier_logits``)."""
    return list(tokenizer.encode(verifier_prompt(problem, solution), add_special_tokens=False)) + list(suffix)


def single_token_id(tokenizer, text: str) -> int:
    """The id of ``text`` when it encodes to exactly one token; a clear error otherwise."""
    ids = tokenizer.encode(text, add_special_tokens=False)
    if len(ids) != 1:
        raise ValueError(f"{text!r} is {len(ids)} tokens in this tokenizer ({ids}); label and tag strings "
                         "must be single tokens: add them to the tokenizer or set their ids explicitly")
    return ids[0]


def encode_prm(tokenizer, prompt: str, steps: Sequence[str],
               tag_id: int | Sequence[int]) -> tuple[list[int], list[int]]:
    """Token ids of ``prompt`` (the generation prompt: ``sample_prompt(row)``) + each step followed by the tag,
    and the positions of the tags.
    ``tag_id`` is one id or the ids of a multi-token tag (``label_tokens.LabelTokens.step_tag``); a tag's position
    is that of its LAST token. Step i's score is read from the logits at ``positions[i]`` (and trained
    there)."""
    tag = [tag_id] if isinstance(tag_id, int) else list(tag_id)
    ids = tokenizer.encode(prompt, add_special_tokens=False)
    positions = []
    for i, step in enumerate(steps):
        ids += tokenizer.encode((" " if i == 0 else "\n") + step.strip(), add_special_tokens=False)
        ids += tag
        positions.append(len(ids) - 1)
    return ids, positions


def encode_orm(tokenizer, prompt: str, solution: str, tag_id: int | Sequence[int]) -> tuple[list[int], int]:
    """ORM input (Lightman et al.'s outcome reward model, the PRM's format with outcome supervision): the
    generation prompt, the whole solution, one step tag; the outcome score is read at that tag over
    ``PRM_LABELS``, exactly as a PRM step score is. Returns (ids, tag position)."""
    ids, positions = encode_prm(tokenizer, prompt, [solution], tag_id)
    return ids, positions[0]
