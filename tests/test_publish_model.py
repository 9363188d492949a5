"""``mathray publish-model``: a real tiny model published from a local directory to S3 and marked where it was
uploaded by hand; the model resolver (``runtime.models.fetch_model``) then loads it; what is not a model
directory, or a destination holding other files, is refused with nothing written."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from mathray import cli
from mathray.jobs.tiny_model import build_tiny_model
from mathray.runtime.models import (COMPLETE_MARK, ModelNotReady, fetch_model, model_dir_problems,
                                    model_fingerprint, read_mark)
from mathray.runtime.storage import resolve


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("publish") / "tiny")


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MATHRAY_CACHE_DIR", str(tmp_path / "cache"))


def _upload_by_hand(src: Path, uri: str) -> None:
    fs, root = resolve(uri)
    for f in sorted(src.iterdir()):
        with fs.open_output_stream(f"{root}/{f.name}") as out:
            out.write(f.read_bytes())


def test_local_model_published_to_s3_loads_through_the_resolver(tiny, s3_bucket, capsys):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    uri = f"{s3_bucket}/models/tiny"
    assert cli.main(["publish-model", str(tiny), uri]) == 0
    out = capsys.readouterr().out
    assert f"published {uri}: 7 files" in out and f"model: {uri}" in out
    local = Path(fetch_model(uri))
    for f in tiny.iterdir():
        assert (local / f.name).read_bytes() == f.read_bytes()
    AutoModelForCausalLM.from_pretrained(local)
    assert AutoTokenizer.from_pretrained(local).decode([]) == ""
    assert not (tiny / COMPLETE_MARK).exists()      # the source directory is left as it was


def test_hand_upload_is_refused_until_marked_in_place(tiny, s3_bucket, capsys):
    uri = f"{s3_bucket}/models/synced"
    _upload_by_hand(tiny, uri)
    with pytest.raises(ModelNotReady, match="not found"):
        fetch_model(uri)
    assert cli.main(["publish-model", uri]) == 0
    mark = read_mark(uri)
    assert sorted(mark["files"]) == sorted(f.name for f in tiny.iterdir())
    import hashlib

    for f in tiny.iterdir():
        assert mark["files"][f.name] == {"size": f.stat().st_size, "sha256": hashlib.sha256(f.read_bytes()).hexdigest()}
    assert (Path(fetch_model(uri)) / "model.safetensors").read_bytes() == (tiny / "model.safetensors").read_bytes()
    # the same bytes published from the local directory carry the same digest
    assert cli.main(["publish-model", str(tiny), f"{s3_bucket}/models/copy"]) == 0
    assert model_fingerprint(uri).split("@")[1] == model_fingerprint(f"{s3_bucket}/models/copy").split("@")[1]


def test_local_directory_marked_in_place(tiny, tmp_path, capsys):
    import shutil

    local = tmp_path / "m"
    shutil.copytree(tiny, local)
    assert cli.main(["publish-model", str(local)]) == 0
    assert (local / COMPLETE_MARK).is_file() and fetch_model(str(local)) == str(local)
    (local / "model.safetensors").write_bytes(b"truncated")   # the mark now catches a changed file
    with pytest.raises(ModelNotReady, match="not the size its mark records"):
        fetch_model(str(local))


def test_not_a_model_directory_is_refused_with_what_is_missing(tmp_path, s3_bucket, capsys):
    src = tmp_path / "notes"
    src.mkdir()
    (src / "README.md").write_text("my fine-tune")
    (src / "config.json").write_text("{not json")
    dest = f"{s3_bucket}/models/notes"
    assert cli.main(["publish-model", str(src), dest]) == 2
    err = capsys.readouterr().err
    assert f"error: {src} is not a model directory: config.json is not valid JSON" in err
    assert "no weights (*.safetensors or pytorch_model*.bin)" in err and "no tokenizer files" in err
    fs, root = resolve(dest)
    from pyarrow.fs import FileType

    assert fs.get_file_info(root).type == FileType.NotFound     # nothing written
    assert not (src / COMPLETE_MARK).exists()
    assert cli.main(["publish-model", str(tmp_path / "absent")]) == 2
    assert "no model directory at" in capsys.readouterr().err


def test_destination_with_other_files_and_store_to_store_copies_are_refused(tiny, s3_bucket, capsys):
    dest = f"{s3_bucket}/shared"
    fs, root = resolve(dest)
    with fs.open_output_stream(f"{root}/results.csv") as out:
        out.write(b"a,b\n")
    assert cli.main(["publish-model", str(tiny), dest]) == 2
    assert "are not a published model" in capsys.readouterr().err
    with fs.open_input_stream(f"{root}/results.csv") as f:
        assert f.read() == b"a,b\n"                              # nothing deleted
    _upload_by_hand(tiny, f"{s3_bucket}/up")
    assert cli.main(["publish-model", f"{s3_bucket}/up", f"{s3_bucket}/elsewhere"]) == 2
    assert "publish it where it is" in capsys.readouterr().err


def test_model_dir_problems():
    files = {"config.json": b'{"model_type": "llama"}', "tokenizer.json": b"{}",
             "model.safetensors.index.json": json.dumps({"weight_map": {"a": "model-00001-of-00002.safetensors",
                                                                        "b": "model-00002-of-00002.safetensors"}}).encode(),
             "model-00001-of-00002.safetensors": b""}
    problems = model_dir_problems(set(files), files.__getitem__)
    assert problems == ["model.safetensors.index.json lists weight files that are not there "
                        "(model-00002-of-00002.safetensors)"]
    files["model-00002-of-00002.safetensors"] = b""
    assert model_dir_problems(set(files), files.__getitem__) == []
    assert model_dir_problems({"config.json", "pytorch_model.bin", "vocab.json"},
                              lambda n: b'{"architectures": ["GPT2LMHeadModel"]}') == []
    assert model_dir_problems({"config.json", "sub/model.safetensors", "tokenizer.model"},
                              lambda n: b'{"model_type": "t5"}') == ["no weights (*.safetensors or pytorch_model*.bin)"]
    assert model_dir_problems({"config.json", "model.safetensors", "tokenizer.json"},
                              lambda n: b"[]") == ["config.json names no model_type or architectures"]
