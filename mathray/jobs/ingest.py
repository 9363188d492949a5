"""Loaders from public math data formats into the PROBLEMS (and STEP_LABELS) schemas.

Each loader turns one raw record into ``Loaded``: a problem row, a step-label row, both, a skip (a valid
record that the format's conventions leave out, e.g. PRM800K quality-control questions) or a quarantine
reason. Formats:

- ``gsm8k``: ``{question, answer}`` with the final answer after ``#### ``.
- ``math``: ``{problem, solution, level: "Level 5", type}`` (JSONL, or the one-file-per-problem layout);
  the answer is the last ``\\boxed{}`` of the solution.
- ``math500``: ``{problem, solution, answer, subject, level, unique_id}``.
- ``prm800k``: phase1/phase2 labels. As ``prm_dataset.py`` of the reference repo: quality-control and
  screening questions and ``bad_problem``/``give_up`` are skipped; per step the chosen completion (a human
  completion counts as rating +1, otherwise the first completion); the path is cut after the first -1;
  neutral (0) counts as positive in ``hard_labels`` (raw ratings stay in ``metadata``).
- ``math_shepherd``: ``{input, label}`` with ``ки`` step tags and ``+``/``-`` labels.
- ``mapped``: any JSONL/parquet/HF dataset with a field mapping (see ``FieldMap``).

Sources are local or S3 files, a MATH-layout directory, or a split of a Hugging Face hub data set
(``hf://owner/name?split=...``, see ``mathray.jobs.hub``).

The job (``run_ingest``) runs as every data job does, through ``runtime.spec``/``runtime.stage``:
1. the driver streams the source's records, unparsed, into RECORDS shards of ``shard_rows`` (a work area under
   the problems output, ``_ingest/``; one shard in memory at a time);
2. one Ray task reads them in order and records which records repeat an earlier record's problem_id
   (``first_seen``: the same problem again is kept once, other content under the same id is quarantined);
3. the stages ``INGEST_PROBLEMS`` (and, for the formats with step labels, ``INGEST_STEP_LABELS``): Ray tasks
   parse and validate each record and the runner commits the output shard of each records shard, with its
   quarantine rows (named by the source file and record number) and its skipped records counted in the
   marker. The driver reads only commit markers; the work area's shards are deleted once the outputs are
   complete.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Literal

import pyarrow as pa
from pydantic import field_validator

from mathray.config import ConfigError, StrictModel, code_version, outside_lineage
from mathray.core import schemas, toy
from mathray.core.prompts import SHEPHERD_TAG
from mathray.grading.extract import last_boxed
from mathray.jobs.hub import hub_fingerprint, is_hub_uri, load_hub_split, parse_hub_uri
from mathray.runtime import storage
from mathray.runtime.commit import ORIGIN, ORIGIN_ROW, SKIP
from mathray.runtime.errors import JobFailed
from mathray.runtime.lease import OutputLease
from mathray.runtime.lineage import Lineage
from mathray.runtime.spec import StageJobConfig, StageSpec, run_spec
from mathray.runtime.stage import (N_OUT, RAW, SRC_ROW, SRC_SHARD, check_lineage, is_quarantined, quarantined,
                                   rows_to_table, with_source)
from mathray.runtime.storage import CorruptShard, ShardStore, join, read_bytes, resolve, shard_name, write_bytes_atomic


@dataclass
class Loaded:
    problem: dict | None = None
    step_labels: dict | None = None
    skip: str | None = None          # valid record left out by the format's conventions
    error: str | None = None         # malformed record: goes to quarantine


def stable_id(prefix: str, text: str) -> str:
    return f"{prefix}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def _str(obj: dict, key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"missing or non-string field {key!r}")
    return value


def _int_level(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and (m := re.search(r"\d+", value)):
        return int(m.group())
    return None


def gsm8k_answer(solution: str) -> str:
    """The number after ``#### `` with thousands separators removed."""
    if "####" not in solution:
        raise ValueError("GSM8K answer has no '####' line")
    ans = solution.split("####", 1)[1].strip().splitlines()[0].strip().replace(",", "")
    if not ans:
        raise ValueError("empty answer after '####'")
    return ans


def load_gsm8k(obj: dict, index: int, prefix: str) -> Loaded:
    question, solution = _str(obj, "question"), _str(obj, "answer")
    return Loaded(problem={
        "problem_id": f"{prefix}-{index:05d}", "source": "gsm8k", "problem": question,
        "reference_solution": solution, "answer": gsm8k_answer(solution), "subject": None, "level": None,
        "metadata": None,
    })


