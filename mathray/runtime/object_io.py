"""Storage URIs and whole-object I/O: which filesystem a URI is on, and reads/writes of single objects that
survive crashes (local: temporary file, fsync, rename, directory fsync) and short S3 outages (retried,
``runtime.retries``).

URIs are local paths, ``file://`` or ``s3://bucket/key``. S3 credentials come only from the standard AWS
chain; an S3-compatible endpoint only from ``AWS_ENDPOINT_URL_S3``/``AWS_ENDPOINT_URL`` (passed explicitly:
pyarrow 26 ignores them), never from the URI (a URI with a query string, user info or a ``..`` segment is
refused: a config cannot redirect writes or carry credentials). The region comes from
``AWS_REGION``/``AWS_DEFAULT_REGION``, else from the bucket itself (resolved once).
"""
from __future__ import annotations

import functools
import io
import os
import posixpath
import uuid
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from mathray.runtime import env, retries


def resolve(uri: str) -> tuple[pafs.FileSystem, str]:
    """Return (filesystem, path inside it) for a local path, ``file://`` or ``s3://`` URI."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        path = parsed.path if parsed.scheme == "file" else uri
        return pafs.LocalFileSystem(), posixpath.abspath(path)
    if parsed.scheme == "s3":
        if parsed.query or parsed.params or parsed.fragment or "?" in uri:
            raise ValueError(f"storage URI {uri!r} has a query string: endpoints and regions come from the "
                             "environment (AWS_ENDPOINT_URL_S3, AWS_REGION), not from URIs")
        if ".." in parsed.path.split("/") or not parsed.netloc or "@" in parsed.netloc:
            raise ValueError(f"storage URI {uri!r} must be s3://bucket/key with no '..' segment and no user "
                             "info (credentials come from the AWS chain, never from a URI)")
        return s3_filesystem(parsed.netloc), (parsed.netloc + parsed.path).rstrip("/")
    raise ValueError(f"unsupported storage URI {uri!r}: use a local path, file:// or s3://")


@functools.lru_cache(maxsize=64)
def _bucket_region(bucket: str) -> str | None:
    try:
        return pafs.resolve_s3_region(bucket)
    except (OSError, ValueError):
        return None   # no permission to ask: let the AWS SDK's own default chain decide


def s3_filesystem(bucket: str | None = None):
    """An S3 filesystem for ``bucket`` with the endpoint and region of the environment (or the bucket's)."""
    endpoint = env.s3_endpoint()
    kwargs: dict = {}
    if endpoint:
        u = urlparse(endpoint if "://" in endpoint else f"https://{endpoint}")
        kwargs.update(endpoint_override=u.netloc, scheme=u.scheme)
    region = env.aws_region() or (None if endpoint or not bucket else _bucket_region(bucket))
    if region:
        kwargs["region"] = region
    return pafs.S3FileSystem(**kwargs)


def absolute(uri: str) -> str:
    """A relative local path made absolute against the driver's cwd (Ray workers run elsewhere)."""
    return uri if not uri or "://" in uri or posixpath.isabs(uri) else posixpath.abspath(uri)


def join(uri: str, *parts: str) -> str:
    return posixpath.join(uri, *parts)


def is_local(fs) -> bool:
    return isinstance(fs, pafs.LocalFileSystem)


def retried(fs, uri: str, what: str, fn, *args, **kwargs):
    """``fn(*args, **kwargs)``, retried on transient failures when ``fs`` is an object store."""
    if is_local(fs):
        return fn(*args, **kwargs)
    return retries.call(lambda: fn(*args, **kwargs), what=what, where=retries.endpoint_of(uri))


def exists(uri: str) -> bool:
    fs, path = resolve(uri)
    return retried(fs, uri, f"looking up {uri}", fs.get_file_info, path).type != pafs.FileType.NotFound


def read_whole(fs, path: str) -> bytes:
    with fs.open_input_stream(path) as f:
        return f.read()


def read_bytes(uri: str) -> bytes:
    fs, path = resolve(uri)
    return retried(fs, uri, f"reading {uri}", read_whole, fs, path)


def write_local_durable(path: str, data: bytes, tmp_dir: str | None = None) -> None:
    """Write ``data`` to a temporary file (in ``tmp_dir``, else beside ``path``), fsync it, rename it to
    ``path`` and fsync the directory: after a crash, ``path`` holds either nothing or all of ``data``."""
    write_local_chunks(path, [data], tmp_dir)


def write_local_chunks(path: str, chunks, tmp_dir: str | None = None) -> None:
    """``write_local_durable`` of the concatenated byte ``chunks``, written one at a time."""
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    if tmp_dir:
        os.makedirs(tmp_dir, exist_ok=True)
    tmp = os.path.join(tmp_dir or directory, f".{os.path.basename(path)}.{uuid.uuid4().hex[:8]}.part")
    with open(tmp, "wb") as f:
        for chunk in chunks:
            f.write(chunk)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_object(fs, path: str, data: bytes) -> None:
    with fs.open_output_stream(path) as f:
        f.write(data)


def write_bytes_atomic(uri: str, data: bytes) -> None:
    """Local: a durable write (temporary file, fsync, rename). S3: one PUT (whole or nothing), retried."""
    fs, path = resolve(uri)
    if is_local(fs):
        write_local_durable(path, data)
    else:
        retried(fs, uri, f"writing {uri}", write_object, fs, path, data)


def write_chunks_atomic(uri: str, chunks) -> None:
    """``write_bytes_atomic`` of the concatenated byte ``chunks`` without holding them all: local, a temporary
    file that is fsynced and renamed; S3, a streamed upload to a temporary key, copied to ``uri`` once whole
    (a failure part-way leaves ``uri`` as it was). Not retried: the chunks can be read only once."""
    fs, path = resolve(uri)
    if is_local(fs):
        write_local_chunks(path, chunks)
        return
    tmp = f"{path}.{uuid.uuid4().hex[:8]}.part"
    try:
        with fs.open_output_stream(tmp) as f:
            for chunk in chunks:
                f.write(chunk)
        fs.move(tmp, path)
    finally:
        if fs.get_file_info(tmp).type != pafs.FileType.NotFound:
            fs.delete_file(tmp)


def table_to_parquet_bytes(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()
