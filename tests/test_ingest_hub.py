"""``hf://`` sources: the public data sets' hub repositories, rebuilt from tests/fixtures/data in the hub's
layout (file names, parquet or JSON Lines, configs declared in the README) under a folder named like the
repository id, and read through the same ``datasets.load_dataset`` call as the hub (a repository id that names
a local folder is read from it). Each is checked against the ingest of the same records from the JSONL."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mathray.config import load_config
from mathray.jobs.hub import is_hub_uri, parse_hub_uri
from mathray.jobs.ingest import IngestConfig, UnreadableInput, run_ingest
from mathray.pipeline import PipelineConfig
from mathray.runtime.lineage import LineageMismatch
from mathray.runtime.storage import ShardStore, join

CONFIGS = Path(__file__).resolve().parents[1] / "rayjobs" / "configs"
GSM8K = "hf://openai/gsm8k?config=main&split={split}"
MATH = "hf://DigitalLearningGmbH/MATH-lighteval?config=default&split={split}"
MATH500 = "hf://HuggingFaceH4/MATH-500?split=test"
SHEPHERD = "hf://peiyi9979/Math-Shepherd?split=train"
PRM800K = "hf://tasksource/PRM800K?split=train&data_files=phase2_train.jsonl"


@pytest.fixture(autouse=True)
def _ray(ray_cluster):
    """Ingest's stages run on Ray (one local cluster for the session)."""


