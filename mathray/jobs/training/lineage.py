"""What a training run's result depends on: its result-affecting config and the fingerprints of the model and
data it reads (``runtime.lineage``). Exports carry it in their completion mark, so the pipeline can tell a
finished run of this exact work from a stale one."""
from __future__ import annotations

from mathray.config import result_config
from mathray.runtime.lineage import Lineage, shard_set_fingerprint

# where things live, and how the run is logged or scheduled, do not change the weights it produces
_NOT_RESULTS = ("model", "output", "storage", "name", "step_log", "log_every", "controller_poll_s",
                "checkpoint_every", "keep_checkpoints", "max_failures", "fault", "cpus_per_worker")
_DATA_URIS = ("ssft", "samples", "step_labels")


def training_inputs(cfg) -> dict[str, str]:
    from mathray.runtime.models import model_fingerprint
    from mathray.runtime.storage import ShardStore

    inputs = {"model": model_fingerprint(cfg.model)}
    for kind in _DATA_URIS:
        for i, uri in enumerate(getattr(cfg.data, kind)):
            inputs[f"data.{kind}[{i}]"] = shard_set_fingerprint(ShardStore(uri))
    return inputs


def training_lineage(cfg) -> Lineage:
    config = {k: v for k, v in result_config(cfg).items() if k not in _NOT_RESULTS}
    config["data"] = {k: v for k, v in config.get("data", {}).items() if k not in _DATA_URIS}
    return Lineage(job="train", config=config, inputs=training_inputs(cfg))