def load_math(obj: dict, index: int, prefix: str) -> Loaded:
    problem, solution = _str(obj, "problem"), _str(obj, "solution")
    answer = obj.get("answer") if isinstance(obj.get("answer"), str) else last_boxed(solution)
    if answer is None:
        raise ValueError("solution has no \\boxed{} answer")
    if not answer.strip():
        raise ValueError("solution's \\boxed{} is empty (no reference answer)")
    pid = obj.get("unique_id") if isinstance(obj.get("unique_id"), str) else f"{index:05d}"
    return Loaded(problem={
        "problem_id": f"{prefix}-{pid}", "source": prefix.split("-")[0], "problem": problem,
        "reference_solution": solution, "answer": answer,
        "subject": obj.get("subject") or obj.get("type"), "level": _int_level(obj.get("level")),
        "metadata": json.dumps({"unique_id": obj.get("unique_id")}) if obj.get("unique_id") else None,
    })


def load_prm800k(obj: dict, index: int, prefix: str) -> Loaded:
    if obj.get("is_quality_control_question") or obj.get("is_initial_screening_question"):
        return Loaded(skip="quality-control or screening question")
    question, label = obj.get("question"), obj.get("label")
    if not isinstance(question, dict) or not isinstance(label, dict):
        raise ValueError("missing 'question' or 'label' object")
    finish = label.get("finish_reason")
    if finish in ("bad_problem", "give_up"):
        return Loaded(skip=f"finish_reason {finish}")
    problem, answer = _str(question, "problem"), question.get("ground_truth_answer")
    if not isinstance(answer, str) or not answer.strip():
        raise ValueError("missing question.ground_truth_answer")
    steps, ratings = [], []
    for step in label.get("steps") or []:
        if step.get("human_completion"):
            text, rating = step["human_completion"].get("text") if isinstance(step["human_completion"], dict) \
                else step["human_completion"], 1
        else:
            comps = step.get("completions") or []
            if not comps:
                break
            chosen = step.get("chosen_completion")
            comp = comps[chosen] if isinstance(chosen, int) and 0 <= chosen < len(comps) else comps[0]
            text, rating = comp.get("text"), comp.get("rating")
        if not isinstance(text, str) or rating not in (-1, 0, 1):
            raise ValueError("step without text or with a rating outside {-1, 0, 1}")
        steps.append(text)
        ratings.append(rating)
        if rating == -1:  # phase 2 stops at the first error; the path ends there
            break
    if not steps:
        raise ValueError("no labelled steps")
    pid = stable_id(prefix, problem)
    meta = json.dumps({"ratings": ratings, "generation": obj.get("generation"), "finish_reason": finish,
                       "labeler": obj.get("labeler")})
    return Loaded(
        problem={"problem_id": pid, "source": "prm800k", "problem": problem,
                 "reference_solution": question.get("ground_truth_solution"), "answer": answer,
                 "subject": None, "level": None, "metadata": None},
        step_labels={"problem_id": pid, "sample_id": index, "problem": problem, "steps": steps,
                     "hard_labels": [0 if r == -1 else 1 for r in ratings], "soft_labels": None,
                     "label_source": "prm800k", "rollouts": None, "tokens_generated": None,
                     "metadata": meta},
    )


_SHEPHERD_STEP = re.compile(r"\s*Step \d+:", re.IGNORECASE)


def load_math_shepherd(obj: dict, index: int, prefix: str) -> Loaded:
    text, labeled = _str(obj, "input"), _str(obj, "label")
    chunks = text.split(SHEPHERD_TAG)
    if len(chunks) < 2:
        raise ValueError(f"no '{SHEPHERD_TAG}' step tags in input")
    first = _SHEPHERD_STEP.search(chunks[0])
    if first is None:
        raise ValueError("cannot find 'Step 1:' to separate the problem from the steps")
    problem = chunks[0][: first.start()].strip()
    steps = [chunks[0][first.start():].strip()] + [c.strip() for c in chunks[1:-1]]
    # the label text is the input with each tag replaced by + or -: read the label after each step
    labels, pos = [], 0
    for step in steps:
        at = labeled.find(step, pos)
        if at < 0:
            raise ValueError("label text does not match the input steps")
        pos = at + len(step)
        mark = labeled[pos:].lstrip()[:1]
        if mark not in "+-" or not mark:
            raise ValueError(f"step {len(labels) + 1} has no +/- label")
        labels.append(1 if mark == "+" else 0)
    pid = stable_id(prefix, problem)
    return Loaded(step_labels={
        "problem_id": pid, "sample_id": index, "problem": problem, "steps": steps, "hard_labels": labels,
        "soft_labels": None, "label_source": "math-shepherd", "rollouts": None, "tokens_generated": None,
        "metadata": json.dumps({"task": obj.get("task")}) if obj.get("task") else None,
    })


