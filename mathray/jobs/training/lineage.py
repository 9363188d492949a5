"""What a training run's result depends on: its result-affecting config (``knob`` fields left out: paths,
logging, checkpoint cadence, failure policy) and the fingerprints of the model and data it reads
(``runtime.lineage``). It names the run (resume) and rides in every export's completion mark, so the
pipeline can tell a finished run of this exact work from a stale one."""
from __future__ import annotations

from mathray.runtime.lineage import Lineage, shard_set_fingerprint

_DATA_URIS = ("ssft", "samples", "step_labels")
# objective settings only some tasks read: another task's section cannot change this task's result, so a
# change there (or a new field in it) leaves this task's finished runs valid
_SECTIONS_READ = {"ssft": (), "verifier": ("verifier",), "prm": ("prm",), "orm": (),
                  "sequential": ("verifier", "sequential")}
# the SSFT control of a sequential run reads only its step plan (SSFT for stage2 + stage3 steps); it trains on
# the SSFT data alone, so neither the L_ctr settings nor the generator's samples can change it
_CONTROL_READS = {"sequential": ("stage_steps", "stage_lr", "control"), "data": ("ssft",)}


def _is_control(cfg) -> bool:
    return cfg.task == "sequential" and cfg.sequential.control


def training_inputs(cfg) -> dict[str, str]:
    from mathray.runtime.models import model_fingerprint
    from mathray.runtime.storage import ShardStore

    inputs = {"model": model_fingerprint(cfg.model)}
    for kind in _CONTROL_READS["data"] if _is_control(cfg) else _DATA_URIS:
        for i, uri in enumerate(getattr(cfg.data, kind)):
            inputs[f"data.{kind}[{i}]"] = shard_set_fingerprint(ShardStore(uri, verify=cfg.verify_inputs))
    return inputs


def training_lineage(cfg) -> Lineage:
    lineage = Lineage.of("train", cfg, training_inputs(cfg))
    read = ("sequential",) if _is_control(cfg) else _SECTIONS_READ[cfg.task]
    for section in set().union(*_SECTIONS_READ.values()) - set(read):
        lineage.config.pop(section, None)
    if _is_control(cfg):
        plan = lineage.config.get("sequential", {})
        lineage.config["sequential"] = {k: v for k, v in plan.items() if k in _CONTROL_READS["sequential"]}
    return lineage
