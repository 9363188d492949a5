"""Training examples from PROBLEMS / SAMPLES / STEP_LABELS rows (pure: a tokenizer and rows in, token ids out).

Every text goes through ``mathray.core.prompts``, so a model is trained in exactly the format it is sampled and
scored in. Prompt and completion are tokenised separately and concatenated (vLLM tokenises the prompt alone
and generates from there), so the loss boundary is exact.

- SSFT: ``plain_prompt(p)`` + ``completion(solution)`` (+ eos), ``loss_mask`` 1 on completion tokens only.
  Sources: PROBLEMS rows with a reference solution, and the correct rows of SAMPLES (rejection-sampled
  solutions of an earlier round).
- Verifier: ``verifier_prompt(P, X)``; the label is read at its last token (``readout.verifier_logits``).
  ``verifier_candidates`` balances correct and incorrect candidates per problem; ``candidate_pairs`` builds
  (correct, incorrect) pairs of one problem for cls-margin and L_seq. A problem with only correct or only
  incorrect samples gives candidates (xent keeps it) but no pair (margin cannot use it); both are counted.
- PRM: ``prompts.encode_prm`` ids (the row's generation prompt, ``prompts.sample_prompt``, then the tagged steps)
  with labels only at the step-tag positions.
- ORM (Lightman et al.'s outcome reward model): ``prompts.encode_orm`` (the PRM format, the whole solution as
  one step), label ``is_correct`` at that single tag; the same example layout as a PRM example.

Rows with a null or empty required field are skipped and counted (``skipped_null_<field>``; a null inside a
list field: ``skipped_null_in_<field>``; a hard label other than 0/1: ``skipped_bad_hard_labels``), never a
crash;
``split_by_problem`` holds out a deterministic fraction of problems for evaluation.
"""
from __future__ import annotations

import random
from collections import defaultdict
from typing import Callable, Iterable, Sequence

from mathray.core.prompts import completion, encode_orm, encode_prm, encode_verifier, plain_prompt, sample_prompt

SAMPLE_FIELDS = ("problem_id", "problem", "text", "is_correct")
STEP_FIELDS = ("problem", "steps", "hard_labels")


def _missing(row: dict, fields: Sequence[str]) -> str | None:
    """Why the row cannot be used: ``null_<field>`` for the first required field that is null (or an empty
    string/list), ``null_in_<field>`` for a list field holding a null; None when every field is present."""
    for f in fields:
        v = row.get(f)
        if v is None or (isinstance(v, (str, list, tuple)) and not (v.strip() if isinstance(v, str) else v)):
            return f"null_{f}"
        if isinstance(v, (list, tuple)) and any(x is None for x in v):
            return f"null_in_{f}"
    return None


def valid_rows(rows: Iterable[dict], fields: Sequence[str], stats: dict) -> list[dict]:
    """Rows whose ``fields`` are all present; the others are counted in ``stats["skipped_<reason>"]``."""
    out = []
    for row in rows:
        bad = _missing(row, fields)
        if bad:
            stats[f"skipped_{bad}"] = stats.get(f"skipped_{bad}", 0) + 1
        else:
            out.append(row)
    return out