def load_processbench(obj: dict, index: int, prefix: str) -> Loaded:
    """ProcessBench (``Qwen/ProcessBench``, one split per subset): a model's solution as ``steps`` and ``label``,
    the index of its earliest wrong step or -1 when every step is right. Steps from the label on are hard-labelled
    0 (the benchmark labels only the first error); the subset is ``id`` without its number (``gsm8k-12``)."""
    problem, steps, label = _str(obj, "problem"), obj.get("steps"), obj.get("label")
    if not isinstance(steps, list) or not steps or not all(isinstance(s, str) and s.strip() for s in steps):
        raise ValueError("steps must be a non-empty list of non-empty strings")
    if not isinstance(label, int) or isinstance(label, bool) or not -1 <= label < len(steps):
        raise ValueError(f"label {label!r} is neither -1 nor the index of one of the {len(steps)} steps")
    rid = str(obj.get("id") or "")
    meta = {"subset": rid.rsplit("-", 1)[0] if "-" in rid else prefix, "id": rid or None,
            "generator": obj.get("generator"), "final_answer_correct": obj.get("final_answer_correct")}
    return Loaded(step_labels={
        "problem_id": stable_id(prefix, problem), "sample_id": index, "problem": problem,
        "steps": [s.strip() for s in steps], "hard_labels": [0 if 0 <= label <= i else 1 for i in range(len(steps))],
        "soft_labels": None, "label_source": "processbench", "rollouts": None, "tokens_generated": None,
        "metadata": json.dumps(meta), "first_error_step": None if label == -1 else label,
    })


@dataclass
class FieldMap:
    """Where the problem-schema fields live in an arbitrary record (``mapped`` format)."""

    problem: str = "problem"
    answer: str | None = "answer"          # None: take it from the solution (see answer_from)
    solution: str | None = None
    id: str | None = None
    subject: str | None = None
    level: str | None = None
    answer_from: str = "field"             # field | boxed | gsm8k


def load_mapped(obj: dict, index: int, prefix: str, fields: FieldMap) -> Loaded:
    problem = _str(obj, fields.problem)
    solution = obj.get(fields.solution) if fields.solution else None
    if fields.answer_from == "field":
        raw = obj.get(fields.answer or "answer")
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            raw = str(raw)
        answer = raw if isinstance(raw, str) and raw.strip() else None
    elif fields.answer_from == "boxed":
        answer = last_boxed(solution) if isinstance(solution, str) else None
    elif fields.answer_from == "gsm8k":
        answer = gsm8k_answer(solution) if isinstance(solution, str) else None
    else:
        raise ValueError(f"unknown answer_from {fields.answer_from!r}")
    if not answer:
        raise ValueError("no answer found")
    rid = obj.get(fields.id) if fields.id else None
    return Loaded(problem={
        "problem_id": f"{prefix}-{rid if rid is not None else f'{index:05d}'}", "source": prefix,
        "problem": problem, "reference_solution": solution if isinstance(solution, str) else None,
        "answer": answer, "subject": obj.get(fields.subject) if fields.subject else None,
        "level": _int_level(obj.get(fields.level)) if fields.level else None, "metadata": None,
    })


LOADERS: dict[str, Callable[..., Loaded]] = {
    "gsm8k": load_gsm8k, "math": load_math, "math500": load_math, "prm800k": load_prm800k,
    "math_shepherd": load_math_shepherd, "processbench": load_processbench,
}


def load_record(fmt: str, obj: Any, index: int, prefix: str, fields: FieldMap | None = None) -> Loaded:
    """One raw record -> Loaded; never raises on bad records (they come back with ``error``)."""
    if not isinstance(obj, dict):
        return Loaded(error=f"record is a {type(obj).__name__}, not an object")
    try:
        if fmt == "mapped":
            return load_mapped(obj, index, prefix, fields or FieldMap())
        return LOADERS[fmt](obj, index, prefix)
    except (ValueError, KeyError, TypeError, AttributeError, IndexError) as e:
        return Loaded(error=str(e) or type(e).__name__)


