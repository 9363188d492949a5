import json
import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from helpers.quarantine import read_all_quarantine
from mathray.grading.extract import last_boxed
from mathray.jobs.ingest import IngestConfig, UnreadableInput, run_ingest
from mathray.runtime.storage import ShardStore, join
from rayjobs import ingest as ingest_job


@pytest.fixture(autouse=True)
def _ray(ray_cluster):
    """Ingest's stages run on Ray (one local cluster for the session)."""


def _lines(path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.strip()]


def _ingest(tmp_path, fmt, path, **kw):
    cfg = IngestConfig(source={"format": fmt, "path": str(path), **kw.pop("source", {})},
                       output=str(tmp_path / "problems"), **kw)
    summary = run_ingest(cfg)
    return summary, ShardStore(cfg.output)


def test_gsm8k_test_integer_answers(ingested, fixture_data):
    n = len(_lines(fixture_data / "gsm8k/test.jsonl"))                # 53
    summary, store = ingested({"format": "gsm8k", "path": str(fixture_data / "gsm8k/test.jsonl")}, shard_rows=20)
    rows = store.read_all().to_pylist()
    assert len(rows) == n == summary.problems and summary.quarantined == 0
    assert all(re.fullmatch(r"-?\d+", r["answer"]) for r in rows)
    assert len({r["problem_id"] for r in rows}) == n
    assert len(store.committed()) == 3


def test_math500_answer_is_last_box(ingested, fixture_data):
    _, store = ingested({"format": "math500", "id_prefix": "math500", "path": str(fixture_data / "math500/test.jsonl")})
    rows = store.read_all().to_pylist()
    assert len(rows) == len(_lines(fixture_data / "math500/test.jsonl"))
    assert all(r["answer"] == last_boxed(r["reference_solution"]) for r in rows)
    assert all(isinstance(r["level"], int) and r["subject"] for r in rows)


def test_math_train_empty_boxes_quarantined(tmp_path, fixture_data):
    n = len(_lines(fixture_data / "math/train.jsonl"))
    summary, store = _ingest(tmp_path, "math", fixture_data / "math/train.jsonl", shard_rows=10)
    rows = store.read_all(["problem_id", "answer", "level"]).to_pylist()
    # two MATH train solutions end in an empty "\boxed{}" (a defect of the data set: number_theory/7115 and
    # 7117), so they have no reference answer and are quarantined with the reason.
    assert summary.records == n and len(rows) == n - 2 and summary.quarantined == 2
    reasons = read_all_quarantine(store).to_pylist()
    assert {json.loads(q["raw"])["unique_id"] for q in reasons} == {
        "train/number_theory/7115.json", "train/number_theory/7117.json"}
    assert all("empty" in q["reason"] for q in reasons)
    assert sum(r["level"] is None for r in rows) == 2  # the two "Level ?" rows


def test_math_one_file_per_problem_layout(tmp_path, fixture_data):
    src = tmp_path / "MATH" / "train" / "algebra"
    src.mkdir(parents=True)
    lines = _lines(fixture_data / "math/train.jsonl")[:3]
    for i, line in enumerate(lines):
        (src / f"{i}.json").write_text(line)
    _, store = _ingest(tmp_path, "math", tmp_path / "MATH")
    assert store.read_all().num_rows == 3


def test_prm800k_conventions(tmp_path, fixture_data):
    summary, store = _ingest(tmp_path, "prm800k", fixture_data / "prm800k_sample/samples_prm800k.jsonl")
    labels = ShardStore(join(str(tmp_path / "problems"), "..", "step_labels")).read_all().to_pylist()
    # 6 rows: 1 screening question and 1 give_up are skipped
    assert summary.skipped == 2 and len(labels) == 4 and store.read_all().num_rows == 4
    for r in labels:
        ratings = json.loads(r["metadata"])["ratings"]
        assert len(r["steps"]) == len(r["hard_labels"]) == len(ratings)
        assert r["hard_labels"] == [0 if x == -1 else 1 for x in ratings]  # neutral counts as positive
        assert -1 not in ratings[:-1]  # cut after the first error
    assert any(r["hard_labels"][-1] == 0 for r in labels)  # the found_error row ends on its error


