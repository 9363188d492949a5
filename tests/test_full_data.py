"""Checks that need the full public data sets: run when MATHRAY_DATA_DIR names a folder of them (the layout of
tests/fixtures/data), skipped otherwise. The grading tests on real data also run on it then
(tests/grading/conftest.py)."""
from __future__ import annotations

import json
import re

from helpers.data_dirs import FULL_ROWS, source_rows

from mathray.grading.extract import last_boxed
from mathray.jobs.ingest import IngestConfig, run_ingest
from mathray.runtime.storage import ShardStore


def _ingest(tmp_path, source: dict, **kw):
    cfg = IngestConfig(source=source, output=str(tmp_path / "problems"), **kw)
    return run_ingest(cfg), ShardStore(cfg.output)


def test_fixtures_are_lines_of_the_full_files(full_data, fixture_data):
    """Every fixture record is, byte for byte, the line of the full file that source_rows.json names."""
    index = source_rows(fixture_data)
    assert set(index) >= set(FULL_ROWS)
    for name, entry in index.items():
        full = [line for line in (full_data / name).read_bytes().split(b"\n") if line.strip()]
        fixture = [line for line in (fixture_data / name).read_bytes().split(b"\n") if line.strip()]
        assert entry["rows_in_source"] == len(full) == FULL_ROWS.get(name, len(full)), name
        assert fixture == [full[i] for i in entry["rows"]], name


def test_gsm8k_test_1319_integer_answers(tmp_path, full_data, ray_cluster):
    summary, store = _ingest(tmp_path, {"format": "gsm8k", "path": str(full_data / "gsm8k/test.jsonl")},
                             shard_rows=500)
    rows = store.read_all().to_pylist()
    assert len(rows) == 1319 == summary.problems and summary.quarantined == 0
    assert all(re.fullmatch(r"-?\d+", r["answer"]) for r in rows)
    assert len({r["problem_id"] for r in rows}) == 1319
    assert len(store.committed()) == 3


def test_math500_500_answers_are_last_boxes(tmp_path, full_data, ray_cluster):
    _, store = _ingest(tmp_path, {"format": "math500", "path": str(full_data / "math500/test.jsonl")})
    rows = store.read_all().to_pylist()
    assert len(rows) == 500
    assert all(r["answer"] == last_boxed(r["reference_solution"]) for r in rows)
    assert all(isinstance(r["level"], int) and r["subject"] for r in rows)


def test_math_train_7500(tmp_path, full_data, ray_cluster):
    summary, store = _ingest(tmp_path, {"format": "math", "path": str(full_data / "math/train.jsonl")},
                             shard_rows=2000)
    rows = store.read_all(["problem_id", "answer", "level"]).to_pylist()
    # the two solutions with an empty "\boxed{}" (number_theory/7115 and 7117) are quarantined
    assert summary.records == 7500 and len(rows) == 7498 and summary.quarantined == 2
    assert sum(r["level"] is None for r in rows) == 2  # the two "Level ?" rows


def test_math_12k_split_without_math500(tmp_path, full_data, ray_cluster):
    """The PRM800K training split: MATH train + test minus the 500 MATH-500 problems = 12,000 problems, two
    of which have an empty \\boxed{} (no reference answer) and are quarantined with that reason."""
    summary, store = _ingest(tmp_path, {"format": "math", "path": str(full_data / "math/train.jsonl"),
                                        "more_paths": [str(full_data / "math/test.jsonl")],
                                        "exclude": [str(full_data / "math500/test.jsonl")]}, shard_rows=4000)
    rows = store.read_all(["problem_id", "problem"]).to_pylist()
    assert summary.records == 12500 and summary.skipped == 500 and summary.quarantined == 2
    assert summary.problems == len(rows) == 11998
    math500 = {" ".join(json.loads(line)["problem"].split())
               for line in (full_data / "math500/test.jsonl").read_text().splitlines()}
    assert not any(" ".join(r["problem"].split()) in math500 for r in rows)
    assert len({r["problem_id"] for r in rows}) == 11998
