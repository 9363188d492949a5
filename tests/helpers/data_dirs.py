"""The data folders the tests read: the fixtures in the repository (tests/fixtures/data, a few dozen records of
each public data set) and, when ``MATHRAY_DATA_DIR`` names one, a folder of the full data sets in the same
layout. A fixture folder's ``source_rows.json`` gives each record's row number in the full file, so a test
can address a record by the same row in either folder."""
from __future__ import annotations

import json
import os
from pathlib import Path

FIXTURE_DATA = Path(__file__).resolve().parents[1] / "fixtures" / "data"
DATA_DIR_ENV = "MATHRAY_DATA_DIR"
# rows of each full file, as their sources publish them (GSM8K 7,473 / 1,319; MATH 7,500 / 5,000; MATH-500)
FULL_ROWS = {"gsm8k/train.jsonl": 7473, "gsm8k/test.jsonl": 1319, "gsm8k/example_model_solutions.jsonl": 1319,
             "math/train.jsonl": 7500, "math/test.jsonl": 5000, "math500/test.jsonl": 500}


def full_data_dir() -> Path | None:
    """The folder ``MATHRAY_DATA_DIR`` names, or None when it is unset; ValueError when it is not a folder."""
    value = os.environ.get(DATA_DIR_ENV)
    if not value:
        return None
    path = Path(value).expanduser().resolve()
    if not path.is_dir():
        raise ValueError(f"{DATA_DIR_ENV}={value} is not a directory")
    return path


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def source_rows(data_dir: Path) -> dict | None:
    """The fixture folder's index (file -> rows_in_source, rows), or None for a folder of full files."""
    index = data_dir / "source_rows.json"
    return json.loads(index.read_text()) if index.is_file() else None


def records_by_row(data_dir: Path, name: str) -> tuple[dict[int, dict], int]:
    """The records of ``data_dir/name`` keyed by their row number in the full file, and that file's row count."""
    records = read_jsonl(data_dir / name)
    index = source_rows(data_dir)
    if index is None:
        return dict(enumerate(records)), len(records)
    entry = index[name]
    if len(entry["rows"]) != len(records):
        raise ValueError(f"{data_dir / name} has {len(records)} records; source_rows.json lists "
                         f"{len(entry['rows'])}")
    return dict(zip(entry["rows"], records)), entry["rows_in_source"]


def expected_rows(data_dir: Path, name: str) -> int:
    """How many records ``data_dir/name`` should hold: the full file's published count, or the rows the
    fixture index lists."""
    index = source_rows(data_dir)
    return FULL_ROWS[name] if index is None else len(index[name]["rows"])
