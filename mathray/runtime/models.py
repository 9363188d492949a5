"""Models at storage URIs: exports that are complete or absent, and a node-local cache to load them from.

A model export is an HF model directory (``config.json``, weights, tokenizer files, ``mathray_export.json``
with the run's config and lineage) at a URI: a local path, ``file://`` or ``s3://``. Its completion mark
``_COMPLETE.json`` is written last and lists every file with its size and sha256, so:

- ``publish_model(local_dir, uri, info)`` writes the files, then the mark (an earlier export at the same URI
  loses its mark first, so no reader ever sees old files under a mark or new files under an old mark);
- ``fetch_model(uri)`` returns a local directory a ``vllm.LLM`` or ``from_pretrained`` can load: a local
  export in place, a remote one downloaded once per node into ``<cache>/models/<key>`` (key = URI and mark
  digest; downloaded into a ``.partial`` directory, checked against the mark, then renamed, so an
  interrupted download is redone and never used). It refuses, with a message saying why, an export without
  its mark (still being written, or killed mid-export) and a download whose bytes do not match the mark.
- ``model_fingerprint(uri)`` names the exact weights (the mark's digest) for lineage and row provenance.
- ``publish_model_dir(src, dest)`` makes an export of a model directory mathray did not write (a hub
  download, a hand upload with ``aws s3 sync``): checked to be a model directory, copied when ``dest`` is
  given, and marked the same way, its files hashed where they are (``mathray publish-model``).

Model references that are not mathray exports still work: a hub id (``Qwen/Qwen2.5-1.5B``) is passed through
to the loader, and a local HF directory without ``mathray_export.json`` is used as it is (fingerprinted by
its file contents). vLLM must never see an ``s3://`` path: it would try its optional object-storage
streamer and die inside the engine actor.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import posixpath
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable

import pyarrow.fs as pafs

from mathray.runtime import env
from mathray.runtime.errors import ModelNotReady
from mathray.runtime.object_io import read_bytes, read_whole, resolve, retried, write_bytes_atomic

COMPLETE_MARK = "_COMPLETE.json"
EXPORT_INFO = "mathray_export.json"
_CHUNK = 8 * 2**20


def is_remote(uri: str) -> bool:
    return "://" in uri and not uri.startswith("file://")


def is_hub_id(ref: str) -> bool:
    """``org/name`` with no scheme that is not an existing local path: the loader fetches it from a hub."""
    return "://" not in ref and not os.path.exists(ref) and not ref.startswith(("/", ".", "~")) \
        and ref.count("/") == 1


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _local_files(local_dir: Path) -> dict[str, dict]:
    files = {}
    for p in sorted(local_dir.rglob("*")):
        rel = p.relative_to(local_dir).as_posix()
        if p.is_file() and rel != COMPLETE_MARK:
            files[rel] = {"size": p.stat().st_size, "sha256": _file_digest(p)}
    return files


def mark_digest(mark: dict) -> str:
    """The digest naming an export's exact bytes: over its file list (names, sizes, sha256)."""
    blob = json.dumps(mark["files"], sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def read_mark(uri: str) -> dict | None:
    """The export's completion mark, None when there is none; an object store's outage is waited out
    (``runtime.retries``)."""
    try:
        return json.loads(read_bytes(posixpath.join(uri, COMPLETE_MARK)))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise ModelNotReady(f"unreadable completion mark {uri}/{COMPLETE_MARK}: {e}") from e


def publish_model(local_dir: str | Path, uri: str, info: dict | None = None) -> dict:
    """Make ``local_dir`` (an HF model directory) the export at ``uri``: files first, the mark last.

    ``info`` (config, lineage, code version) is written into the export as ``mathray_export.json``. Returns
    the mark. When ``uri`` is ``local_dir`` itself, only the info and the mark are written."""
    local_dir = Path(local_dir)
    if info is not None:
        (local_dir / EXPORT_INFO).write_text(json.dumps(info, indent=1, sort_keys=True))
    files = _local_files(local_dir)
    if "config.json" not in files:
        raise ValueError(f"{local_dir} is not an HF model directory (no config.json)")
    fs, root = resolve(uri)
    # an earlier export here loses its mark before any of its files is replaced
    with contextlib.suppress(FileNotFoundError):
        retried(fs, uri, f"removing the mark of {uri}", fs.delete_file, posixpath.join(root, COMPLETE_MARK))
    same_dir = isinstance(fs, pafs.LocalFileSystem) and Path(root).resolve() == local_dir.resolve()
    if not same_dir:
        retried(fs, uri, f"clearing {uri}", _clear_dir, fs, root)
        for rel in files:
            retried(fs, uri, f"uploading {rel} to {uri}", _upload, local_dir / rel, fs, posixpath.join(root, rel))
    return _write_mark(uri, files, info)


def _clear_dir(fs, root: str) -> None:
    fs.create_dir(root, recursive=True)
    fs.delete_dir_contents(root, missing_dir_ok=True)


def _upload(src: Path, fs, dest: str) -> None:
    """One file to the store, written whole (a retry writes it again from the start)."""
    fs.create_dir(posixpath.dirname(dest), recursive=True)
    with src.open("rb") as f, fs.open_output_stream(dest) as out:
        while chunk := f.read(_CHUNK):
            out.write(chunk)


def _write_mark(uri: str, files: dict[str, dict], info: dict | None) -> dict:
    """Write the completion mark of the export at ``uri`` (its files already in place) in one step: a local
    file renamed into place, or one S3 PUT."""
    mark = {"files": files, "published_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "info": {k: (info or {}).get(k) for k in ("job", "lineage", "code_version") if (info or {}).get(k)}}
    write_bytes_atomic(posixpath.join(uri, COMPLETE_MARK), json.dumps(mark, indent=1, sort_keys=True).encode())
    return mark


# What ``from_pretrained`` and vLLM need to load a causal LM with its tokenizer from a directory.
WEIGHT_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt", "spiece.model")


def model_dir_problems(names: set[str], read: Callable[[str], bytes]) -> list[str]:
    """Why the files ``names`` (paths relative to a directory) are not a model directory that loads with its
    tokenizer; empty when they are. ``read(name)`` gives a file's bytes (config.json and weight indexes are
    read)."""
    problems = []
    if "config.json" not in names:
        problems.append("no config.json")
    else:
        try:
            config = json.loads(read("config.json"))
        except (ValueError, UnicodeDecodeError) as e:
            config = None
            problems.append(f"config.json is not valid JSON ({e})")
        if config is not None and not (isinstance(config, dict)
                                       and (config.get("model_type") or config.get("architectures"))):
            problems.append("config.json names no model_type or architectures")
    top = {n for n in names if "/" not in n}
    if not any(n.endswith(".safetensors") or (n.startswith("pytorch_model") and n.endswith(".bin")) for n in top):
        problems.append("no weights (*.safetensors or pytorch_model*.bin)")
    for index in (i for i in WEIGHT_INDEXES if i in top):
        try:
            shards = set(json.loads(read(index))["weight_map"].values())
        except (ValueError, UnicodeDecodeError, KeyError, TypeError, AttributeError) as e:
            problems.append(f"{index} is not a weight index ({type(e).__name__}: {e})")
            continue
        if missing := sorted(shards - top):
            problems.append(f"{index} lists weight files that are not there ({', '.join(missing[:3])})")
    if not top & set(TOKENIZER_FILES):
        problems.append("no tokenizer files (" + ", ".join(TOKENIZER_FILES[:3]) + " or the like)")
    return problems


def stored_files(uri: str) -> list[str]:
    """The files under ``uri`` (relative paths, sorted), completion marks left out; ``FileNotFoundError``
    when there is no directory there (on S3: no object under the prefix)."""
    fs, root = resolve(uri)
    infos = fs.get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=True))
    names = sorted(posixpath.relpath(i.path, root) for i in infos if i.type == pafs.FileType.File)
    names = [n for n in names if not posixpath.basename(n).startswith(COMPLETE_MARK)]
    if not names and fs.get_file_info(root).type != pafs.FileType.Directory:
        raise FileNotFoundError(f"no directory at {uri}")
    return names


