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
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Literal

from mathray.core.prompts import SHEPHERD_TAG
from mathray.grading.extract import last_boxed
from mathray.jobs.hub import hub_fingerprint, is_hub_uri, load_hub_split, parse_hub_uri
from mathray.runtime.entry import JobFailed


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
    "math_shepherd": load_math_shepherd,
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


def iter_jsonl_bytes(data: bytes) -> Iterator[tuple[Any, str | None, str]]:
    """(record or None, error or None, raw line) per non-empty line; bad lines never stop the read."""
    for raw in data.split(b"\n"):
        if not raw.strip():
            continue
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            yield None, f"line is not valid UTF-8 ({e.reason} at byte {e.start})", raw[:2000].decode(
                "utf-8", "replace")
            continue
        try:
            yield json.loads(line), None, line
        except json.JSONDecodeError as e:
            yield None, f"invalid JSON: {e.msg} (column {e.colno})", line


def iter_records(path: str) -> Iterator[tuple[Any, str | None, str]]:
    """Records from a local/S3 JSONL or parquet file, a directory of per-problem JSON files (MATH layout),
    or a split of a Hugging Face hub data set (``hf://owner/name?split=...``)."""
    from mathray.runtime import storage

    if is_hub_uri(path):
        try:
            ds = load_hub_split(path)
        except ValueError as e:
            raise UnreadableInput(str(e)) from e
        for rec in ds:
            yield rec, None, ""
        return
    local = Path(path)
    if "://" not in path and local.is_dir():
        files = sorted(local.rglob("*.json"))
        if not files:
            raise UnreadableInput(f"directory {path} has no *.json files")
        for f in files:
            rel = f.relative_to(local).as_posix()
            try:
                obj = json.loads(f.read_text(encoding="utf-8"))
                if isinstance(obj, dict):
                    obj.setdefault("unique_id", rel)
                yield obj, None, rel
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                yield None, f"{rel}: {e}", rel
        return
    if not storage.exists(path):
        raise UnreadableInput(f"input not found: {path}")
    data = storage.read_bytes(path)
    if path.endswith(".parquet"):
        import io

        import pyarrow.parquet as pq

        try:
            table = pq.read_table(io.BytesIO(data))
        except Exception as e:  # noqa: BLE001
            raise UnreadableInput(f"{path} is not a readable parquet file: {e}") from e
        for rec in table.to_pylist():
            yield rec, None, ""
        return
    yield from iter_jsonl_bytes(data)


def source_fingerprint(path: str) -> str:
    """Content hash of a source file, of a MATH-layout directory's files, or of a hub split's data."""
    from mathray.runtime import storage

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
        h.update(storage.read_bytes(path))
    else:
        raise UnreadableInput(f"input not found: {path}")
    return "file@" + h.hexdigest()[:16]


# -- the ingest job -----------------------------------------------------------------------------------
from pydantic import field_validator  # noqa: E402

from mathray.config import ConfigError, StrictModel, knob  # noqa: E402  (kept beside the job it configures)


class FieldMapConfig(StrictModel):
    problem: str = "problem"
    answer: str | None = "answer"
    solution: str | None = None
    id: str | None = None
    subject: str | None = None
    level: str | None = None
    answer_from: str = "field"


class SourceConfig(StrictModel):
    format: str = "toy"               # toy | gsm8k | math | math500 | prm800k | math_shepherd | mapped
    # where the records are: knobs, since the lineage holds each source's content fingerprint instead.
    # A local path, s3:// URI, directory (MATH layout) or hub split: hf://owner/name?split=test[&config=main]
    path: str | None = knob(None)
    more_paths: list[str] = knob([])  # further sources of the same format, read after ``path`` (MATH train + test)
    exclude: list[str] = knob([])     # sources whose problems are left out (same problem text), e.g. MATH-500
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
    output: str = knob("runs/default/problems")
    step_labels_output: str | None = knob(None)  # default: a sibling 'step_labels' directory of output
    shard_rows: int = 1000
    resume: Literal["auto", "overwrite"] = knob("auto")   # overwrite: clear outputs of another lineage


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


def _loaded_records(cfg: IngestConfig) -> Iterator[tuple[Loaded, str]]:
    src = cfg.source
    prefix = src.id_prefix or src.format
    if src.format == "toy":
        from mathray.core import toy

        task = toy.ToyTaskConfig(**cfg.toy)
        for row in toy.generate_problems(task, src.split):
            yield Loaded(problem=row), ""
        return
    if src.format not in LOADERS and src.format != "mapped":
        raise ConfigError(f"unknown source.format {src.format!r}")
    if not src.path:
        raise ConfigError("source.path is required for format " + src.format)
    fields = FieldMap(**src.fields.model_dump())
    excluded = excluded_problems(src.exclude)
    i = 0
    for path in [src.path, *src.more_paths]:
        for obj, err, raw in iter_records(path):
            item = Loaded(error=err) if err else load_record(src.format, obj, i, prefix, fields)
            if item.problem and _problem_key(item.problem["problem"]) in excluded:
                item = Loaded(skip="problem is in an excluded set (source.exclude)")
            yield item, (raw if err else obj)
            i += 1


def _problem_key(text: str) -> str:
    return " ".join(text.split())


def excluded_problems(paths: list[str]) -> set[str]:
    """Problem texts (whitespace-normalised) of every record of ``paths`` that has a ``problem``/``question``."""
    out = set()
    for path in paths:
        for obj, err, _ in iter_records(path):
            text = None if err or not isinstance(obj, dict) else (obj.get("problem") or obj.get("question"))
            if isinstance(text, str):
                out.add(_problem_key(text))
    return out


