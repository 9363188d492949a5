"""Hugging Face hub data sets as ingest sources: ``hf://<owner>/<name>?split=<split>[&config=<name>]
[&revision=<commit, branch or tag>][&data_files=<file in the repo>]``.

The split is loaded through ``datasets.load_dataset`` (downloaded once into the ``datasets`` cache,
``HF_HOME``), so a repository the library can read works here: parquet or JSON Lines files, configs declared
in its README. ``split`` takes the library's slice syntax (``split=test[:20]``: the first 20 records).
``data_files`` picks files of the repository (a glob, comma-separated for several) when its files do not
form one table, e.g. PRM800K's phase-1 and phase-2 label files. A repository id that names a
local folder (relative to the working directory) is read from that folder, which is how the tests load a
folder in the hub's layout without a network.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from urllib.parse import parse_qs

HF_SCHEME = "hf://"
_KEYS = ("split", "config", "revision", "data_files")


@dataclass(frozen=True)
class HubSplit:
    repo: str                        # "<owner>/<name>" (or a canonical "<name>")
    split: str
    config: str | None = None
    revision: str | None = None
    data_files: tuple[str, ...] | None = None


def is_hub_uri(path: str) -> bool:
    return path.startswith(HF_SCHEME)


def parse_hub_uri(uri: str) -> HubSplit:
    """The parts of an ``hf://`` URI; ValueError naming what is wrong (unknown or repeated key, no split)."""
    repo, _, query = uri[len(HF_SCHEME):].partition("?")
    usage = f"{HF_SCHEME}<owner>/<name>?split=<split>[&config=<name>][&revision=<rev>][&data_files=<file>]"
    if not repo or repo.count("/") > 1 or repo.startswith("/") or repo.endswith("/"):
        raise ValueError(f"{uri!r}: a hub data set is written {usage}")
    try:
        params = parse_qs(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError as e:
        raise ValueError(f"{uri!r}: unreadable query ({e}); write {usage}") from e
    unknown = sorted(set(params) - set(_KEYS))
    if unknown:
        raise ValueError(f"{uri!r}: unknown key(s) {', '.join(unknown)}; the keys are {', '.join(_KEYS)}")
    repeated = sorted(k for k, v in params.items() if len(v) > 1)
    if repeated:
        raise ValueError(f"{uri!r}: key(s) given twice: {', '.join(repeated)}")
    values = {k: v[0] for k, v in params.items()}
    if not values.get("split"):
        raise ValueError(f"{uri!r}: no split (e.g. ?split=train); write {usage}")
    files = tuple(f for f in values.get("data_files", "").split(",") if f) or None
    return HubSplit(repo=repo, split=values["split"], config=values.get("config") or None,
                    revision=values.get("revision") or None, data_files=files)


def load_hub_split(uri: str):
    """The ``datasets.Dataset`` of the split ``uri`` names. A failure to fetch or read it (no network, no such
    repository, split or file, unreadable data) is a ValueError carrying the library's message."""
    import datasets

    src = parse_hub_uri(uri)
    try:
        return datasets.load_dataset(src.repo, src.config, split=src.split, revision=src.revision,
                                     data_files=list(src.data_files) if src.data_files else None)
    except Exception as e:  # noqa: BLE001 - hub, network and format errors alike: the library's text says which
        raise ValueError(f"cannot load {uri}: {type(e).__name__}: {e}") from e


def hub_fingerprint(uri: str) -> str:
    """A content hash of the loaded split: the bytes of its cached Arrow files, or of its records when it has
    none or is a slice (``test[:20]``: its cache files hold the whole split, so their bytes would not tell
    the slice from the split). The same data gives the same hash whichever revision names it."""
    ds = load_hub_split(uri)
    h = hashlib.sha256()
    sliced = "[" in parse_hub_uri(uri).split
    for entry in [] if sliced else ds.cache_files:
        with open(entry["filename"], "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    if sliced or not ds.cache_files:
        for rec in ds:
            h.update(json.dumps(rec, sort_keys=True, default=str).encode())
    return "hf@" + h.hexdigest()[:16]