# -- raw record readers -------------------------------------------------------------------------------
class UnreadableInput(JobFailed):
    """The whole input cannot be read (missing, not the expected container format)."""


def _decoded_lines(chunks: Iterator[bytes]) -> Iterator[tuple[str | None, str | None, str]]:
    """(line, None, line) per non-empty line of a byte stream, or (None, error, raw text) for a line that is
    not UTF-8; the stream is read chunk by chunk."""
    def lines() -> Iterator[bytes]:
        rest = b""
        for chunk in chunks:
            parts = (rest + chunk).split(b"\n")
            rest = parts.pop()
            yield from parts
        yield rest

    for raw in lines():
        if not raw.strip():
            continue
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            yield None, f"line is not valid UTF-8 ({e.reason} at byte {e.start})", raw[:2000].decode(
                "utf-8", "replace")
            continue
        yield line, None, line


def _file_chunks(path: str, size: int = 1 << 22) -> Iterator[bytes]:
    fs, local = resolve(path)
    with fs.open_input_stream(local) as f:
        while chunk := f.read(size):
            yield chunk


def _parquet_records(path: str) -> Iterator[dict]:
    import pyarrow.parquet as pq

    fs, local = resolve(path)
    try:
        reader = pq.ParquetFile(fs.open_input_file(local))
    except Exception as e:  # noqa: BLE001
        raise UnreadableInput(f"{path} is not a readable parquet file: {e}") from e
    for batch in reader.iter_batches(batch_size=1024):
        yield from batch.to_pylist()


def _directory_records(path: str) -> Iterator[tuple[str | None, str | None, str]]:
    """MATH layout: one JSON file per problem; its path relative to ``path`` becomes ``unique_id``."""
    local = Path(path)
    files = sorted(local.rglob("*.json"))
    if not files:
        raise UnreadableInput(f"directory {path} has no *.json files")
    for f in files:
        rel = f.relative_to(local).as_posix()
        try:
            obj = json.loads(f.read_text(encoding="utf-8"))
            if isinstance(obj, dict):
                obj.setdefault("unique_id", rel)
            yield _json_text(obj), None, rel
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            yield None, f"{rel}: {e}", rel


def _json_text(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, default=str)


def iter_raw_records(path: str) -> Iterator[tuple[str | None, str | None, str]]:
    """(record as JSON text, None, raw) per record, or (None, error, raw) for one that cannot be read as text,
    of a local/S3 JSONL or parquet file, a directory of per-problem JSON files (MATH layout), or a split of a
    Hugging Face hub data set (``hf://owner/name?split=...``). JSONL lines are passed on unparsed (workers
    parse them); files are streamed, never read whole."""
    if is_hub_uri(path):
        try:
            ds = load_hub_split(path)
        except ValueError as e:
            raise UnreadableInput(str(e)) from e
        for rec in ds:
            yield _json_text(rec), None, ""
        return
    if "://" not in path and Path(path).is_dir():
        yield from _directory_records(path)
        return
    if not storage.exists(path):
        raise UnreadableInput(f"input not found: {path}")
    if path.endswith(".parquet"):
        for rec in _parquet_records(path):
            yield _json_text(rec), None, ""
        return
    yield from _decoded_lines(_file_chunks(path))


def parse_record(text: str) -> tuple[Any, str | None]:
    """(record, None) for JSON text, or (None, why it is not JSON)."""
    try:
        return json.loads(text), None
    except json.JSONDecodeError as e:
        return None, f"invalid JSON: {e.msg} (column {e.colno})"


def iter_records(path: str) -> Iterator[tuple[Any, str | None, str]]:
    """``iter_raw_records`` parsed: (record or None, error or None, raw); bad records never stop the read."""
    for text, err, raw in iter_raw_records(path):
        obj, err = (None, err) if err else parse_record(text)
        yield obj, err, raw


def source_fingerprint(path: str) -> str:
    """Content hash of a source file, of a MATH-layout directory's files, or of a hub split's data."""
    if is_hub_uri(path):
        try:
            return hub_fingerprint(path)
        except ValueError as e:
            raise UnreadableInput(str(e)) from e
    h = hashlib.sha256()
    local = Path(path)
    if "://" not in path and local.is_dir():
        for f in sorted(local.rglob("*.json")):
            h.update(f.relative_to(local).as_posix().encode())
            h.update(f.read_bytes())
    elif storage.exists(path):
        for chunk in _file_chunks(path):
            h.update(chunk)
    else:
        raise UnreadableInput(f"input not found: {path}")
    return "file@" + h.hexdigest()[:16]


