"""Typed job configs: one pydantic model per job, loaded from YAML, overridden with ``key.sub=value``.

Unknown keys, wrong types and missing input paths fail with one clear message naming the key. Every job
output records the resolved config (``resolved_config``), its hash (``config_hash``) and the code version
(``code_version``) that produced it.

Usage::

    cfg = load_config(SampleJobConfig, "rayjobs/configs/sample.yaml", ["sampling.n=8", "engine.model=/m"])
"""
from __future__ import annotations

import functools
import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

import mathray

C = TypeVar("C", bound="StrictModel")


class ConfigError(ValueError):
    """A config file or override that cannot be used; the message names the offending key."""


class StrictModel(BaseModel):
    """Base of every config section: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


def parse_override(item: str) -> tuple[list[str], Any]:
    """``"a.b=3"`` -> (["a", "b"], 3). The value is parsed as YAML so ints, floats, bools, lists work."""
    if "=" not in item:
        raise ConfigError(f"override {item!r} is not of the form key.sub=value")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"override {item!r} has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.split("."), value


def _set_path(tree: dict, path: list[str], value: Any) -> None:
    node = tree
    for part in path[:-1]:
        nxt = node.get(part)
        if nxt is None:
            nxt = node[part] = {}
        if not isinstance(nxt, dict):
            raise ConfigError(f"cannot set {'.'.join(path)}: {part} is not a section")
        node = nxt
    node[path[-1]] = value


def _format_errors(cls: type, err: ValidationError) -> str:
    lines = [f"invalid {cls.__name__} config:"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "<root>"
        if e["type"] == "extra_forbidden":
            lines.append(f"  {loc}: unknown key")
        else:
            lines.append(f"  {loc}: {e['msg']} (got {e.get('input')!r})")
    return "\n".join(lines)


def load_config(cls: type[C], path: str | Path | None = None, overrides: list[str] | None = None) -> C:
    """Build ``cls`` from an optional YAML file plus ``key.sub=value`` overrides; raise ConfigError."""
    data: dict = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        try:
            data = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"config file {p} is not valid YAML: {e}") from e
        if not isinstance(data, dict):
            raise ConfigError(f"config file {p} must hold a mapping at the top level")
    for item in overrides or []:
        keys, value = parse_override(item)
        _set_path(data, keys, value)
    try:
        return cls.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_format_errors(cls, e)) from None


def outside_lineage(default: Any = ..., **kwargs) -> Any:
    """A config field that cannot change a job's results (logging, progress, pool sizes, poll intervals,
    paths of outputs): left out of ``result_config``/``result_hash``, so changing it never invalidates
    committed outputs. Use like ``Field``: ``log_every: int = outside_lineage(10, ge=1)``."""
    return Field(default, json_schema_extra={"affects_results": False}, **kwargs)


def _affects_results(model: type[BaseModel], name: str) -> bool:
    extra = model.model_fields[name].json_schema_extra
    return not (isinstance(extra, dict) and extra.get("affects_results") is False)


def result_config(cfg: BaseModel) -> dict:
    """The resolved config without its ``outside_lineage`` fields (recursively): what a job's results depend on."""
    def strip(value: Any) -> Any:
        if isinstance(value, BaseModel):
            return {k: strip(getattr(value, k)) for k in type(value).model_fields if _affects_results(type(value), k)}
        if isinstance(value, (list, tuple)):
            return [strip(v) for v in value]
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items()}
        return value
    return json.loads(json.dumps(strip(cfg), default=lambda o: o.model_dump(mode="json")
                                 if isinstance(o, BaseModel) else str(o)))


def result_hash(cfg: BaseModel) -> str:
    """Hash of ``result_config``: equal for two configs that differ only in knobs."""
    return config_hash(result_config(cfg))


def resolved_config(cfg: BaseModel) -> dict:
    """The config as plain JSON-able data (defaults filled in)."""
    return cfg.model_dump(mode="json")


def config_hash(cfg: BaseModel | dict) -> str:
    data = resolved_config(cfg) if isinstance(cfg, BaseModel) else cfg
    blob = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


@functools.cache
def code_version() -> str:
    """``git:<sha>[-dirty]`` when the package sits in a git checkout, else ``<version>+src.<hash>``.

    ``ray job submit --working-dir`` does not upload ``.git``; the source hash still pins the code then.
    """
    root = Path(mathray.__file__).resolve().parent.parent
    try:
        sha = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
        if sha.returncode == 0 and sha.stdout.strip():
            dirty = subprocess.run(
                ["git", "-C", str(root), "status", "--porcelain", "--", "mathray", "rayjobs"],
                capture_output=True, text=True, timeout=5,
            ).stdout.strip()
            return f"git:{sha.stdout.strip()[:12]}" + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    h = hashlib.sha256()
    for f in sorted(Path(mathray.__file__).resolve().parent.rglob("*.py")):
        h.update(f.read_bytes())
    return f"{mathray.__version__}+src.{h.hexdigest()[:12]}"


def add_config_args(parser) -> None:
    """The CLI every job shares: ``--config FILE`` and repeated ``--set key.sub=value``."""
    parser.add_argument("--config", help="YAML config file (keys mirror the job's config model)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one key, e.g. --set sampling.n=8 (repeatable)")


def parse_job_args(cls: type[C], argv: list[str] | None = None, description: str | None = None) -> C:
    """Parse ``--config``/``--set`` and build the job's config; exit 2 with the message on error."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(description=description)
    add_config_args(parser)
    args = parser.parse_args(argv)
    try:
        return load_config(cls, args.config, args.overrides)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
