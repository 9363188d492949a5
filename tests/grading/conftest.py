"""Real data for the grading tests: each test runs on the repository's fixtures and, when MATHRAY_DATA_DIR
names them, on the full data sets (``fixture_data`` and ``full_data`` in tests/conftest.py)."""
from __future__ import annotations

from pathlib import Path

import pytest

from helpers.data_dirs import read_jsonl

# tests that `from conftest import REPO` may get this module (pytest puts tests/grading on sys.path first)
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session", params=["fixture_data", "full_data"])
def data_dir(request) -> Path:
    return request.getfixturevalue(request.param)


@pytest.fixture(scope="session")
def math500_rows(data_dir) -> list[dict]:
    return read_jsonl(data_dir / "math500" / "test.jsonl")


@pytest.fixture(scope="session")
def gsm8k_rows(data_dir) -> list[dict]:
    return read_jsonl(data_dir / "gsm8k" / "test.jsonl")


@pytest.fixture(scope="session")
def gsm8k_model_solutions(data_dir) -> list[dict]:
    return read_jsonl(data_dir / "gsm8k" / "example_model_solutions.jsonl")