def ingest_lineage(cfg: IngestConfig):
    """Config and the source's content fingerprint (the toy task is its config)."""
    from mathray.runtime.lineage import Lineage

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


LABEL_FORMATS = ("prm800k", "math_shepherd")   # the formats that give STEP_LABELS rows


def run_ingest(cfg: IngestConfig) -> IngestSummary:
    """Read the source, validate rows, and commit PROBLEMS (and STEP_LABELS) shards of ``shard_rows``
    input records each; malformed records go to each shard's quarantine, and so does a record whose
    problem_id an earlier record of the source has with other content (the same content again is kept once
    and counted). Re-runs skip committed shards. The outputs' writer leases are held throughout."""
    import contextlib

    from mathray.runtime.lease import OutputLease
    from mathray.runtime.storage import ShardStore, join

    problems = ShardStore(cfg.output)
    labels = ShardStore(cfg.step_labels_output or join(cfg.output, "..", "step_labels"))
    with contextlib.ExitStack() as leases:
        leases.enter_context(OutputLease(problems.uri, "ingest"))
        if cfg.source.format in LABEL_FORMATS:
            leases.enter_context(OutputLease(labels.uri, "ingest"))
        return _ingest(cfg, problems, labels)


def _ingest(cfg: IngestConfig, problems, labels) -> IngestSummary:
    from mathray.config import code_version, resolved_config
    from mathray.core import schemas
    from mathray.runtime.stage import check_lineage
    from mathray.runtime.storage import shard_name

    lineage = ingest_lineage(cfg)
    chash, version = lineage.hash, code_version()
    for store in (problems, labels):
        check_lineage(store, lineage, cfg.resume)
        store.clear_uncommitted()
    problems.write_run_info(resolved_config(cfg), chash, version, "ingest", lineage.record())
    summary = IngestSummary()
    source_name = cfg.source.path or f"toy:{cfg.source.split}"
    wrote_labels = False
    first_seen: dict[str, tuple[int, str]] = {}   # problem_id -> (record index, content digest)

    def duplicate(row: dict, row_index: int) -> str | None:
        """None for a new problem_id; "same" for a repeat of the same problem; else the quarantine reason."""
        digest = hashlib.sha256(json.dumps(row, sort_keys=True, default=str).encode()).hexdigest()
        seen = first_seen.setdefault(row["problem_id"], (row_index, digest))
        if seen[0] == row_index:
            return None
        return "same" if seen[1] == digest else (
            f"duplicate problem_id {row['problem_id']!r} with other content (first at record {seen[0]})")

    def flush(index: int, batch: list[tuple[Loaded, Any]]) -> None:
        nonlocal wrote_labels
        name = shard_name(index)
        prob_rows, label_rows, bad = [], [], []
        for j, (item, raw) in enumerate(batch):
            row_index = index * cfg.shard_rows + j
            if item.error:
                bad.append(schemas.quarantine_row(source_name, row_index, item.error, raw))
                continue
            if item.skip:
                summary.skipped += 1
                continue
            valid = item.problem is not None and schemas.row_problem(item.problem, schemas.PROBLEMS) is None
            dup = duplicate(item.problem, row_index) if valid else None
            if dup == "same":
                summary.duplicates += 1
                item = Loaded(step_labels=item.step_labels)
            elif dup:
                bad.append(schemas.quarantine_row(source_name, row_index, dup, raw))
                continue
            for row, schema, out in ((item.problem, schemas.PROBLEMS, prob_rows),
                                     (item.step_labels, schemas.STEP_LABELS, label_rows)):
                if row is None:
                    continue
                reason = schemas.row_problem(row, schema)
                if reason:
                    bad.append(schemas.quarantine_row(source_name, row_index, reason, raw))
                else:
                    out.append(row)
        summary.quarantined += len(bad)
        summary.problems += len(prob_rows)
        summary.step_labels += len(label_rows)
        qtable = schemas.to_table(bad, schemas.QUARANTINE)
        has_labels = bool(label_rows) or cfg.source.format in LABEL_FORMATS
        if has_labels and not labels.is_committed(name):
            labels.commit_shard(name, schemas.to_table(label_rows, schemas.STEP_LABELS), qtable,
                                config_hash=chash, lineage=chash, code_version=version)
            wrote_labels = True
        if problems.is_committed(name):
            summary.shards_skipped += 1
            return
        problems.commit_shard(name, schemas.to_table(prob_rows, schemas.PROBLEMS),
                              None if has_labels else qtable, config_hash=chash, lineage=chash,
                              code_version=version)
        summary.shards_committed += 1

    batch: list = []
    index = 0
    for item in _loaded_records(cfg):
        summary.records += 1
        batch.append(item)
        if len(batch) == cfg.shard_rows:
            flush(index, batch)
            batch, index = [], index + 1
    if batch or index == 0:
        flush(index, batch)
    if summary.records and summary.problems + summary.step_labels + summary.skipped + summary.duplicates == 0:
        raise UnreadableInput(f"no usable record in {source_name}: all {summary.records} were malformed "
                              "(see the quarantine output)")
    extra = {"job": "ingest", "lineage": lineage.record(), "code_version": version}
    problems.write_manifest(extra)
    if wrote_labels or labels.committed():
        labels.write_manifest(extra)
    return summary
