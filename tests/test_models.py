"""Model exports at storage URIs: complete-or-absent publication, the node-local cache, refusals."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from mathray.runtime import models, object_io
from mathray.runtime.models import COMPLETE_MARK, EXPORT_INFO, ModelNotReady, fetch_model, model_fingerprint, \
    publish_model
from mathray.runtime.storage import resolve


def _hf_dir(path: Path, weights: bytes = b"w" * 3000) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps({"model_type": "qwen2"}))
    (path / "model.safetensors").write_bytes(weights)
    (path / "sub").mkdir(exist_ok=True)
    (path / "sub" / "tokenizer.json").write_text("{}")
    return path


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MATHRAY_CACHE_DIR", str(tmp_path / "cache"))


def test_publish_and_fetch_through_s3(tmp_path, s3_bucket):
    src = _hf_dir(tmp_path / "src")
    uri = f"{s3_bucket}/run/models/ssft"
    mark = publish_model(src, uri, {"job": "train", "lineage": {"hash": "abc"}})
    assert set(mark["files"]) == {"config.json", "model.safetensors", "sub/tokenizer.json", EXPORT_INFO}
    local = Path(fetch_model(uri))
    assert local.is_relative_to(tmp_path / "cache")
    assert (local / "model.safetensors").read_bytes() == b"w" * 3000
    assert (local / "sub" / "tokenizer.json").exists()
    assert fetch_model(uri) == str(local)          # cached: same directory, no second download
    assert model_fingerprint(uri).startswith("ssft@")
    # a new export at the same URI is a new cache entry and a new fingerprint
    before = model_fingerprint(uri)
    publish_model(_hf_dir(tmp_path / "src2", b"v" * 3000), uri)
    assert model_fingerprint(uri) != before
    assert (Path(fetch_model(uri)) / "model.safetensors").read_bytes() == b"v" * 3000


def test_export_without_mark_is_refused(tmp_path, s3_bucket):
    src = _hf_dir(tmp_path / "src")
    uri = f"{s3_bucket}/m"
    publish_model(src, uri, {"job": "train"})
    fs, root = resolve(uri)
    fs.delete_file(f"{root}/{COMPLETE_MARK}")       # the writer died before the mark
    with pytest.raises(ModelNotReady, match="still being written"):
        fetch_model(uri)
    # the same on local disk: a mathray export (it has its info file) without the mark
    local = _hf_dir(tmp_path / "local_export")
    (local / EXPORT_INFO).write_text("{}")
    with pytest.raises(ModelNotReady, match="no completion mark"):
        fetch_model(str(local))
    with pytest.raises(ModelNotReady, match="no model directory"):
        fetch_model(str(tmp_path / "nothing"))


def test_external_local_model_is_used_in_place(tmp_path):
    plain = _hf_dir(tmp_path / "downloaded_hf_model")
    assert fetch_model(str(plain)) == str(plain)
    assert fetch_model("Qwen/Qwen2.5-1.5B") == "Qwen/Qwen2.5-1.5B"


def test_local_publish_in_place_and_elsewhere(tmp_path):
    src = _hf_dir(tmp_path / "out" / "final")
    publish_model(src, str(src), {"job": "train"})
    assert fetch_model(str(src)) == str(src)
    copy = tmp_path / "copy"
    publish_model(src, str(copy))
    assert (copy / COMPLETE_MARK).exists() and fetch_model(str(copy)) == str(copy)
    (copy / "model.safetensors").write_bytes(b"short")
    with pytest.raises(ModelNotReady, match="not the size"):
        fetch_model(str(copy))


def test_interrupted_download_is_redone(tmp_path, s3_bucket, monkeypatch):
    src = _hf_dir(tmp_path / "src", b"x" * (3 * 2**20))
    uri = f"{s3_bucket}/big"
    publish_model(src, uri)
    monkeypatch.setattr(models, "_CHUNK", 2**20)
    real_open = models.resolve

    class Boom(RuntimeError):
        pass

    state = {"broken": True}   # the connection breaks once, 1 MiB into the weights

    def flaky_resolve(u):
        fs, root = real_open(u)
        if state["broken"]:

            class HalfFS:
                def open_input_stream(self, path):
                    stream = fs.open_input_stream(path)

                    class Half:
                        served = 0

                        def __enter__(self):
                            return self

                        def __exit__(self, *a):
                            stream.close()

                        def read(self, n=-1):
                            if path.endswith("model.safetensors") and self.served >= 2**20:
                                state["broken"] = False
                                raise Boom("connection reset")
                            data = stream.read() if n < 0 else stream.read(n)
                            self.served += len(data)
                            return data
                    return Half()
            return HalfFS(), root
        return fs, root

    monkeypatch.setattr(models, "resolve", flaky_resolve)
    with pytest.raises(Boom):
        fetch_model(uri)
    partials = list((tmp_path / "cache" / "models").glob("*.partial"))
    assert partials, "the interrupted download leaves only a .partial directory"
    assert not [p for p in (tmp_path / "cache" / "models").iterdir() if p.is_dir() and p.suffix == ""]
    local = Path(fetch_model(uri))                   # the re-run downloads again and completes
    assert (local / "model.safetensors").read_bytes() == b"x" * (3 * 2**20)
    assert not list((tmp_path / "cache" / "models").glob("*.partial"))


def test_publish_and_fetch_wait_out_short_outages_and_name_the_endpoint_past_the_window(tmp_path, s3_bucket,
                                                                                        s3_moto, monkeypatch):
    """An export, or an engine replica or trainer starting (the mark read, a file's download), while S3 is
    briefly down waits it out within ``MATHRAY_STORAGE_RETRY_S``; kept down past it, a read fails naming the
    endpoint. Each step's first call meets a stopped server, which is back for the retry."""
    from mathray.runtime.errors import StorageUnavailable

    def during_an_outage(fn, calls):
        def first_call_meets_a_stopped_server(*args):
            (s3_moto.stop if not calls else s3_moto.start)()
            calls.append(args)
            return fn(*args)
        return first_call_meets_a_stopped_server

    src = _hf_dir(tmp_path / "src")
    uri = f"{s3_bucket}/outage"
    uploads, marks, downloads = [], [], []
    monkeypatch.setattr(models, "_upload", during_an_outage(models._upload, uploads))
    publish_model(src, uri)            # a trainer exporting
    files, read = len(models.read_mark(uri)["files"]), object_io.read_whole
    monkeypatch.setattr(object_io, "read_whole", during_an_outage(read, marks))
    monkeypatch.setattr(models, "_download", during_an_outage(models._download, downloads))
    local = Path(fetch_model(uri))     # a replica starting
    assert (local / "model.safetensors").read_bytes() == b"w" * 3000
    assert (len(uploads), len(marks), len(downloads)) == (files + 1, 2, files + 1)   # one retry each

    monkeypatch.setattr(object_io, "read_whole", read)
    monkeypatch.setenv("MATHRAY_STORAGE_RETRY_S", "1")
    s3_moto.stop()
    try:
        with pytest.raises(StorageUnavailable, match=f"{s3_moto.endpoint}.*unreachable for 1 s"):
            models.read_mark(uri)
    finally:
        s3_moto.start()


def test_corrupt_download_is_refused(tmp_path, s3_bucket):
    src = _hf_dir(tmp_path / "src")
    uri = f"{s3_bucket}/c"
    publish_model(src, uri)
    fs, root = resolve(uri)
    with fs.open_output_stream(f"{root}/model.safetensors") as f:   # replaced behind the mark's back
        f.write(b"z" * 3000)
    with pytest.raises(ModelNotReady, match="does not match"):
        fetch_model(uri)
