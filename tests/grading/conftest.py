"""Real data for the grading tests: ``../shared/data`` beside the repository (or beside its worktree root)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def find_shared_data() -> Path | None:
    for base in (REPO.parent, REPO.parent.parent):
        if (base / "shared" / "data").is_dir():
            return (base / "shared" / "data").resolve()
    return None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    found = find_shared_data()
    if found is None:
        pytest.fail(f"shared data not found beside {REPO}")
    return found


def _read_jsonl(path: Path) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


@pytest.fixture(scope="session")
def math500_rows(data_dir) -> list[dict]:
    return _read_jsonl(data_dir / "math500" / "test.jsonl")


@pytest.fixture(scope="session")
def gsm8k_rows(data_dir) -> list[dict]:
    return _read_jsonl(data_dir / "gsm8k" / "test.jsonl")


@pytest.fixture(scope="session")
def gsm8k_model_solutions(data_dir) -> list[dict]:
    return _read_jsonl(data_dir / "gsm8k" / "example_model_solutions.jsonl")
