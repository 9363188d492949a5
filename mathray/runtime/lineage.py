"""Lineage: what an output was computed from, so a re-run can tell "same work, resume" from "different work".

A stage output's lineage is its job, the hash of its result-affecting config (``config.result_config``:
every field except the ``outside_lineage`` ones, e.g. logging, pool sizes, input/output URIs) and the fingerprint of
every input it read: a shard set's fingerprint covers its committed shards' names and sha256 sums, a model's
is ``runtime.models.model_fingerprint`` (its completion mark). Two runs with equal lineage hashes compute the
same rows, so committed shards of one are valid for the other; any difference makes a stage refuse to mix
outputs (``LineageMismatch``, naming what differs) unless told to overwrite.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from mathray.config import result_config
from mathray.runtime.errors import InputMismatch, InputNotReady, LineageMismatch


@dataclass
class Lineage:
    job: str
    config: dict                                     # the result-affecting config
    inputs: dict[str, str] = field(default_factory=dict)   # input name -> fingerprint

    @property
    def hash(self) -> str:
        blob = json.dumps({"job": self.job, "config": self.config, "inputs": self.inputs}, sort_keys=True,
                          separators=(",", ":"), default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def record(self) -> dict:
        return {**asdict(self), "hash": self.hash}

    @classmethod
    def of(cls, job: str, cfg, inputs: dict[str, str] | None = None) -> "Lineage":
        return cls(job=job, config=result_config(cfg), inputs=dict(inputs or {}))

    @classmethod
    def from_record(cls, rec: dict) -> "Lineage":
        return cls(job=rec.get("job", ""), config=rec.get("config") or {}, inputs=rec.get("inputs") or {})


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        out: dict[str, Any] = {}
        for k, v in tree.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix.rstrip("."): tree}


def differences(old: Lineage, new: Lineage, limit: int = 12) -> list[str]:
    """Human-readable differences between two lineages (config keys, then inputs)."""
    out = []
    if old.job != new.job:
        out.append(f"job: {old.job!r} -> {new.job!r}")
    a, b = _flatten(old.config), _flatten(new.config)
    for key in sorted(set(a) | set(b)):
        if a.get(key, "<unset>") != b.get(key, "<unset>"):
            out.append(f"config {key}: {a.get(key, '<unset>')!r} -> {b.get(key, '<unset>')!r}")
    for name in sorted(set(old.inputs) | set(new.inputs)):
        if old.inputs.get(name) != new.inputs.get(name):
            out.append(f"input {name}: {old.inputs.get(name, '<none>')} -> {new.inputs.get(name, '<none>')}")
    if len(out) > limit:
        out = out[:limit] + [f"... and {len(out) - limit} more"]
    return out or ["(lineage hashes differ; no field-level difference recorded)"]


def mismatch_message(uri: str, old: Lineage | None, new: Lineage, old_hash: str) -> str:
    lines = [f"{uri} holds committed output of another lineage ({old_hash}; this run is {new.hash}):"]
    lines += [f"  {d}" for d in (differences(old, new) if old else ["(the earlier run's lineage is unreadable)"])]
    lines += ["Refusing to mix the two. Either write to a new output URI, or re-run with "
              "--set resume=overwrite to clear the old output first."]
    return "\n".join(lines)


def shard_set_fingerprint(store) -> str:
    """Fingerprint of a complete shard set (``runtime.storage.ShardStore``): its committed shards' names and
    sha256 sums. Raises ``InputNotReady`` when the set is missing or not marked complete, ``CorruptShard``
    when (with the store's ``verify``) a shard of its manifest has no usable commit marker."""
    manifest = store.verified_manifest()
    if manifest is None or not manifest.get("complete"):
        state = "missing" if manifest is None else "incomplete (its writer has not finished)"
        raise InputNotReady(f"input {store.uri} is {state}: run the stage that writes it first")
    return fingerprint_of_shards(manifest["shards"])


def fingerprint_of_shards(shards: list[dict]) -> str:
    items = sorted((s["name"], s["sha256"]) for s in shards)
    return "shards@" + hashlib.sha256(json.dumps(items).encode()).hexdigest()[:16]
