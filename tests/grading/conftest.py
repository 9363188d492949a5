"""Real data for the grading tests, from the shared data directory (``shared_data`` in tests/conftest.py)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

# tests that `from conftest import REPO` may get this module (pytest puts tests/grading on sys.path first)
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def data_dir(shared_data) -> Path:
    return shared_data


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