# -- the ingest job -----------------------------------------------------------------------------------
class FieldMapConfig(StrictModel):
    problem: str = "problem"
    answer: str | None = "answer"
    solution: str | None = None
    id: str | None = None
    subject: str | None = None
    level: str | None = None
    answer_from: str = "field"


class SourceConfig(StrictModel):
    format: str = "toy"               # toy | gsm8k | math | math500 | prm800k | math_shepherd | processbench | mapped
    # where the records are: knobs, since the lineage holds each source's content fingerprint instead.
    # A local path, s3:// URI, directory (MATH layout) or hub split: hf://owner/name?split=test[&config=main]
    path: str | None = outside_lineage(None)
    # further sources of the same format, read after ``path`` (MATH train + test)
    more_paths: list[str] = outside_lineage([])
    exclude: list[str] = outside_lineage([])  # sources whose problems are left out (same problem text): MATH-500
    id_prefix: str | None = None      # problem_id prefix; default: the format name
    fields: FieldMapConfig = FieldMapConfig()
    split: str = "train"              # toy only: train | test

    @field_validator("path", "more_paths", "exclude")
    @classmethod
    def _hub_uris_parse(cls, value):
        for path in value if isinstance(value, list) else [value]:
            if path and is_hub_uri(path):
                parse_hub_uri(path)
        return value


class IngestConfig(StrictModel):
    source: SourceConfig = SourceConfig()
    toy: dict = {}                    # ToyTaskConfig fields (format: toy)
    output: str = outside_lineage("runs/default/problems")
    step_labels_output: str | None = outside_lineage(None)  # default: a sibling 'step_labels' directory of output
    shard_rows: int = 1000
    resume: Literal["auto", "overwrite"] = outside_lineage("auto")  # overwrite: clear outputs of another lineage
    workers: int = outside_lineage(2, ge=1)  # Ray tasks parsing and validating records at once, at most


@dataclass
class IngestSummary:
    records: int = 0
    problems: int = 0
    step_labels: int = 0
    skipped: int = 0
    duplicates: int = 0              # records repeating an earlier record's problem (same content): kept once
    quarantined: int = 0
    shards_committed: int = 0
    shards_skipped: int = 0

    def lines(self) -> list[str]:
        return [f"[ingest] records read: {self.records}",
                f"[ingest] problems: {self.problems}, step-labelled solutions: {self.step_labels}",
                f"[ingest] skipped by format rules: {self.skipped}, repeated problems kept once: "
                f"{self.duplicates}, quarantined: {self.quarantined}",
                f"[ingest] shards committed now: {self.shards_committed}, already committed: "
                f"{self.shards_skipped}"]


LABEL_FORMATS = ("prm800k", "math_shepherd", "processbench")   # the formats that give STEP_LABELS rows

# The records as read from the source (the ingest stages' input): JSON text, parsed in the workers, or the
# reason the reader could not make text of it (with the raw bytes as text)
RECORDS = pa.schema([
    pa.field("index", pa.int64(), nullable=False),       # position in the source (all paths, in order)
    pa.field("source", pa.string(), nullable=False),     # the path or hub split it came from
    pa.field("record", pa.string()),
    pa.field("error", pa.string()),
    pa.field("raw", pa.string()),
])
# Per records shard: its records (by position) whose problem an earlier record already has
DUPLICATES = pa.schema([pa.field("row", pa.int64(), nullable=False),
                        pa.field("duplicate", pa.string(), nullable=False)])   # "same" or the quarantine reason
SAME = "same"
LEFT_OUT, REPEATED, NOT_THIS_OUTPUT = "left out by the format or source.exclude", "repeated problem", "no row here"
WORK_DIR = "_ingest"   # under the problems output: records, duplicates, excluded.json


def _raw_records(cfg: IngestConfig) -> Iterator[dict]:
    """RECORDS rows of the configured source(s), in order (the toy task's rows are its records)."""
    src = cfg.source
    if src.format == "toy":
        rows = toy.generate_problems(toy.ToyTaskConfig(**cfg.toy), src.split)
        for i, row in enumerate(rows):
            yield {"index": i, "source": f"toy:{src.split}", "record": _json_text(row), "error": None, "raw": None}
        return
    if src.format not in LOADERS and src.format != "mapped":
        raise ConfigError(f"unknown source.format {src.format!r}")
    if not src.path:
        raise ConfigError("source.path is required for format " + src.format)
    i = 0
    for path in [src.path, *src.more_paths]:
        for text, err, raw in iter_raw_records(path):
            yield {"index": i, "source": path, "record": text, "error": err, "raw": raw if err else None}
            i += 1


