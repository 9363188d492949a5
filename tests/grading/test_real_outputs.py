"""The labeled real-output set (tests/grading/real_outputs.py): every case gets its expected verdict."""
from __future__ import annotations

import collections
import json

import pytest

from helpers.data_dirs import source_rows

from mathray.grading import grade
from tests.grading.real_outputs import HERE, load_real_outputs


@pytest.fixture(scope="module")
def cases(data_dir):
    from mathray.grading.sandbox import get_pool

    assert get_pool().wait_ready()  # worker start-up is not part of any case's budget
    return load_real_outputs(data_dir)


# the kinds of the cases rebuilt from the data sets, "<data set>:<variant>" (a hand-written case's kind may have a
# colon too, "gsm:hedge", so the kinds are checked, not the colon)
_DATA_SET_ROWS = [json.loads(line) for line in (HERE / "from_shared_data.jsonl").read_text().splitlines()
                  if line.strip()]
_DATA_SET_KINDS = {f"{row['source'].split('/')[0]}:{row['variant']}" for row in _DATA_SET_ROWS}


def _from_data_sets(case) -> bool:
    return case.kind in _DATA_SET_KINDS


def test_the_set_covers_every_kind(cases, data_dir):
    kinds = collections.Counter(c.kind.split(":")[0] for c in cases)
    real = sum(map(_from_data_sets, cases))
    if source_rows(data_dir) is None:  # the full data sets: every case of the set is built
        assert len(cases) >= 700 and real == len(_DATA_SET_ROWS)
    else:  # tests/fixtures/data holds the rows of some of the real-output cases
        assert real >= 60
    for kind in ("bare", "minerva", "run-on", "plain-sentence", "currency", "intervals-sets", "inequalities",
                 "tuples-matrices", "algebra", "boxed", "gsm8k", "math500", "math_shepherd_sample", "prm800k_sample",
                 "revision", "think", "hypothetical", "equation", "multiset", "choice", "words", "phrases", "base",
                 "nesting"):
        assert kinds[kind] >= 5 or kind in ("math_shepherd_sample", "prm800k_sample"), kind
    assert sum(c.expected for c in cases) >= 0.3 * len(cases)
    assert sum(not c.expected for c in cases) >= 0.2 * len(cases)


def _wrong(cases, predicate):
    out = []
    for c in cases:
        if not predicate(c):
            continue
        # verdicts, not latency: a generous budget keeps a loaded machine from turning a slow sympy call
        # into a timeout here (the 2 s default is checked by test_hostile and measured by the benchmark)
        result = grade(c.prediction, c.reference, timeout=30)
        if result.is_correct != c.expected:
            out.append((c.kind, c.expected, result.reason, result.answer, c.reference, c.why, c.prediction[-120:]))
    return out


def test_hand_written_cases(cases):
    assert _wrong(cases, lambda c: not _from_data_sets(c)) == []


def test_cases_from_real_model_and_dataset_solutions(cases):
    assert _wrong(cases, _from_data_sets) == []