def _stored_digests(fs, root: str, names: list[str]) -> dict[str, dict]:
    """Size and sha256 of each stored file, read once from where it is."""
    files = {}
    for rel in names:
        h, size = hashlib.sha256(), 0
        with fs.open_input_stream(posixpath.join(root, rel)) as src:
            while chunk := src.read(_CHUNK):
                h.update(chunk)
                size += len(chunk)
        files[rel] = {"size": size, "sha256": h.hexdigest()}
    return files


def publish_model_dir(src: str, dest: str | None = None) -> tuple[str, dict]:
    """Publish a model directory mathray did not write as an export: ``src`` must be a model directory
    (``model_dir_problems``); a local ``src`` is copied to ``dest`` when given, else ``src`` (local or
    ``s3://``, e.g. uploaded with ``aws s3 sync``) is marked where it is. Returns (the export's URI, its
    mark). ``ValueError`` says what is wrong; nothing is written then."""
    try:
        names = set(stored_files(src))
    except FileNotFoundError:
        raise ValueError(f"no model directory at {src}") from None
    fs, root = resolve(src)
    if problems := model_dir_problems(names, lambda n: read_whole(fs, posixpath.join(root, n))):
        raise ValueError(f"{src} is not a model directory: {'; '.join(problems)} (a model directory is what "
                         "save_pretrained writes for a model and its tokenizer)")
    if dest is None or dest.rstrip("/") == src.rstrip("/"):
        if not is_remote(src):
            return src, publish_model(root, root)
        return src, _write_mark(src, _stored_digests(fs, root, sorted(names)), None)
    if is_remote(src):
        raise ValueError(f"{src} is already in storage: publish it where it is (no DEST), or copy it to {dest} "
                         "first (aws s3 sync) and publish that")
    _refuse_foreign_files(dest)
    return dest, publish_model(root, dest)