def _problem_key(text: str) -> str:
    return hashlib.sha256(" ".join(text.split()).encode()).hexdigest()[:32]


def excluded_problems(paths: list[str]) -> set[str]:
    """Keys (hashes of the whitespace-normalised text) of the problems of every record of ``paths`` that has
    a ``problem``/``question``."""
    out = set()
    for path in paths:
        for obj, err, _ in iter_records(path):
            text = None if err or not isinstance(obj, dict) else (obj.get("problem") or obj.get("question"))
            if isinstance(text, str):
                out.add(_problem_key(text))
    return out


def ingest_lineage(cfg: IngestConfig):
    """Config and the source's content fingerprint (the toy task is its config)."""
    src = cfg.source
    if src.format != "toy" and not src.path:
        raise ConfigError("source.path is required for format " + src.format)
    inputs = {}
    if src.format != "toy":
        for i, path in enumerate([src.path, *src.more_paths]):
            inputs[f"source[{i}]"] = source_fingerprint(path)
        for i, path in enumerate(src.exclude):
            inputs[f"exclude[{i}]"] = source_fingerprint(path)
    return Lineage.of("ingest", cfg, inputs)


# -- what one record gives (the same code in the workers of both stages and of the duplicates pass) ------
def loaded(row: dict, cfg: IngestConfig, excluded: frozenset) -> tuple[Loaded, Any]:
    """A RECORDS row as ``Loaded``, and what its quarantine rows keep as ``raw``."""
    if row["error"]:
        return Loaded(error=row["error"]), row["raw"]
    obj, err = parse_record(row["record"])
    if err:
        return Loaded(error=err), row["record"]
    src = cfg.source
    if src.format == "toy":
        return Loaded(problem=obj), obj
    item = load_record(src.format, obj, row["index"], src.id_prefix or src.format,
                       FieldMap(**src.fields.model_dump()))
    if item.problem and excluded and _problem_key(item.problem["problem"]) in excluded:
        item = Loaded(skip="problem is in an excluded set (source.exclude)")
    return item, obj


def first_seen(seen: dict, item: Loaded, index: int) -> str | None:
    """None for a record without a valid problem row or whose problem_id is new (recorded in ``seen``);
    ``SAME`` for a repeat of an earlier record's problem; else the reason to quarantine the record."""
    row = item.problem
    if item.error or item.skip or row is None or schemas.row_problem(row, schemas.PROBLEMS) is not None:
        return None
    digest = hashlib.sha256(json.dumps(row, sort_keys=True, default=str).encode()).digest()[:16]
    first = seen.setdefault(row["problem_id"], (index, digest))
    if first[0] == index:
        return None
    return SAME if first[1] == digest else (
        f"duplicate problem_id {row['problem_id']!r} with other content (first at record {first[0]})")


@dataclass
class Outcome:
    """What one record gives: its rows of each output, its quarantine reasons, or why it gives none."""

    problem: dict | None = None
    step_labels: dict | None = None
    bad: list[str] = field(default_factory=list)
    skip: str | None = None


def outcome(item: Loaded, duplicate: str | None) -> Outcome:
    """Validated rows of a record: a repeated problem is kept once (its step labels are kept), a problem_id
    repeated with other content quarantines the record, a row not of its schema is quarantined."""
    if item.error:
        return Outcome(bad=[item.error])
    if item.skip:
        return Outcome(skip=LEFT_OUT)
    if duplicate and duplicate != SAME:
        return Outcome(bad=[duplicate])
    out = Outcome(skip=REPEATED if duplicate == SAME else None)
    rows = {"problem": (None if duplicate == SAME else item.problem, schemas.PROBLEMS),
            "step_labels": (item.step_labels, schemas.STEP_LABELS)}
    for name, (row, schema) in rows.items():
        if row is None:
            continue
        reason = schemas.row_problem(row, schema)
        if reason:
            out.bad.append(reason)
        else:
            setattr(out, name, row)
    return out


def usable(o: Outcome) -> bool:
    return bool(o.problem or o.step_labels or o.skip)


# -- the stages ----------------------------------------------------------------------------------------
class IngestStageConfig(StageJobConfig):
    """What each ingest stage runs with (``run_ingest`` builds it): RECORDS shards in, the ``part`` output
    (PROBLEMS or STEP_LABELS) out."""

    ingest: IngestConfig
    part: Literal["problems", "step_labels"]
    work: str = outside_lineage("")   # the ingest's work area: duplicates and excluded problems