def split_by_problem(rows: Sequence[dict], fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """(train, eval): a problem goes to eval when the hash of (seed, problem_id or problem) falls below
    ``fraction``, so every row of a problem lands on one side, whatever the row order or data size."""
    import hashlib

    if fraction <= 0:
        return list(rows), []
    train, held = [], []
    for row in rows:
        key = f"{seed}:{row.get('problem_id') or row.get('problem')}".encode()
        u = int.from_bytes(hashlib.sha256(key).digest()[:8], "big") / 2**64
        (held if u < fraction else train).append(row)
    return train, held


def _encode(tokenizer, text: str) -> list[int]:
    return list(tokenizer.encode(text, add_special_tokens=False))


def ssft_example(tokenizer, problem: str, solution: str, max_len: int, eos_id: int | None) -> dict | None:
    """``{input_ids, loss_mask}`` or None when the prompt alone leaves no room for a completion token.
    Over-long completions are cut on the right (the prompt is always kept whole)."""
    prompt = _encode(tokenizer, plain_prompt(problem))
    target = _encode(tokenizer, completion(solution)) + ([eos_id] if eos_id is not None else [])
    if len(prompt) + 1 > max_len or not target:
        return None
    target = target[: max_len - len(prompt)]
    return {"input_ids": prompt + target, "loss_mask": [0] * len(prompt) + [1] * len(target)}


def ssft_sources(rows: Iterable[dict]) -> tuple[list[tuple[str, str]], dict]:
    """(problem, solution) pairs from PROBLEMS rows (``reference_solution``) or SAMPLES rows (``text`` of the
    correct ones); stats count what was left out and why."""
    pairs, stats = [], defaultdict(int)
    for row in rows:
        if not isinstance(row.get("problem"), str) or not row["problem"].strip():
            stats["skipped_null_problem"] += 1
        elif "is_correct" in row:                     # a SAMPLES row
            if row["is_correct"] is None:
                stats["skipped_null_is_correct"] += 1
            elif row["is_correct"] and (row.get("text") or "").strip():
                pairs.append((row["problem"], row["text"]))
            else:
                stats["skipped_incorrect_sample"] += 1
        elif (row.get("reference_solution") or "").strip():
            pairs.append((row["problem"], row["reference_solution"]))
        else:
            stats["skipped_no_reference_solution"] += 1
    return pairs, dict(stats)


def ssft_examples(tokenizer, rows: Iterable[dict], max_len: int, eos_id: int | None) -> tuple[list[dict], dict]:
    pairs, stats = ssft_sources(rows)
    out = []
    for problem, solution in pairs:
        ex = ssft_example(tokenizer, problem, solution, max_len, eos_id)
        if ex is None:
            stats["skipped_too_long"] = stats.get("skipped_too_long", 0) + 1
        else:
            out.append(ex)
    return out, stats


def verifier_example(tokenizer, problem: str, solution: str, is_correct: bool, max_len: int,
                     suffix: Sequence[int] = ()) -> dict | None:
    """``{input_ids, last_index, is_correct}`` from ``encode_verifier`` (``suffix``: the label tokens' shared
    prefix, ``label_tokens.LabelTokens.verifier_suffix``); None when the input exceeds ``max_len`` (the label is read
    at the LAST token, so the prompt cannot be cut without moving the readout position)."""
    ids = encode_verifier(tokenizer, problem, solution, suffix)
    if len(ids) > max_len:
        return None
    return {"input_ids": ids, "last_index": len(ids) - 1, "is_correct": bool(is_correct)}


def _by_problem(rows: Iterable[dict]) -> dict[str, dict[bool, list[dict]]]:
    groups: dict[str, dict[bool, list[dict]]] = {}
    for row in rows:
        groups.setdefault(row["problem_id"], {True: [], False: []})[bool(row["is_correct"])].append(row)
    return dict(sorted(groups.items()))


def _shuffled(items: list, rng: random.Random) -> list:
    items = sorted(items, key=lambda r: r.get("sample_id", 0))
    rng.shuffle(items)
    return items


def verifier_candidates(rows: Iterable[dict], per_problem: int, seed: int) -> tuple[list[dict], dict]:
    """Up to ``per_problem`` SAMPLES rows per problem, half correct and half incorrect where both exist
    (the short side is filled from the other class). Deterministic in ``seed``."""
    rng = random.Random(seed)
    stats: dict = defaultdict(int)
    rows = valid_rows(rows, SAMPLE_FIELDS, stats)
    chosen = []
    for groups in _by_problem(rows).values():
        good, bad = _shuffled(groups[True], rng), _shuffled(groups[False], rng)
        n_good = min(len(good), max(per_problem // 2, per_problem - len(bad)))
        n_bad = min(len(bad), per_problem - n_good)
        chosen += good[:n_good] + bad[:n_bad]
        stats["problems"] += 1
        stats["problems_one_class_only"] += int(not good or not bad)
        stats["correct"] += n_good
        stats["incorrect"] += n_bad
    return chosen, dict(stats)


def candidate_pairs(rows: Iterable[dict], per_problem: int, seed: int) -> tuple[list[tuple[dict, dict]], dict]:
    """Up to ``per_problem`` (correct, incorrect) SAMPLES-row pairs per problem: each class shuffled, then
    paired cyclically, so every candidate is used before any repeats. Problems lacking either class give no
    pair and are counted in ``problems_without_pair``."""
    rng = random.Random(seed)
    stats: dict = defaultdict(int)
    rows = valid_rows(rows, SAMPLE_FIELDS, stats)
    pairs = []
    for groups in _by_problem(rows).values():
        good, bad = _shuffled(groups[True], rng), _shuffled(groups[False], rng)
        stats["problems"] += 1
        if not good or not bad:
            stats["problems_without_pair"] += 1
            continue
        n = min(per_problem, max(len(good), len(bad)))
        pairs += [(good[k % len(good)], bad[k % len(bad)]) for k in range(n)]
        stats["pairs"] += n
    return pairs, dict(stats)


def verifier_examples(tokenizer, rows: Sequence[dict], per_problem: int, max_len: int,
                      seed: int, suffix: Sequence[int] = ()) -> tuple[list[dict], dict]:
    chosen, stats = verifier_candidates(rows, per_problem, seed)
    out = []
    for r in chosen:
        ex = verifier_example(tokenizer, r["problem"], r["text"], r["is_correct"], max_len, suffix)
        if ex is None:
            stats["skipped_too_long"] = stats.get("skipped_too_long", 0) + 1
        else:
            out.append(ex)
    return out, stats


def pair_examples(rows: Sequence[dict], per_problem: int, seed: int,
                   make: Callable[[dict, bool], dict | None]) -> tuple[list[dict], dict]:
    """``{correct: make(good), incorrect: make(bad)}`` per candidate pair; pairs with a too-long side are
    counted in ``stats["skipped_too_long"]``."""
    pairs, stats = candidate_pairs(rows, per_problem, seed)
    out = []
    for good, bad in pairs:
        a, b = make(good, True), make(bad, False)
        if a is None or b is None:
            stats["skipped_too_long"] = stats.get("skipped_too_long", 0) + 1
        else:
            out.append({"correct": a, "incorrect": b})
    return out, stats


def verifier_pair_examples(tokenizer, rows: Sequence[dict], per_problem: int, max_len: int,
                           seed: int, suffix: Sequence[int] = ()) -> tuple[list[dict], dict]:
    """``{correct: verifier example, incorrect: verifier example}`` per pair (cls-margin)."""
    return pair_examples(rows, per_problem, seed, lambda r, ok: verifier_example(
        tokenizer, r["problem"], r["text"], ok, max_len, suffix))


def generator_pair_examples(tokenizer, rows: Sequence[dict], per_problem: int, max_len: int, eos_id: int | None,
                            seed: int) -> tuple[list[dict], dict]:
    """``{correct: SSFT example, incorrect: SSFT example}`` per pair of the generator's own graded samples
    (L_seq of the sequential stage 3)."""
    return pair_examples(rows, per_problem, seed, lambda r, ok: ssft_example(
        tokenizer, r["problem"], r["text"], max_len, eos_id))


def with_references(pairs: Sequence[dict], references: Sequence[dict], seed: int,
                    cycle_pairs: bool = True) -> list[dict]:
    """Each L_seq pair with an SSFT reference example for L_mle (``{correct, incorrect, reference}``), references
    shuffled by ``seed``: both lists cycled to the longer one's length, so one pass uses every pair and every
    reference (training); ``cycle_pairs=False``: each pair once (evaluation)."""
    if not pairs or not references:
        return []
    refs = list(references)
    random.Random(seed).shuffle(refs)
    n = max(len(pairs), len(refs)) if cycle_pairs else len(pairs)
    return [{**pairs[k % len(pairs)], "reference": refs[k % len(refs)]} for k in range(n)]


def prm_example(tokenizer, prompt: str, steps: Sequence[str], hard_labels: Sequence[int],
                soft_labels: Sequence[float] | None, tag_id: int | Sequence[int], max_len: int) -> dict | None:
    """``{input_ids, tag_positions, hard_labels, soft_labels}`` from ``encode_prm``; steps whose tag falls
    beyond ``max_len`` are dropped (with their labels). None when no step fits."""
    if len(hard_labels) != len(steps) or (soft_labels is not None and len(soft_labels) != len(steps)):
        raise ValueError(f"{len(steps)} steps but {len(hard_labels)} hard / "
                         f"{None if soft_labels is None else len(soft_labels)} soft labels")
    ids, positions = encode_prm(tokenizer, prompt, steps, tag_id)
    keep = sum(1 for p in positions if p < max_len)
    if keep == 0:
        return None
    return {"input_ids": ids[: positions[keep - 1] + 1], "tag_positions": positions[:keep],
            "hard_labels": [int(x) for x in hard_labels[:keep]],
            "soft_labels": None if soft_labels is None else [float(x) for x in soft_labels[:keep]]}


def prm_examples(tokenizer, rows: Iterable[dict], tag_id: int | Sequence[int], max_len: int,
                 targets: str = "hard") -> tuple[list[dict], dict]:
    """PRM examples from STEP_LABELS rows. ``targets="soft"`` needs ``soft_labels`` (rows without are
    skipped and counted). PRM800K rows are already cut after the first bad step by ingest."""
    out, stats = [], defaultdict(int)
    for row in valid_rows(rows, STEP_FIELDS, stats):
        if any(h not in (0, 1) for h in row["hard_labels"]):
            stats["skipped_bad_hard_labels"] += 1
            continue
        soft = row.get("soft_labels")
        if targets == "soft" and (soft is None or any(v is None for v in soft)):
            stats["skipped_no_soft_labels"] += 1
            continue
        try:
            ex = prm_example(tokenizer, sample_prompt(row), row["steps"], row["hard_labels"],
                             soft if targets == "soft" else None, tag_id, max_len)
        except ValueError:
            stats["skipped_label_count_mismatch"] += 1
            continue
        if ex is None:
            stats["skipped_too_long"] += 1
        else:
            out.append(ex)
    return out, dict(stats)


def orm_example(tokenizer, prompt: str, solution: str, is_correct: bool, tag_id: int | Sequence[int],
                max_len: int) -> dict | None:
    """A PRM-layout example from ``encode_orm``: one tag after the whole solution, hard label ``is_correct``;
    None when the tag falls beyond ``max_len`` (cutting the solution would change what is graded)."""
    ids, pos = encode_orm(tokenizer, prompt, solution, tag_id)
    if len(ids) > max_len:
        return None
    return {"input_ids": ids, "tag_positions": [pos], "hard_labels": [int(bool(is_correct))], "soft_labels": None}


def orm_examples(tokenizer, rows: Sequence[dict], tag_id: int | Sequence[int], per_problem: int, max_len: int,
                 seed: int) -> tuple[list[dict], dict]:
    """ORM examples from graded SAMPLES rows, balanced per problem like the verifier's candidates."""
    chosen, stats = verifier_candidates(rows, per_problem, seed)
    out = []
    for r in chosen:
        ex = orm_example(tokenizer, sample_prompt(r), r["text"], r["is_correct"], tag_id, max_len)
        if ex is None:
            stats["skipped_too_long"] = stats.get("skipped_too_long", 0) + 1
        else:
            out.append(ex)
    return out, stats
