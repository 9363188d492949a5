"""URI-based storage of stage outputs as committed parquet shards (local paths, ``file://``, ``s3://``).

A stage output directory looks like::

    <uri>/shards/part-00000.parquet        complete data files
    <uri>/quarantine/part-00000.parquet    rows refused by the stage, with a ``reason`` column
    <uri>/_commits/part-00000.json         commit marker: rows, sha256, schema, lineage hash, code version
    <uri>/manifest.json                    all committed shards and whether the set is complete
    <uri>/run.json, <uri>/config.yaml      resolved config, lineage (``runtime.lineage``), code version
    <uri>/_lease.json                      the writer lease of the run writing it (``runtime.lease``)

Commit protocol (the shard is the unit of work and of restart, as in datatrove): the shard's data and its
quarantine rows are written whole, and the commit marker is written last. On local disk a file is written
under ``_tmp/<attempt>/`` (one directory per ``ShardStore``, so a run's cleanup never deletes another
attempt's files), fsynced, renamed into place and its directory fsynced: a marker never reaches the disk
before the data it describes. On S3 a PUT makes an object appear whole or not at all, so objects are written
in place. A shard without a marker does not exist for readers and is recomputed on a re-run; a shard with a
marker is never recomputed. ``shards/`` only ever holds complete files, so plain pandas / ``datasets`` /
``ray.data.read_parquet`` can read it.

Reading: ``committed()`` skips a marker it cannot use (unreadable JSON, missing fields, naming another shard
than its file: "foreign"), logs it with its path and keeps it in ``marker_problems``, so one bad marker does
not make the whole output unreadable. With ``verify`` (the default) ``read_shard`` checks the bytes it read
against the marker's sha256 and row count and raises ``CorruptShard`` naming the file; ``verified_manifest``
checks that every shard of the manifest has a usable marker with the same sha256 (what a stage does to its
inputs before it starts).

Object-store calls are retried on transient failures (``runtime.retries``: bounded backoff, then
``StorageUnavailable`` naming the endpoint).

URIs, filesystems and whole-object I/O (``resolve``, ``join``, ``exists``, ``read_bytes``,
``write_bytes_atomic``) live in ``runtime.object_io`` and are importable from here.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import logging
import posixpath
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import yaml

from mathray.runtime.object_io import (absolute, exists, is_local, join, read_bytes, read_whole,  # noqa: F401
                                     resolve, retried, s3_filesystem, table_to_parquet_bytes, write_object,
                                     write_bytes_atomic, write_chunks_atomic, write_local_durable)

from mathray.runtime.errors import CorruptShard
from mathray.runtime.lease import attempt_alive, attempt_id, check_held

log = logging.getLogger(__name__)


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


_MARKER_READERS = 16   # concurrent marker reads on an object store (one small GET each)


def _marker(data: bytes, stem: str) -> ShardCommit:
    """A commit marker from its bytes; ``ValueError`` saying why when it cannot be used."""
    try:
        fields = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"not valid JSON ({e})") from None
    if not isinstance(fields, dict):
        raise ValueError("not a JSON object")
    try:
        rec = ShardCommit(**fields)
    except TypeError as e:
        raise ValueError(f"not a commit marker ({e})") from None
    if rec.name != stem:
        raise ValueError(f"foreign marker: it names shard {rec.name!r}")
    if not (isinstance(rec.sha256, str) and len(rec.sha256) == 64) or not isinstance(rec.rows, int) or rec.rows < 0:
        raise ValueError("malformed sha256 or row count")
    return rec


class ShardStore:
    """A stage output directory of committed parquet shards; see the module docstring for the layout.
    ``verify``: check shard bytes against their markers when reading (on by default)."""

    def __init__(self, uri: str, verify: bool = True):
        self.uri = uri.rstrip("/")
        self.fs, self.root = resolve(self.uri)
        self.verify = verify
        self.local = is_local(self.fs)
        self.attempt = attempt_id()                    # names this writer's temporary directory
        self.marker_problems: dict[str, str] = {}      # marker path -> why committed() skipped it

    # -- paths and calls ---------------------------------------------------------------------------
    def shard_path(self, name: str) -> str:
        return posixpath.join(self.root, "shards", f"{name}.parquet")

    def quarantine_path(self, name: str) -> str:
        return posixpath.join(self.root, "quarantine", f"{name}.parquet")

    def _commit_path(self, name: str) -> str:
        return posixpath.join(self.root, "_commits", f"{name}.json")

    def where(self, path: str) -> str:
        """A path inside this store as a URI a user can open (``s3://...`` or the local path)."""
        return path if self.local else f"s3://{path}"

    def _io(self, what: str, fn, *args, **kwargs):
        return retried(self.fs, self.uri, what, fn, *args, **kwargs)

    def _read(self, path: str) -> bytes:
        return self._io(f"reading {self.where(path)}", read_whole, self.fs, path)

    def _read_if_exists(self, path: str) -> bytes | None:
        try:
            return self._read(path)
        except FileNotFoundError:
            return None

    def _list(self, sub: str) -> list:
        sel = pafs.FileSelector(posixpath.join(self.root, sub), allow_not_found=True)
        infos = self._io(f"listing {self.where(sel.base_dir)}", self.fs.get_file_info, sel)
        return sorted((i for i in infos if i.type == pafs.FileType.File), key=lambda i: i.path)

    # -- reading ---------------------------------------------------------------------------------
    def committed(self) -> dict[str, ShardCommit]:
        """Committed shards by name (sorted); only these exist for readers. Unusable markers are skipped,
        logged and kept in ``marker_problems``."""
        infos = [i for i in self._list("_commits") if i.path.endswith(".json")]
        with ThreadPoolExecutor(1 if self.local else _MARKER_READERS) as pool:
            blobs = list(pool.map(lambda i: self._read_if_exists(i.path), infos))
        out, problems = {}, {}
        for info, data in zip(infos, blobs):
            if data is None:
                continue   # deleted between the listing and the read (an overwrite in progress)
            stem = posixpath.basename(info.path).removesuffix(".json")
            try:
                out[stem] = _marker(data, stem)
            except ValueError as e:
                problems[self.where(info.path)] = str(e)
        for path, why in problems.items():
            log.warning("ignoring commit marker %s: %s (its shard counts as not committed)", path, why)
        self.marker_problems = problems
        return out

    def is_committed(self, name: str) -> bool:
        path = self._commit_path(name)
        return self._io(f"looking up {self.where(path)}", self.fs.get_file_info, path).type == pafs.FileType.File

    def _commit_of(self, name: str) -> ShardCommit:
        path = self._commit_path(name)
        data = self._read_if_exists(path)
        if data is None:
            raise CorruptShard(f"{self.where(self.shard_path(name))}: no commit marker {self.where(path)}")
        try:
            return _marker(data, name)
        except ValueError as e:
            raise CorruptShard(f"commit marker {self.where(path)}: {e}") from None

    def read_shard(self, name: str, columns: list[str] | None = None, commit: ShardCommit | None = None) -> pa.Table:
        """A committed shard's rows; with ``verify``, its bytes are checked against the marker (``commit``,
        else read) and a mismatch raises ``CorruptShard`` naming the file."""
        path = self.shard_path(name)
        if not self.verify:
            return self._io(f"reading {self.where(path)}", pq.read_table, path, columns=columns, filesystem=self.fs)
        rec = commit or self._commit_of(name)
        data = self._read(path)
        digest = hashlib.sha256(data).hexdigest()
        if digest != rec.sha256:
            raise CorruptShard(
                f"{self.where(path)} does not match its commit marker {self.where(self._commit_path(name))}: "
                f"{len(data)} bytes with sha256 {digest[:16]}..., the marker says {rec.sha256[:16]}... Delete the "
                f"marker and re-run the stage that writes {self.uri} (the shard is recomputed).")
        table = pq.read_table(io.BytesIO(data), columns=columns)
        if table.num_rows != rec.rows:
            raise CorruptShard(f"{self.where(path)} has {table.num_rows} rows, its marker says {rec.rows}")
        return table

    def read_quarantine(self, name: str) -> pa.Table | None:
        data = self._read_if_exists(self.quarantine_path(name))
        return None if data is None else pq.read_table(io.BytesIO(data))

    def read_all(self, columns: list[str] | None = None) -> pa.Table:
        """All committed rows, shards in name order. Raises if nothing is committed."""
        commits = self.committed()
        if not commits:
            raise FileNotFoundError(f"no committed shards under {self.uri}")
        return pa.concat_tables([self.read_shard(n, columns, c) for n, c in commits.items()],
                                promote_options="default")

    # -- writing ---------------------------------------------------------------------------------
    def _put(self, path: str, data: bytes) -> None:
        if self.local:
            write_local_durable(path, data, posixpath.join(self.root, "_tmp", self.attempt))
        else:
            self._io(f"writing {self.where(path)}", write_object, self.fs, path, data)

    def _delete(self, path: str) -> None:
        try:
            self._io(f"deleting {self.where(path)}", self.fs.delete_file, path)
        except FileNotFoundError:
            pass

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
        check_held(self.uri)   # a run whose lease was taken over must not add markers
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
        data = self._read_if_exists(posixpath.join(self.root, "run.json"))
        try:
            return None if data is None else json.loads(data)
        except ValueError:
            log.warning("ignoring unreadable %s/run.json", self.uri)
            return None

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
        """The manifest, None when there is none; ``CorruptShard`` when it cannot be read."""
        path = posixpath.join(self.root, "manifest.json")
        data = self._read_if_exists(path)
        if data is None:
            return None
        try:
            manifest = json.loads(data)
            if isinstance(manifest, dict) and isinstance(manifest.get("shards", []), list):
                return manifest
        except ValueError:
            pass
        raise CorruptShard(f"{self.where(path)} is not a readable manifest: re-run the stage that writes {self.uri}")

    def verified_manifest(self) -> dict | None:
        """``read_manifest()`` after checking that every shard it lists has a usable commit marker with the
        same sha256 (``CorruptShard`` naming the marker otherwise)."""
        manifest = self.read_manifest()
        if manifest is None or not self.verify:
            return manifest
        commits = self.committed()
        for shard in manifest.get("shards", []):
            name = shard.get("name")
            marker = self.where(self._commit_path(str(name)))
            if name not in commits:
                why = self.marker_problems.get(marker, "missing")
                raise CorruptShard(f"{self.uri}: the manifest lists shard {name} but its commit marker {marker} is "
                                   f"unusable ({why}); re-run the stage that writes {self.uri}")
            if commits[name].sha256 != shard.get("sha256"):
                raise CorruptShard(f"{self.uri}: commit marker {marker} does not match the manifest's sha256 for "
                                   f"shard {name}; re-run the stage that writes {self.uri}")
        return manifest

    def clear(self) -> None:
        """Delete the whole output (``resume: overwrite``): markers first, so no reader sees a marked shard
        whose data is gone."""
        for sub in ("_commits", "manifest.json", "shards", "quarantine", "_tmp", "run.json", "config.yaml"):
            path = posixpath.join(self.root, sub)
            info = self._io(f"looking up {self.where(path)}", self.fs.get_file_info, path)
            if info.type == pafs.FileType.Directory:
                self._io(f"clearing {self.where(path)}", self.fs.delete_dir_contents, path, missing_dir_ok=True)
            elif info.type == pafs.FileType.File:
                self._delete(path)

    def clear_uncommitted(self) -> None:
        """Remove leftovers of interrupted runs: temporary files of writers that no longer run (a live
        writer's are kept, whoever runs this), data files without a usable marker, and unusable markers
        (their shards are recomputed). Deleting unmarked data is safe only while no other run writes here:
        callers hold the output's lease (``runtime.lease``)."""
        tmp = posixpath.join(self.root, "_tmp")
        for info in self._io(f"listing {self.where(tmp)}", self.fs.get_file_info,
                             pafs.FileSelector(tmp, allow_not_found=True)):
            if attempt_alive(posixpath.basename(info.path)):
                continue
            if info.type == pafs.FileType.Directory:
                self._io(f"clearing {self.where(info.path)}", self.fs.delete_dir, info.path)
            else:
                self._delete(info.path)
        done = set(self.committed())
        for marker in list(self.marker_problems):
            self._delete(marker.removeprefix("s3://"))
        for sub in ("shards", "quarantine"):
            for info in self._list(sub):
                name = posixpath.basename(info.path).removesuffix(".parquet")
                if name not in done:
                    self._delete(info.path)


def shard_name(index: int) -> str:
    return f"part-{index:05d}"