class IngestLoader:
    """The ingest stages' actor class (run in Ray tasks): parses and validates each record (``loaded``/
    ``outcome``) and gives its row of this stage's output, its quarantine rows (malformed records go to the step
    labels' quarantine for the formats that give step labels, else to the problems'), or one ``SKIP`` row saying
    why it gives none."""

    def __init__(self, cfg: dict, device: str):
        c = IngestStageConfig.model_validate(cfg)
        self.cfg, self.part = c.ingest, c.part
        self.schema = schemas.PROBLEMS if self.part == "problems" else schemas.STEP_LABELS
        self.quarantines = self.part == "step_labels" or self.cfg.source.format not in LABEL_FORMATS
        self.excluded = frozenset(json.loads(read_bytes(join(c.work, "excluded.json"))))
        self.duplicates = ShardStore(join(c.work, "duplicates"))

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows = batch.to_pylist()
        decisions = {}
        for name in {r[SRC_SHARD] for r in rows}:
            for d in self.duplicates.read_shard(name).to_pylist():
                decisions[(name, d["row"])] = d["duplicate"]
        out = []
        for row in rows:
            if is_quarantined(row):
                out.append(row)
                continue
            item, raw = loaded(row, self.cfg, self.excluded)
            out += self.rows_of(row, outcome(item, decisions.get((row[SRC_SHARD], row[SRC_ROW]))), raw)
        table = rows_to_table(out, self.schema)
        for name, typ in ((SKIP, pa.string()), (ORIGIN, pa.string()), (ORIGIN_ROW, pa.int64())):
            table = table.append_column(name, pa.array([r.get(name) for r in out], typ))
        return table

    def rows_of(self, src: dict, o: Outcome, raw: Any) -> list[dict]:
        row = o.problem if self.part == "problems" else o.step_labels
        bad = o.bad if self.quarantines else []
        if row is None and not bad:
            return [{**with_source({}, src, 1), SKIP: o.skip or NOT_THIS_OUTPUT}]
        n = len(bad) + (row is not None)
        out = [with_source(dict(row), src, n)] if row is not None else []
        for reason in bad:
            out.append({**quarantined(src, reason), N_OUT: n, ORIGIN: src["source"], ORIGIN_ROW: src["index"],
                        RAW: raw if isinstance(raw, str) else schemas.raw_json(raw)})
        return out


def _lineage(cfg: IngestStageConfig):
    return ingest_lineage(cfg.ingest)


def _pool(cfg: IngestStageConfig, device: str) -> dict:
    """Ray tasks (the loader holds only the work area's small decisions): no process started per stage."""
    from ray.data import TaskPoolStrategy

    return {"compute": TaskPoolStrategy(size=cfg.ingest.workers), "num_cpus": 1, "batch_size": None}


def _spec(part: str) -> StageSpec:
    key = ("problem_id",) if part == "problems" else ("problem_id", "sample_id")
    return StageSpec(job="ingest", input_schema=RECORDS, output_schema=getattr(schemas, part.upper()),
                     input_key=("index",), output_key=key, actor=IngestLoader, pool=_pool,
                     device=lambda cfg: "cpu", models=lambda cfg: {}, stats=lambda table: {}, lineage=_lineage)


INGEST_PROBLEMS, INGEST_STEP_LABELS = _spec("problems"), _spec("step_labels")


# -- the driver: read the source into records shards, find repeated problems, run the stages ------------
def read_source(cfg: IngestConfig, records, lineage) -> None:
    """Stream the source's records into RECORDS shards of ``shard_rows`` (one shard in memory at a time);
    nothing to do when the records of this lineage are all there (a re-run after a crash)."""
    try:
        manifest = records.read_manifest()
    except CorruptShard:
        manifest = None
    if manifest and manifest.get("complete") and manifest.get("lineage", {}).get("hash") == lineage.hash:
        return
    records.clear()
    version = code_version()

    def commit(index: int, batch: list[dict]) -> None:
        records.commit_shard(shard_name(index), pa.Table.from_pylist(batch, schema=RECORDS),
                             config_hash=lineage.hash, lineage=lineage.hash, code_version=version)

    batch, index = [], 0
    for row in _raw_records(cfg):
        batch.append(row)
        if len(batch) == cfg.shard_rows:
            commit(index, batch)
            batch, index = [], index + 1
    if batch or index == 0:
        commit(index, batch)
    records.write_manifest({"job": "ingest", "lineage": lineage.record(), "code_version": version})


