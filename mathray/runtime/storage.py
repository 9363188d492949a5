"""URI-based storage of stage outputs as committed parquet shards (local paths, ``file://``, ``s3://``).

A stage output directory looks like::

    <uri>/shards/part-00000.parquet        complete data files (written elsewhere, then moved in)
    <uri>/quarantine/part-00000.parquet    rows refused by the stage, with a ``reason`` column
    <uri>/_commits/part-00000.json         commit marker: rows, sha256, schema, lineage hash, code version
    <uri>/manifest.json                    all committed shards and whether the set is complete
    <uri>/run.json, <uri>/config.yaml      resolved config, lineage (``runtime.lineage``), code version

Commit protocol (the shard is the unit of work and of restart, as in datatrove): the shard is written to
``_tmp/`` and moved into ``shards/`` (atomic on local disks; a single PUT on S3), its quarantine rows are
written the same way, and the commit marker is written last. A shard without a marker does not exist for
readers and is recomputed on a re-run; a shard with a marker is never recomputed. ``shards/`` therefore
only ever holds complete files, so plain pandas / ``datasets`` / ``ray.data.read_parquet`` can read it.

S3 credentials come only from the standard AWS chain; an S3-compatible endpoint only from
``AWS_ENDPOINT_URL_S3``/``AWS_ENDPOINT_URL`` (passed explicitly: pyarrow 26 ignores them), never from the URI
(a URI with a query string or a ``..`` segment is refused: a config cannot redirect writes elsewhere). The
region comes from ``AWS_REGION``/``AWS_DEFAULT_REGION``, else from the bucket itself (resolved once).
"""
from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import io
import json
import posixpath
import uuid
from dataclasses import asdict, dataclass, field
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import yaml

from mathray.runtime import env


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
        if ".." in parsed.path.split("/") or not parsed.netloc:
            raise ValueError(f"storage URI {uri!r} must be s3://bucket/key with no '..' segment")
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


def exists(uri: str) -> bool:
    fs, path = resolve(uri)
    return fs.get_file_info(path).type != pafs.FileType.NotFound


def read_bytes(uri: str) -> bytes:
    fs, path = resolve(uri)
    with fs.open_input_stream(path) as f:
        return f.read()


def write_bytes_atomic(uri: str, data: bytes) -> None:
    """Write to a temporary name beside the target, then move it in."""
    fs, path = resolve(uri)
    fs.create_dir(posixpath.dirname(path), recursive=True)
    tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
    with fs.open_output_stream(tmp) as f:
        f.write(data)
    fs.move(tmp, path)