def _refuse_foreign_files(dest: str) -> None:
    """Publishing replaces what is at ``dest``: only an empty location or an earlier export may be replaced."""
    try:
        present = stored_files(dest)
    except FileNotFoundError:
        return
    if present and read_mark(dest) is None:
        raise ValueError(f"{dest} holds {len(present)} files that are not a published model (e.g. {present[0]}): "
                         "publishing would delete them; choose an empty location")


def _download(fs, src: str, target: Path) -> str:
    """Copy one stored file to ``target`` (rewritten whole: a retry starts over); returns its sha256."""
    target.parent.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    with fs.open_input_stream(src) as stream, target.open("wb") as out:
        while chunk := stream.read(_CHUNK):
            h.update(chunk)
            out.write(chunk)
    return h.hexdigest()


def cache_root() -> Path:
    return Path(env.cache_dir())


@contextlib.contextmanager
def staging_dir(kind: str = "staging"):
    """A fresh local directory under the node-local cache, removed afterwards: where an export or a
    checkpoint is assembled before it goes to storage (nothing else on the node's disk is written)."""
    root = cache_root() / kind
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        yield tmp


def _check_local(path: Path, uri: str) -> dict | None:
    """The mark of a local export (sizes checked), None for an external HF directory; refuses an
    unfinished mathray export."""
    if not path.is_dir():
        raise ModelNotReady(f"no model directory at {uri}")
    mark = read_mark(str(path))
    if mark is None:
        if (path / EXPORT_INFO).exists() or not (path / "config.json").exists():
            raise ModelNotReady(
                f"model export at {uri} has no completion mark ({COMPLETE_MARK}): it is still being written "
                "or its writer died mid-export; re-run the stage that produces it")
        return None
    for rel, meta in mark["files"].items():
        f = path / rel
        if not f.is_file() or f.stat().st_size != meta["size"]:
            raise ModelNotReady(f"model export at {uri}: {rel} is missing or not the size its mark records")
    return mark