def test_math_shepherd_tags(ingested, fixture_data):
    _, store = ingested({"format": "math_shepherd",
                         "path": str(fixture_data / "math_shepherd_sample/samples_math-shepherd.jsonl")})
    rows = ShardStore(join(store.uri, "..", "step_labels")).read_all().to_pylist()
    assert len(rows) == 7
    first = rows[0] if rows[0]["problem"].startswith("Janet pays") else next(
        r for r in rows if r["problem"].startswith("Janet pays"))
    assert first["steps"][0].startswith("Step 1: Janet spends")
    assert first["hard_labels"] == [1, 1, 1, 1, 0]


def test_malformed_jsonl_quarantined_job_exits_0(tmp_path, fixture_data, capsys):
    good = _lines(fixture_data / "gsm8k/test.jsonl")[:5]
    bad_lines = [
        b'{"question": "no answer field"}',
        b'{"question": 42, "answer": "x #### 3"}',
        b'{"question": "q", "answer": "no hash mark"}',
        b'not json at all',
        b'["a", "list"]',
        b'{"question": "\xff\xfe bad bytes", "answer": "#### 1"}',
    ]
    f = tmp_path / "mixed.jsonl"
    f.write_bytes(b"\n".join([good[0].encode(), *bad_lines, *(g.encode() for g in good[1:])]) + b"\n")
    out = str(tmp_path / "problems")
    rc = ingest_job.main(["--set", "source.format=gsm8k", "--set", f"source.path={f}", "--set", f"output={out}"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "quarantined: 6" in printed and "problems: 5" in printed
    store = ShardStore(out)
    assert store.read_all().num_rows == 5
    reasons = read_all_quarantine(store).column("reason").to_pylist()
    assert len(reasons) == 6
    assert any("answer" in r for r in reasons) and any("UTF-8" in r for r in reasons)
    assert any("invalid JSON" in r for r in reasons) and any("not an object" in r for r in reasons)


def test_unreadable_input_exits_nonzero(tmp_path, capsys):
    rc = ingest_job.main(["--set", "source.format=gsm8k", "--set", f"source.path={tmp_path}/missing.jsonl",
                          "--set", f"output={tmp_path}/p"])
    assert rc == 1 and "input not found" in capsys.readouterr().err
    junk = tmp_path / "junk.jsonl"
    junk.write_text("garbage\nmore garbage\n")
    with pytest.raises(UnreadableInput, match="no usable record"):
        _ingest(tmp_path, "gsm8k", junk)


def test_mapped_parquet_with_field_map(tmp_path):
    f = tmp_path / "custom.parquet"
    pq.write_table(pa.table({"q": ["What is 1+1?", "2*3?"], "final": [2, 6], "uid": ["a", "b"]}), f)
    _, store = _ingest(tmp_path, "mapped", f, source={"id_prefix": "custom",
                                                       "fields": {"problem": "q", "answer": "final", "id": "uid"}})
    rows = store.read_all().to_pylist()
    assert [(r["problem_id"], r["answer"]) for r in rows] == [("custom-a", "2"), ("custom-b", "6")]


def test_rerun_skips_committed_shards(ingested, fixture_data):
    source = {"format": "gsm8k", "path": str(fixture_data / "gsm8k/test.jsonl")}
    s1, store = ingested(source, shard_rows=20)     # the first run (shared: a re-run changes nothing)
    before = {n: c.sha256 for n, c in store.committed().items()}
    s2 = run_ingest(IngestConfig(source=source, output=store.uri, shard_rows=20))
    assert s1.shards_committed == 3 and s2.shards_committed == 0 and s2.shards_skipped == 3
    assert {n: c.sha256 for n, c in store.committed().items()} == before


def test_math_split_without_math500(fixture_data, ingested):
    """The PRM800K training split: MATH train + test minus the MATH-500 problems (found by problem text; the
    expected count here by unique_id), less the two train solutions with an empty \\boxed{}."""
    train, test, math500 = (fixture_data / "math/train.jsonl", fixture_data / "math/test.jsonl",
                            fixture_data / "math500/test.jsonl")
    math500_ids = {json.loads(line)["unique_id"] for line in _lines(math500)}
    in_math500 = sum(json.loads(line)["unique_id"] in math500_ids for line in _lines(test))
    records = len(_lines(train)) + len(_lines(test))
    summary, store = ingested({"format": "math", "path": str(train), "more_paths": [str(test)],
                               "exclude": [str(math500)]}, shard_rows=25)
    rows = store.read_all(["problem_id", "problem"]).to_pylist()
    assert in_math500 == 8 and summary.records == records
    assert summary.skipped == in_math500 and summary.quarantined == 2
    assert summary.problems == len(rows) == len({r["problem_id"] for r in rows}) == records - in_math500 - 2
    math500_texts = {" ".join(json.loads(line)["problem"].split()) for line in _lines(math500)}
    assert not any(" ".join(r["problem"].split()) in math500_texts for r in rows)


@pytest.mark.slow
@pytest.mark.faults
def test_ingest_driver_killed_then_rerun_is_exact(ray_cluster, tmp_path):
    """SIGKILL the ingest driver (joined to the session's cluster) between shard commits; the re-run takes over
    its lease at once (the holder is gone), commits only the missing shards, and the rows equal an
    uninterrupted ingest's."""
    from helpers.faults import assert_same_rows, driver_env, finish, kill_once_committed, start, write_config

    def cfg(out: str) -> IngestConfig:
        return IngestConfig(source={"format": "toy", "split": "train"}, toy={"num_train": 48, "seed": 3},
                            shard_rows=6, output=out)

    reference = str(tmp_path / "reference")
    run_ingest(cfg(reference))
    out = str(tmp_path / "problems")
    cfg_file = write_config(cfg(out), tmp_path / "ingest.yaml")
    env = driver_env(ray_cluster, MATHRAY_TEST_PAUSE_S="1")
    store = ShardStore(out)
    at_kill = kill_once_committed(start(["tests/helpers/pausing_ingest.py", "--config", str(cfg_file)], env), store, 8)
    assert 1 <= at_kill < 8, at_kill
    before = {n: c.sha256 for n, c in store.committed().items()}
    log = finish(start(["-m", "rayjobs.ingest", "--config", str(cfg_file)], env))
    assert f"shards committed now: {8 - len(before)}, already committed: {len(before)}" in log
    assert all(store.committed()[n].sha256 == sha for n, sha in before.items())
    assert_same_rows(out, reference, ("problem_id",))


def test_duplicate_ids_and_out_of_range_integers_are_quarantined_with_reasons(tmp_path):
    f = tmp_path / "dups.jsonl"
    recs = [{"q": "1+1?", "a": "2", "id": "a", "lvl": 1}, {"q": "2+2?", "a": "4", "id": "b", "lvl": 2},
            {"q": "1+1?", "a": "2", "id": "a", "lvl": 1},        # the same problem again: kept once, counted
            {"q": "3+3?", "a": "6", "id": "a", "lvl": 1},        # another problem under the same id: refused
            {"q": "5+5?", "a": "10", "id": "c", "lvl": 2**40}]   # level beyond int32: refused before writing
    f.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    summary, store = _ingest(tmp_path, "mapped", f, source={"id_prefix": "m", "fields": {
        "problem": "q", "answer": "a", "id": "id", "level": "lvl"}})
    rows = store.read_all().to_pylist()
    assert [(r["problem_id"], r["problem"]) for r in rows] == [("m-a", "1+1?"), ("m-b", "2+2?")]
    assert summary.duplicates == 1 and summary.quarantined == 2
    reasons = {q["row_index"]: q["reason"] for q in read_all_quarantine(store).to_pylist()}
    assert reasons[3] == "duplicate problem_id 'm-a' with other content (first at record 0)"
    assert reasons[4] == "field 'level': integer 1099511627776 outside the range of int32 [-2147483648, 2147483647]"


def test_repeats_across_shards_are_found_and_quarantine_rows_name_the_source_record(tmp_path):
    """Records of one problem_id in different shards (2 records each): the same content is kept once, other
    content is quarantined naming the first record; quarantine rows give the source file and the record's
    position in it; the work area is gone once the outputs are complete."""
    f = tmp_path / "spread.jsonl"
    recs = [{"q": "1+1?", "a": "2", "id": "a"}, {"q": "2+2?", "a": "4", "id": "b"},
            {"q": "3+3?", "a": "6", "id": "c"}, {"q": "1+1?", "a": "2", "id": "a"},    # same as record 0
            {"q": "9+9?", "a": "18", "id": "b"}, {"q": "4+4?", "a": "8"}]              # other content; no id
    f.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    summary, store = _ingest(tmp_path, "mapped", f, shard_rows=2, source={"id_prefix": "m", "fields": {
        "problem": "q", "answer": "a", "id": "id"}})
    assert [r["problem_id"] for r in store.read_all().to_pylist()] == ["m-a", "m-b", "m-c", "m-00005"]
    assert (summary.records, summary.problems, summary.duplicates, summary.quarantined) == (6, 4, 1, 1)
    assert summary.shards_committed == 3
    (q,) = read_all_quarantine(store).to_pylist()
    assert (q["source"], q["row_index"]) == (str(f), 4)
    assert q["reason"] == "duplicate problem_id 'm-b' with other content (first at record 1)"
    assert json.loads(q["raw"]) == recs[4]
    assert not ShardStore(join(store.uri, "_ingest", "records")).committed()


def test_processbench_records_become_first_error_labels(tmp_path):
    """ProcessBench's record layout (its dataset card): steps and the earliest wrong step's index, -1 for none;
    a label outside the steps is quarantined."""
    records = [
        {"id": "gsm8k-0", "generator": "Qwen2-7B-Instruct", "problem": "Sue has 3 + 4 flamingos.",
         "steps": ["3 + 4 = 8.", "So 8 flamingos."], "final_answer_correct": False, "label": 0},
        {"id": "math-7", "generator": "x", "problem": "What is 2 + 2?",
         "steps": ["2 + 2 = 4.", "The answer is 4."], "final_answer_correct": True, "label": -1},
        {"id": "math-8", "generator": "x", "problem": "What is 3 * 3?",
         "steps": ["3 * 3 = 9.", "9 + 1 = 11.", "The answer is 11."], "final_answer_correct": False, "label": 1},
        {"id": "math-9", "generator": "x", "problem": "What is 1 + 1?", "steps": ["1 + 1 = 2."], "label": 3},
    ]
    path = tmp_path / "processbench.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    _ingest(tmp_path, "processbench", path)
    store = ShardStore(join(str(tmp_path / "problems"), "..", "step_labels"))
    rows = {json.loads(r["metadata"])["id"]: r for r in store.read_all().to_pylist()}
    assert set(rows) == {"gsm8k-0", "math-7", "math-8"}
    assert (rows["gsm8k-0"]["first_error_step"], rows["gsm8k-0"]["hard_labels"]) == (0, [0, 0])
    assert (rows["math-7"]["first_error_step"], rows["math-7"]["hard_labels"]) == (None, [1, 1])
    assert (rows["math-8"]["first_error_step"], rows["math-8"]["hard_labels"]) == (1, [1, 0, 0])
    assert json.loads(rows["math-8"]["metadata"])["subset"] == "math"
    assert {r["label_source"] for r in rows.values()} == {"processbench"}
    (q,) = read_all_quarantine(store).to_pylist()
    assert "label 3 is neither -1 nor the index of one of the 1 steps" in q["reason"]
