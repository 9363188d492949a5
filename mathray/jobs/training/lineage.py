"""What a training run's result depends on: its result-affecting config (``outside_lineage`` fields left out: paths,
logging, checkpoint cadence, failure policy) and the fingerprints of the model and data it reads
(``runtime.lineage``). It names the run (resume) and rides in every export's completion mark, so the
pipeline can tell a finished run of this exact work from a stale one.

What a task reads is its declaration's ``reads`` (``tasks``): objective sections and data sets. Nothing else in
its config or data can change its result, so a change there (or a new field in a section it does not read)
leaves its finished runs valid.

The run identity (``run_identity``) names the run (``run_name``); the driver (``job``) refuses to resume a run
whose recorded identity differs (``claim_run``), and rank 0 of the workers (``worker``) records it
(``record_identity``).
"""
from __future__ import annotations

import json

from mathray.jobs.training.tasks import SECTIONS, TASKS
from mathray.runtime.lineage import Lineage, LineageMismatch, shard_set_fingerprint
from mathray.runtime.models import model_fingerprint
from mathray.runtime.storage import ShardStore, resolve


def training_inputs(cfg) -> dict[str, str]:
    inputs = {"model": model_fingerprint(cfg.model)}
    for kind in TASKS[cfg.task].reads(cfg).data:
        for i, uri in enumerate(getattr(cfg.data, kind)):
            inputs[f"data.{kind}[{i}]"] = shard_set_fingerprint(ShardStore(uri, verify=cfg.verify_inputs))
    return inputs


def training_lineage(cfg) -> Lineage:
    lineage = Lineage.of("train", cfg, training_inputs(cfg))
    sections = TASKS[cfg.task].reads(cfg).sections
    for section in SECTIONS:
        if section not in sections:
            lineage.config.pop(section, None)
        elif sections[section] is not None:
            lineage.config[section] = {k: v for k, v in lineage.config.get(section, {}).items()
                                       if k in sections[section]}
    return lineage


def run_identity(cfg) -> dict:
    """The lineage record (job, config, input fingerprints, hash) every export of this run carries."""
    return training_lineage(cfg).record()


def run_name(cfg, identity: dict | None = None) -> str:
    """``name``, or ``train-<task>-<identity hash>``: re-running the same identity resumes its checkpoints."""
    return cfg.name or f"train-{cfg.task}-{(identity if identity is not None else run_identity(cfg))['hash']}"


def _flat(tree, prefix: str = "") -> dict:
    if isinstance(tree, dict):
        out = {}
        for k, v in tree.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out
    return {prefix.rstrip("."): tree}


def identity_diff(old: dict, new: dict) -> list[str]:
    a, b = _flat(old), _flat(new)
    return [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def record_identity(uri: str, identity: dict) -> None:
    """Written by rank 0 once Ray Train has created the run directory (creating it from the driver first
    made Ray's own directory creation fail on S3 servers that refuse a marker over existing keys)."""
    fs, path = resolve(uri)
    if fs.get_file_info(path).type.name == "NotFound":
        with fs.open_output_stream(path) as f:
            f.write(json.dumps(identity, indent=1, sort_keys=True).encode())


def claim_run(uri: str, name: str, identity: dict) -> None:
    """Refuse to resume run ``name`` when its recorded identity (``uri``) differs from ``identity``."""
    fs, path = resolve(uri)
    try:
        with fs.open_input_stream(path) as f:
            old = json.loads(f.read())
    except FileNotFoundError:
        return
    diff = identity_diff(old, identity)
    if diff:
        raise LineageMismatch(f"run {name!r} ({uri}) was started with another identity; resuming it would mix "
                              "two trainings. Differences (stored -> now):\n  " + "\n  ".join(diff) +
                              "\nUse another name (or none: the default name follows the identity).")