def find_duplicates(cfg_json: dict, work: str, lineage_hash: str) -> int:
    """A Ray task (it needs every record in order, and its memory grows with the problems seen, so it is not
    the driver's): one DUPLICATES shard per records shard (``first_seen``); returns how many records give
    a row or are left out by rule (zero: the source has no usable record)."""
    cfg = IngestConfig.model_validate(cfg_json)
    records, duplicates = ShardStore(join(work, "records")), ShardStore(join(work, "duplicates"))
    excluded = frozenset(json.loads(read_bytes(join(work, "excluded.json"))))
    duplicates.clear()
    seen: dict = {}
    n_usable = 0
    for name in records.committed():
        found = []
        for pos, row in enumerate(records.read_shard(name).to_pylist()):
            item, _ = loaded(row, cfg, excluded)
            decision = first_seen(seen, item, row["index"])
            n_usable += usable(outcome(item, decision))
            if decision:
                found.append({"row": pos, "duplicate": decision})
        duplicates.commit_shard(name, pa.Table.from_pylist(found, schema=DUPLICATES), lineage=lineage_hash)
    return n_usable


def run_ingest(cfg: IngestConfig) -> IngestSummary:
    """Read the source into records shards (the driver streams them), then parse, validate and commit
    PROBLEMS (and STEP_LABELS) shards of ``shard_rows`` records each through the stage runner (Ray must be
    up: ``runtime.entry.init_ray``). Malformed records go to each shard's quarantine, and so does a record
    whose problem_id an earlier record of the source has with other content (the same content again is kept
    once and counted). Re-runs skip committed shards. The work area's writer lease is held throughout, each
    output's while its stage runs."""
    import ray

    lineage = ingest_lineage(cfg)
    outputs = _outputs(cfg)
    if cfg.resume == "auto":   # refuse another lineage's output before reading the source
        for store in outputs.values():
            check_lineage(store, lineage, cfg.resume)
    work = join(outputs["problems"].uri, WORK_DIR)
    records = ShardStore(join(work, "records"))
    with OutputLease(work, "ingest"):
        excluded = sorted(excluded_problems(cfg.source.exclude))
        write_bytes_atomic(join(work, "excluded.json"), json.dumps(excluded).encode())
        read_source(cfg, records, lineage)
        task = ray.remote(num_cpus=1, max_retries=3)(find_duplicates)
        n_usable = ray.get(task.remote(cfg.model_dump(mode="json"), work, lineage.hash))
        stages = {part: run_spec(INGEST_PROBLEMS if part == "problems" else INGEST_STEP_LABELS,
                                 IngestStageConfig(input=records.uri, output=store.uri, resume=cfg.resume,
                                                   ingest=cfg, part=part, work=work))
                  for part, store in outputs.items()}
        summary = ingest_summary(records, outputs, stages["problems"])
        if summary.records and not n_usable:
            for store in outputs.values():   # not complete: a pipeline runs it again (and fails again)
                store.write_manifest({"job": "ingest", "lineage": lineage.record()}, complete=False)
            raise UnreadableInput(f"no usable record in {cfg.source.path or 'the source'}: all {summary.records} "
                                  "were malformed (see the quarantine output)")
        for store in (records, ShardStore(join(work, "duplicates"))):
            store.clear()
    return summary


def _outputs(cfg: IngestConfig) -> dict:
    out = {"problems": ShardStore(cfg.output)}
    if cfg.source.format in LABEL_FORMATS:
        out["step_labels"] = ShardStore(cfg.step_labels_output or join(cfg.output, "..", "step_labels"))
    return out


def ingest_summary(records, outputs: dict, problems_stage) -> IngestSummary:
    """The counts over every committed shard (this run's and earlier ones), from the commit markers."""
    summary = IngestSummary(records=sum(c.rows for c in records.committed().values()),
                            shards_committed=problems_stage.shards_committed,
                            shards_skipped=problems_stage.shards_skipped)
    quarantine_in = "step_labels" if "step_labels" in outputs else "problems"
    for part, store in outputs.items():
        for commit in store.committed().values():
            setattr(summary, part, getattr(summary, part) + commit.rows)
            skipped = (commit.stats or {}).get("skipped", {}) if part == "problems" else {}
            summary.skipped += skipped.get(LEFT_OUT, 0)
            summary.duplicates += skipped.get(REPEATED, 0)
            summary.quarantined += commit.quarantined_rows if part == quarantine_in else 0
    return summary
