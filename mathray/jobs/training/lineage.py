"""What a training run's result depends on: its result-affecting config (``knob`` fields left out: paths,
logging, checkpoint cadence, failure policy) and the fingerprints of the model and data it reads
(``runtime.lineage``). It names the run (resume) and rides in every export's completion mark, so the
pipeline can tell a finished run of this exact work from a stale one."""
from __future__ import annotations

from mathray.runtime.lineage import Lineage, shard_set_fingerprint

# What each kind of run reads: objective sections (None: the whole section, else the fields it reads) and data
# sets. Nothing else in its config or data can change its result, so a change there (or a new field in a
# section it does not read) leaves its finished runs valid.
_READS: dict[str, tuple[dict[str, tuple[str, ...] | None], tuple[str, ...]]] = {
    "ssft": ({}, ("ssft",)),
    "verifier": ({"verifier": None}, ("samples",)),
    "prm": ({"prm": None}, ("step_labels",)),
    "orm": ({}, ("samples",)),
    "sequential": ({"verifier": None, "sequential": None}, ("ssft", "samples")),
    # the SSFT control of a sequential run: its step plan (SSFT for stage2 + stage3 steps) on the SSFT data
    "control": ({"sequential": ("stage_steps", "stage_lr", "control")}, ("ssft",)),
}
_SECTIONS = sorted({section for sections, _ in _READS.values() for section in sections})


def _reader(cfg) -> str:
    return "control" if cfg.task == "sequential" and cfg.sequential.control else cfg.task


def training_inputs(cfg) -> dict[str, str]:
    from mathray.runtime.models import model_fingerprint
    from mathray.runtime.storage import ShardStore

    inputs = {"model": model_fingerprint(cfg.model)}
    for kind in _READS[_reader(cfg)][1]:
        for i, uri in enumerate(getattr(cfg.data, kind)):
            inputs[f"data.{kind}[{i}]"] = shard_set_fingerprint(ShardStore(uri, verify=cfg.verify_inputs))
    return inputs


def training_lineage(cfg) -> Lineage:
    lineage = Lineage.of("train", cfg, training_inputs(cfg))
    sections = _READS[_reader(cfg)][0]
    for section in _SECTIONS:
        if section not in sections:
            lineage.config.pop(section, None)
        elif sections[section] is not None:
            lineage.config[section] = {k: v for k, v in lineage.config.get(section, {}).items()
                                       if k in sections[section]}
    return lineage
