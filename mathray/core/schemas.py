"""The columns every stage reads and writes, as pyarrow schemas, plus row validation with quarantine.

Stages write explicit columns (never ``**row``). Non-nullable fields are required: a row without them, or
with a value of the wrong type, is quarantined with a reason instead of failing the job.

PROBLEMS      one math problem (ingest, toy task)                 key: problem_id
SAMPLES       one sampled solution, graded                        key: (problem_id, sample_id)
STEP_LABELS   per-step process labels (PRM800K, Math-Shepherd)    key: (problem_id, sample_id)
SCORES        verifier and ORM score per sample, PRM score per step    key: (problem_id, sample_id)
QUARANTINE    a refused row: where it came from, why, the raw row
"""
from __future__ import annotations

import json
import math
from typing import Any

import pyarrow as pa

PROBLEMS = pa.schema([
    pa.field("problem_id", pa.string(), nullable=False),
    pa.field("source", pa.string(), nullable=False),       # gsm8k | math | math500 | prm800k | toy | ...
    pa.field("problem", pa.string(), nullable=False),
    pa.field("reference_solution", pa.string()),           # step-by-step reference, when known
    pa.field("answer", pa.string(), nullable=False),       # reference final answer (LaTeX or number)
    pa.field("subject", pa.string()),
    pa.field("level", pa.int32()),
    pa.field("metadata", pa.string()),                     # JSON object with source-specific extras
])

SAMPLES = pa.schema([
    pa.field("problem_id", pa.string(), nullable=False),
    pa.field("sample_id", pa.int32(), nullable=False),     # 0..N-1 within the problem (N: a greedy_pass row)
    pa.field("problem", pa.string(), nullable=False),
    pa.field("reference_answer", pa.string(), nullable=False),
    pa.field("prompt_hash", pa.string(), nullable=False),
    pa.field("prompt", pa.string()),                       # the exact prompt (core.prompts.sample_prompt)
    pa.field("text", pa.string(), nullable=False),         # the generated solution (without the prompt)
    pa.field("answer", pa.string()),                       # extracted final answer; null: none found
    pa.field("is_correct", pa.bool_(), nullable=False),
    pa.field("grade_reason", pa.string(), nullable=False), # equal | not-equal | no-answer | timeout | truncated ...
    pa.field("num_prompt_tokens", pa.int32(), nullable=False),
    pa.field("num_output_tokens", pa.int32(), nullable=False),
    pa.field("finish_reason", pa.string(), nullable=False),  # stop | length
    pa.field("cumulative_logprob", pa.float64()),
    pa.field("generator", pa.string(), nullable=False),    # checkpoint id of the generator
    pa.field("sampling_params_hash", pa.string(), nullable=False),
    pa.field("seed", pa.int64()),
    # true: the problem's greedy decode (temperature 0: its Pass@1) that a run with ``greedy_pass`` adds to its N
    # samples (sample_id N), not one of them; a greedy run's own rows are its samples (n=1)
    pa.field("greedy_pass", pa.bool_()),
])

STEP_LABELS = pa.schema([
    pa.field("problem_id", pa.string(), nullable=False),
    pa.field("sample_id", pa.int32(), nullable=False),
    pa.field("problem", pa.string(), nullable=False),
    pa.field("steps", pa.list_(pa.string()), nullable=False),
    pa.field("hard_labels", pa.list_(pa.int8()), nullable=False),   # 1 good / 0 bad, one per step
    # fraction of rollouts reaching the answer; null where unmeasured or stopped at its first correct rollout
    pa.field("soft_labels", pa.list_(pa.float32())),
    pa.field("label_source", pa.string(), nullable=False),          # prm800k | shepherd-full | shepherd-first-error | math-shepherd
    pa.field("rollouts", pa.list_(pa.int32())),                      # rollouts spent per step
    pa.field("tokens_generated", pa.int64()),
    pa.field("metadata", pa.string()),
    pa.field("first_error_step", pa.int32()),                        # first step labelled 0; null: none (or unknown)
    pa.field("prompt", pa.string()),                                 # the solution's generation prompt; null: plain
])

SCORES = pa.schema([
    pa.field("problem_id", pa.string(), nullable=False),
    pa.field("sample_id", pa.int32(), nullable=False),
    pa.field("verifier_score", pa.float64()),              # S_cls = p(correct) / (p(correct) + p(incorrect))
    pa.field("orm_score", pa.float64()),                   # ORM p(+) / (p(+) + p(-)) at the tag after the solution
    pa.field("step_scores", pa.list_(pa.float64())),        # PRM p(good) per step
    pa.field("scorer", pa.string(), nullable=False),       # checkpoint id(s) of the scorer(s)
])

QUARANTINE = pa.schema([
    pa.field("source", pa.string(), nullable=False),       # file or shard the row came from
    pa.field("row_index", pa.int64()),
    pa.field("reason", pa.string(), nullable=False),
    pa.field("raw", pa.string()),                          # the row as JSON (truncated), for inspection
])

_RAW_LIMIT = 4000


def _int_range(typ: pa.DataType) -> tuple[int, int]:
    bits = typ.bit_width
    if pa.types.is_unsigned_integer(typ):
        return 0, 2**bits - 1
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


def _check_value(value: Any, typ: pa.DataType) -> str | None:
    """Reason the value does not fit ``typ``, or None when it does."""
    if pa.types.is_string(typ):
        if not isinstance(value, str):
            return f"expected a string, got {type(value).__name__}"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "not valid UTF-8 text"
        return None
    if pa.types.is_integer(typ):
        if isinstance(value, bool) or not isinstance(value, int):
            if not (isinstance(value, float) and value.is_integer()):
                return f"expected an integer, got {type(value).__name__}"
            value = int(value)
        lo, hi = _int_range(typ)
        if not lo <= value <= hi:   # checked here: pyarrow would fail the whole shard on it
            return f"integer {value} outside the range of {typ} [{lo}, {hi}]"
        return None
    if pa.types.is_floating(typ):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"expected a number, got {type(value).__name__}"
        return None
    if pa.types.is_boolean(typ):
        return None if isinstance(value, bool) else f"expected a bool, got {type(value).__name__}"
    if pa.types.is_list(typ):
        if not isinstance(value, (list, tuple)):
            return f"expected a list, got {type(value).__name__}"
        for v in value:
            if v is not None and (r := _check_value(v, typ.value_type)):
                return f"list element: {r}"
        return None
    return None


def row_problem(row: dict, schema: pa.Schema) -> str | None:
    """Why ``row`` is not a valid row of ``schema`` (first problem found), or None when it is valid."""
    if not isinstance(row, dict):
        return f"row is a {type(row).__name__}, not an object"
    for f in schema:
        value = row.get(f.name)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            if not f.nullable:
                return f"missing required field {f.name!r}"
            continue
        if (reason := _check_value(value, f.type)) is not None:
            return f"field {f.name!r}: {reason}"
        if not f.nullable and pa.types.is_string(f.type) and not value.strip():
            return f"empty required field {f.name!r}"
    return None


def raw_json(row: Any) -> str:
    try:
        text = json.dumps(row, ensure_ascii=False, default=repr)
    except (TypeError, ValueError):
        text = repr(row)
    return text[:_RAW_LIMIT]


def quarantine_row(source: str, row_index: int | None, reason: str, raw: Any) -> dict:
    return {"source": source, "row_index": row_index, "reason": reason,
            "raw": raw if isinstance(raw, str) else raw_json(raw)}


def to_table(rows: list[dict], schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=schema)