def check_model(uri: str) -> None:
    """Raise ``ModelNotReady`` now (in the driver) for a model an engine or trainer could not load, instead
    of letting each actor die on it and be retried."""
    if is_hub_id(uri):
        return
    if is_remote(uri):
        if read_mark(uri) is None:
            raise ModelNotReady(f"no model export at {uri}: {COMPLETE_MARK} not found (still being written, "
                                "its writer died mid-export, or the URI is wrong)")
        return
    _check_local(Path(resolve(uri)[1]), uri)


def fetch_model(uri: str) -> str:
    """A local directory holding the model at ``uri`` (see the module docstring); hub ids pass through."""
    if is_hub_id(uri):
        return uri
    if not is_remote(uri):
        path = Path(resolve(uri)[1])
        _check_local(path, uri)
        return str(path)
    mark = read_mark(uri)
    if mark is None:
        raise ModelNotReady(
            f"no model export at {uri}: {COMPLETE_MARK} not found (the export is still being written, its "
            "writer died mid-export, or the URI is wrong); mathray loads only complete exports")
    key = hashlib.sha256(f"{uri}\n{mark_digest(mark)}".encode()).hexdigest()[:20]
    dest = cache_root() / "models" / key
    if (dest / COMPLETE_MARK).is_file():
        return str(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(dest.with_suffix(".lock")):
        if (dest / COMPLETE_MARK).is_file():   # another process on this node finished it meanwhile
            return str(dest)
        partial = dest.with_suffix(".partial")
        shutil.rmtree(partial, ignore_errors=True)   # leftovers of an interrupted download
        fs, root = resolve(uri)
        for rel, meta in mark["files"].items():
            src = posixpath.join(root, rel)
            digest = retried(fs, uri, f"downloading {rel} of {uri}", _download, fs, src, partial / rel)
            if digest != meta["sha256"]:
                raise ModelNotReady(f"model export at {uri}: {rel} does not match its completion mark "
                                    "(replaced while being read?); re-run to fetch it again")
        (partial / COMPLETE_MARK).write_text(json.dumps(mark, indent=1, sort_keys=True))
        shutil.rmtree(dest, ignore_errors=True)
        partial.rename(dest)
    return str(dest)


@contextlib.contextmanager
def _file_lock(path: Path):
    import fcntl

    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _sampled_bytes(f: Path, chunk: int = 2**20) -> bytes:
    """The whole file when small, else its size and three 1 MiB windows: cheap on multi-GB weights."""
    size = f.stat().st_size
    if size <= 3 * chunk:
        return f.read_bytes()
    with f.open("rb") as fh:
        parts = [str(size).encode()]
        for offset in (0, size // 2, size - chunk):
            fh.seek(offset)
            parts.append(fh.read(chunk))
    return b"".join(parts)


def model_fingerprint(uri: str) -> str:
    """``<name>@<12 hex>`` naming the exact weights at ``uri`` (the mark's digest for exports; file contents
    for an external local directory; the id itself for a hub id)."""
    if is_hub_id(uri):
        return uri
    name = posixpath.basename(uri.split("?")[0].rstrip("/")) or uri
    mark = read_mark(uri)
    if mark is not None:
        return f"{name}@{mark_digest(mark)[:12]}"
    path = Path(resolve(uri)[1])
    if not path.is_dir():
        raise ModelNotReady(f"no model at {uri}")
    h = hashlib.sha256()
    for f in sorted(path.iterdir()):
        if f.suffix in (".json", ".safetensors", ".bin") and f.is_file():
            h.update(f.name.encode())
            h.update(_sampled_bytes(f))
    return f"{name}@{h.hexdigest()[:12]}"