def table_to_parquet_bytes(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


@dataclass
class ShardCommit:
    """What a commit marker records about one shard."""

    name: str
    rows: int
    sha256: str
    quarantined_rows: int = 0
    config_hash: str = ""
    lineage: str = ""                # hash of the writing run's lineage (``runtime.lineage.Lineage``)
    code_version: str = ""
    schema: str = ""
    committed_at: str = ""
    stats: dict = field(default_factory=dict)


class ShardStore:
    """A stage output directory of committed parquet shards; see the module docstring for the layout."""

    def __init__(self, uri: str):
        self.uri = uri.rstrip("/")
        self.fs, self.root = resolve(self.uri)

    # -- paths -----------------------------------------------------------------------------------
    def shard_path(self, name: str) -> str:
        return posixpath.join(self.root, "shards", f"{name}.parquet")

    def quarantine_path(self, name: str) -> str:
        return posixpath.join(self.root, "quarantine", f"{name}.parquet")

    def _commit_path(self, name: str) -> str:
        return posixpath.join(self.root, "_commits", f"{name}.json")

    # -- reading ---------------------------------------------------------------------------------
    def committed(self) -> dict[str, ShardCommit]:
        """Committed shards by name (sorted); only these exist for readers."""
        sel = pafs.FileSelector(posixpath.join(self.root, "_commits"), allow_not_found=True)
        out = {}
        for info in sorted(self.fs.get_file_info(sel), key=lambda i: i.path):
            if info.type == pafs.FileType.File and info.path.endswith(".json"):
                with self.fs.open_input_stream(info.path) as f:
                    rec = ShardCommit(**json.loads(f.read()))
                out[rec.name] = rec
        return out

    def is_committed(self, name: str) -> bool:
        return self.fs.get_file_info(self._commit_path(name)).type == pafs.FileType.File

    def read_shard(self, name: str, columns: list[str] | None = None) -> pa.Table:
        return pq.read_table(self.shard_path(name), columns=columns, filesystem=self.fs)

    def read_quarantine(self, name: str) -> pa.Table | None:
        path = self.quarantine_path(name)
        if self.fs.get_file_info(path).type != pafs.FileType.File:
            return None
        return pq.read_table(path, filesystem=self.fs)

    def read_all(self, columns: list[str] | None = None) -> pa.Table:
        """All committed rows, shards in name order. Raises if nothing is committed."""
        names = list(self.committed())
        if not names:
            raise FileNotFoundError(f"no committed shards under {self.uri}")
        return pa.concat_tables([self.read_shard(n, columns) for n in names], promote_options="default")

    def read_all_quarantine(self) -> pa.Table | None:
        tables = [t for n in self.committed() if (t := self.read_quarantine(n)) is not None]
        return pa.concat_tables(tables, promote_options="default") if tables else None

    # -- writing ---------------------------------------------------------------------------------
    def _put(self, path: str, data: bytes) -> None:
        tmp = posixpath.join(self.root, "_tmp", f"{uuid.uuid4().hex}.part")
        self.fs.create_dir(posixpath.dirname(tmp), recursive=True)
        self.fs.create_dir(posixpath.dirname(path), recursive=True)
        with self.fs.open_output_stream(tmp) as f:
            f.write(data)
        self.fs.move(tmp, path)

    def commit_shard(
        self,
        name: str,
        table: pa.Table,
        quarantine: pa.Table | None = None,
        *,
        config_hash: str = "",
        lineage: str = "",
        code_version: str = "",
        stats: dict | None = None,
    ) -> ShardCommit:
        """Write shard data (and its quarantine rows), then the commit marker, last."""
        data = table_to_parquet_bytes(table)
        self._put(self.shard_path(name), data)
        n_quarantined = 0
        if quarantine is not None and quarantine.num_rows:
            self._put(self.quarantine_path(name), table_to_parquet_bytes(quarantine))
            n_quarantined = quarantine.num_rows
        rec = ShardCommit(
            name=name,
            rows=table.num_rows,
            sha256=hashlib.sha256(data).hexdigest(),
            quarantined_rows=n_quarantined,
            config_hash=config_hash,
            lineage=lineage,
            code_version=code_version,
            schema=table.schema.to_string(show_schema_metadata=False),
            committed_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            stats=stats or {},
        )
        self._put(self._commit_path(name), json.dumps(asdict(rec), indent=1).encode())
        return rec

    def write_run_info(self, config: dict, config_hash: str, code_version: str, job: str,
                       lineage: dict | None = None) -> None:
        """Record the resolved config, its hash, the lineage and the code version next to the data."""
        info = {"job": job, "config_hash": config_hash, "code_version": code_version,
                "started_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "config": config, "lineage": lineage}
        self._put(posixpath.join(self.root, "run.json"), json.dumps(info, indent=1).encode())
        self._put(posixpath.join(self.root, "config.yaml"), yaml.safe_dump(config, sort_keys=False).encode())

    def read_run_info(self) -> dict | None:
        path = posixpath.join(self.root, "run.json")
        if self.fs.get_file_info(path).type != pafs.FileType.File:
            return None
        with self.fs.open_input_stream(path) as f:
            return json.loads(f.read())

    def write_manifest(self, extra: dict | None = None, complete: bool = True) -> dict:
        """Rewrite manifest.json from the commit markers (the markers are the source of truth).
        ``complete``: every shard the set will ever hold is committed (readers may fingerprint it)."""
        commits = self.committed()
        manifest = {
            "uri": self.uri,
            "complete": complete,
            "shards": [asdict(c) for c in commits.values()],
            "rows": sum(c.rows for c in commits.values()),
            "quarantined_rows": sum(c.quarantined_rows for c in commits.values()),
            **(extra or {}),
        }
        self._put(posixpath.join(self.root, "manifest.json"), json.dumps(manifest, indent=1).encode())
        return manifest

    def read_manifest(self) -> dict | None:
        path = posixpath.join(self.root, "manifest.json")
        if self.fs.get_file_info(path).type != pafs.FileType.File:
            return None
        with self.fs.open_input_stream(path) as f:
            return json.loads(f.read())

    def clear(self) -> None:
        """Delete the whole output (``resume: overwrite``): markers first, so no reader sees a marked shard
        whose data is gone."""
        for sub in ("_commits", "manifest.json", "shards", "quarantine", "_tmp", "run.json", "config.yaml"):
            path = posixpath.join(self.root, sub)
            info = self.fs.get_file_info(path)
            if info.type == pafs.FileType.Directory:
                self.fs.delete_dir_contents(path, missing_dir_ok=True)
            elif info.type == pafs.FileType.File:
                self.fs.delete_file(path)

    def clear_uncommitted(self) -> None:
        """Remove leftovers of an interrupted run (temp files, data files without a marker)."""
        self.fs.delete_dir_contents(posixpath.join(self.root, "_tmp"), missing_dir_ok=True)
        done = set(self.committed())
        for sub in ("shards", "quarantine"):
            sel = pafs.FileSelector(posixpath.join(self.root, sub), allow_not_found=True)
            for info in self.fs.get_file_info(sel):
                name = posixpath.basename(info.path).removesuffix(".parquet")
                if info.type == pafs.FileType.File and name not in done:
                    self.fs.delete_file(info.path)


def shard_name(index: int) -> str:
    return f"part-{index:05d}"