def _records(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def configs_readme(config: str, splits: dict[str, str]) -> str:
    files = "".join(f"  - split: {split}\n    path: {pattern}\n" for split, pattern in splits.items())
    return f"---\nconfigs:\n- config_name: {config}\n  data_files:\n{files}---\n"


@pytest.fixture
def hub(tmp_path, monkeypatch, fixture_data):
    """A working directory holding the five repositories; the datasets cache under tmp_path; the hub client
    offline (``hub_offline``)."""
    root = tmp_path / "hub"
    gsm8k = root / "openai" / "gsm8k"
    (gsm8k / "main").mkdir(parents=True)
    for split in ("train", "test"):
        pq.write_table(pa.Table.from_pylist(_records(fixture_data / f"gsm8k/{split}.jsonl")),
                       gsm8k / "main" / f"{split}-00000-of-00001.parquet")
    (gsm8k / "README.md").write_text(configs_readme("main", {"train": "main/train-*", "test": "main/test-*"}))
    math = root / "DigitalLearningGmbH" / "MATH-lighteval"
    (math / "data").mkdir(parents=True)
    for split in ("train", "test"):  # the hub set has the original fields only: no unique_id
        rows = [{k: r[k] for k in ("problem", "level", "solution", "type")}
                for r in _records(fixture_data / f"math/{split}.jsonl")]
        pq.write_table(pa.Table.from_pylist(rows), math / "data" / f"{split}-00000-of-00001.parquet")
    (math / "README.md").write_text(configs_readme("default", {"train": "data/train-*", "test": "data/test-*"}))
    (root / "HuggingFaceH4" / "MATH-500").mkdir(parents=True)
    shutil.copy(fixture_data / "math500/test.jsonl", root / "HuggingFaceH4" / "MATH-500" / "test.jsonl")
    (root / "peiyi9979" / "Math-Shepherd").mkdir(parents=True)
    shutil.copy(fixture_data / "math_shepherd_sample/samples_math-shepherd.jsonl",
                root / "peiyi9979" / "Math-Shepherd" / "math-shepherd.jsonl")
    prm = root / "tasksource" / "PRM800K"
    prm.mkdir(parents=True)
    lines = (fixture_data / "prm800k_sample/samples_prm800k.jsonl").read_text().splitlines()
    phase2 = [line for line in lines if json.loads(line)["generation"] is not None]
    (prm / "phase2_train.jsonl").write_text("\n".join(phase2) + "\n")
    (prm / "phase1_train.jsonl").write_text("\n".join(line for line in lines if line not in phase2) + "\n")
    monkeypatch.chdir(root)
    hub_offline(monkeypatch, tmp_path / "hf-cache")
    return root


def hub_offline(monkeypatch, cache: Path) -> None:
    """The datasets cache at ``cache`` and the hub client offline: a repository id that names no local
    folder fails at once instead of retrying a network."""
    import datasets
    import huggingface_hub.constants

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def _ingest(out, source: dict, **kw):
    cfg = IngestConfig(source=source, output=str(out / "problems"), **kw)
    return run_ingest(cfg), ShardStore(cfg.output)


def _labels(problems: ShardStore) -> list[dict]:
    return ShardStore(join(problems.uri, "..", "step_labels")).read_all().to_pylist()


@pytest.mark.slow
def test_gsm8k_from_the_hub_equals_the_jsonl(hub, tmp_path, fixture_data, ingested):
    """(The JSONL ingests are the session's shared ones, ``ingested`` in tests/conftest.py.)"""
    for split in ("train", "test"):
        file = fixture_data / f"gsm8k/{split}.jsonl"
        s_hub, hub_store = _ingest(tmp_path / f"hub-{split}",
                                   {"format": "gsm8k", "path": GSM8K.format(split=split)}, shard_rows=20)
        s_file, file_store = ingested({"format": "gsm8k", "path": str(file)}, shard_rows=20)
        assert s_hub.problems == s_file.problems == len(_records(file))
        assert hub_store.read_all().to_pylist() == file_store.read_all().to_pylist()


def test_math500_from_the_hub_equals_the_jsonl(hub, tmp_path, fixture_data, ingested):
    src = {"format": "math500", "id_prefix": "math500"}
    _, hub_store = _ingest(tmp_path / "hub", {**src, "path": MATH500})
    _, file_store = ingested({**src, "path": str(fixture_data / "math500/test.jsonl")})
    rows = hub_store.read_all().to_pylist()
    assert len(rows) == 40 and rows == file_store.read_all().to_pylist()


@pytest.mark.slow
def test_prm800k_training_split_from_the_hub(hub, tmp_path, fixture_data, ingested):
    """MATH train + test minus MATH-500, all three from the hub: the same problems as from the files (the hub
    set has no unique_id, so problem ids are numbered instead)."""
    hub_src = {"format": "math", "path": MATH.format(split="train"), "more_paths": [MATH.format(split="test")],
               "exclude": [MATH500]}
    file_src = {"format": "math", "path": str(fixture_data / "math/train.jsonl"),
                "more_paths": [str(fixture_data / "math/test.jsonl")],
                "exclude": [str(fixture_data / "math500/test.jsonl")]}
    s_hub, hub_store = _ingest(tmp_path / "hub", hub_src, shard_rows=25)
    s_file, file_store = ingested(file_src, shard_rows=25)
    math500_ids = {r["unique_id"] for r in _records(fixture_data / "math500/test.jsonl")}
    in_math500 = sum(r["unique_id"] in math500_ids for r in _records(fixture_data / "math/test.jsonl"))
    assert in_math500 > 0 and s_hub.skipped == s_file.skipped == in_math500
    assert s_hub.quarantined == s_file.quarantined == 2       # the two empty \boxed{} of MATH train

    def content(store):   # ids differ (numbered on the hub), so shards, sorted by id, differ in order
        return sorted((r["problem"], r["answer"], r["subject"], r["level"]) for r in store.read_all().to_pylist())
    assert content(hub_store) == content(file_store)


@pytest.mark.slow
def test_step_labels_from_the_hub_equal_the_jsonl(hub, tmp_path, fixture_data, ingested):
    shepherd = fixture_data / "math_shepherd_sample/samples_math-shepherd.jsonl"
    _, hub_store = _ingest(tmp_path / "shepherd-hub", {"format": "math_shepherd", "path": SHEPHERD})
    _, file_store = ingested({"format": "math_shepherd", "path": str(shepherd)})
    assert _labels(hub_store) == _labels(file_store)
    # data_files picks the phase-2 file of the repository, as it picks phase2_train.jsonl on the hub
    phase2 = tmp_path / "phase2.jsonl"
    shutil.copy(hub / "tasksource" / "PRM800K" / "phase2_train.jsonl", phase2)
    s_hub, hub_store = _ingest(tmp_path / "prm-hub", {"format": "prm800k", "path": PRM800K})
    s_file, file_store = _ingest(tmp_path / "prm-file", {"format": "prm800k", "path": str(phase2)})
    assert s_hub.records == 2 and (s_hub.step_labels, s_hub.skipped) == (s_file.step_labels, s_file.skipped)
    assert _labels(hub_store) == _labels(file_store)


@pytest.mark.slow
def test_rerun_skips_and_changed_hub_data_is_refused(hub, tmp_path, monkeypatch):
    """The lineage holds a hash of the split's data: the same data loaded into another cache (another machine)
    resumes; changed data is refused. A new revision of a hub repository is a new cache entry; a local folder
    is cached by name, so the test changes the cache folder to see its change."""
    import datasets

    out = tmp_path / "gsm8k"
    src = {"format": "gsm8k", "path": GSM8K.format(split="test")}
    first, _ = _ingest(out, src, shard_rows=20)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache-2")
    again, _ = _ingest(out, src, shard_rows=20)
    assert first.shards_committed == 3 and again.shards_committed == 0 and again.shards_skipped == 3
    test_file = hub / "openai" / "gsm8k" / "main" / "test-00000-of-00001.parquet"
    pq.write_table(pq.read_table(test_file).slice(1), test_file)      # one problem fewer
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache-3")
    with pytest.raises(LineageMismatch):
        _ingest(out, src, shard_rows=20)


@pytest.mark.slow
def test_a_slice_of_a_split_is_its_first_records_and_not_the_split(hub, tmp_path, fixture_data):
    """``split=test[:5]`` ingests the split's first 5 records; the whole split into the same output is
    another lineage (refused), not a resume that would keep the 5-problem shard as if it were the split's."""
    src = {"format": "math500", "id_prefix": "math500"}
    summary, store = _ingest(tmp_path, {**src, "path": "hf://HuggingFaceH4/MATH-500?split=test[:5]"})
    expected = [r["unique_id"] for r in _records(fixture_data / "math500/test.jsonl")[:5]]
    assert summary.problems == 5
    assert sorted(r["problem_id"] for r in store.read_all().to_pylist()) == sorted(f"math500-{u}" for u in expected)
    with pytest.raises(LineageMismatch):
        _ingest(tmp_path, {**src, "path": MATH500})


def test_hub_errors_name_the_source(hub, tmp_path):
    with pytest.raises(UnreadableInput, match="MATH-500.*split=train"):
        _ingest(tmp_path / "a", {"format": "math500", "path": "hf://HuggingFaceH4/MATH-500?split=train"})
    with pytest.raises(UnreadableInput, match="no-such-owner/no-such-set"):
        _ingest(tmp_path / "b", {"format": "gsm8k", "path": "hf://no-such-owner/no-such-set?split=test"})


@pytest.mark.parametrize("uri, message", [
    ("hf://openai/gsm8k", "no split"),
    ("hf://datasets/openai/gsm8k?split=test", "a hub data set is written"),
    ("hf://openai/gsm8k?split=test&subset=main", "unknown key"),
    ("hf://openai/gsm8k?split=test&split=train", "given twice"),
])
def test_malformed_hub_uri_is_a_config_error(uri, message):
    with pytest.raises(ValueError, match=message):
        IngestConfig(source={"format": "gsm8k", "path": uri})
    with pytest.raises(ValueError, match=message):
        IngestConfig(source={"format": "gsm8k", "path": "x.jsonl", "exclude": [uri]})


def test_hub_uri_parts():
    src = parse_hub_uri("hf://tasksource/PRM800K?split=train&data_files=phase1_train.jsonl,phase2_train.jsonl"
                        "&revision=main")
    assert (src.repo, src.split, src.config, src.revision) == ("tasksource/PRM800K", "train", None, "main")
    assert src.data_files == ("phase1_train.jsonl", "phase2_train.jsonl")
    assert parse_hub_uri("hf://gsm8k?split=test&config=main").repo == "gsm8k"


@pytest.mark.slow
def test_shipped_configs_read_their_hub_sources(hub, tmp_path):
    """Every rayjobs/configs/ingest_*.yaml and the pipeline recipes' data sections, as written (outputs
    aside), read hub sources that the repositories above provide."""
    sections = [(f.name, load_config(IngestConfig, f)) for f in sorted(CONFIGS.glob("ingest_*.yaml"))]
    for f in sorted(CONFIGS.glob("recipes/pipeline_*.yaml")):
        data = load_config(PipelineConfig, f).data
        sections += [(f"{f.name}:train", data.train), (f"{f.name}:test", data.test)]
    assert len(sections) >= 13
    for name, cfg in sections:
        src = cfg.source
        assert all(is_hub_uri(p) for p in [src.path, *src.more_paths, *src.exclude]), name
        summary = run_ingest(cfg.model_copy(update={"output": str(tmp_path / name / "problems"),
                                                    "step_labels_output": None}))
        assert summary.problems + summary.step_labels > 0 and summary.records > summary.quarantined, name
