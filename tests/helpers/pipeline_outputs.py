"""What two runs of the same pipeline must agree on: per node, its committed rows (digests by key), its model
export's files, or its report, with what legitimately differs between runs (the run root, model ids' digests,
the last bits of floats computed in other batches) written out."""
from __future__ import annotations

import difflib
import re

from helpers.faults import row_digests
from mathray.pipeline import PipelineConfig, build_graph
from mathray.runtime.models import EXPORT_INFO, read_mark
from mathray.runtime.storage import join, read_bytes

ROW_KEYS = {"ingest": ("problem_id",), "sample": ("problem_id", "sample_id"), "shepherd": ("problem_id", "sample_id"),
            "exact_labels": ("problem_id", "sample_id"), "score": ("problem_id", "sample_id")}
# columns that legitimately differ between runs: the labeller's per-batch engine counters and its model's path
# and the model ids of generators and scorers: "<name>@<digest of the export's mark>", whose export info holds
# the training run's times (the exports' files are compared at the model nodes)
DROP = {"shepherd": ("metadata",), "sample": ("generator",), "score": ("scorer",)}
MODEL_ID = re.compile(r"@[0-9a-f]{12}\b")
# the report's config hashes and lineage hash the run's config, which holds its root
RUN_HASH = re.compile(r"((?:config hash|lineage)\W+)[0-9a-f]{16}\b")
# the code version is the checkout's commit, or a hash of the sources where there is no .git (a job sent with
# ``ray job submit --working-dir``)
CODE_VERSION = re.compile(r"(code version\W+)(?:git:[0-9a-f]{12}(?:-dirty)?|[0-9A-Za-z.]+\+src\.[0-9a-f]{12})")
# log-probabilities and scores computed in other batches (a replica restarted mid-stage) differ in the last bits
FLOAT_DIGITS = 6


def pipeline_outputs(cfg: PipelineConfig) -> dict[str, object]:
    """Per node: its rows' digests by key (shard sets), its export's files with their sha256 but the export
    info (which holds the run's metrics), or its report (JSON and markdown) with the run root and the model
    ids' digests replaced."""
    out = {}
    root = cfg.root.rstrip("/")
    for node in build_graph(cfg):
        if node.kind in ROW_KEYS:
            out[node.name] = row_digests(node.output, ROW_KEYS[node.kind], drop=DROP.get(node.kind, ()),
                                         float_digits=FLOAT_DIGITS, root=root)
        elif node.kind in ("model", "train"):
            mark = read_mark(node.output if node.kind == "model" else join(node.output, "final"))
            out[node.name] = {f: v["sha256"] for f, v in mark["files"].items() if f != EXPORT_INFO}
        else:
            out[node.name] = {name: report_text(join(node.output, name), root) for name in ("report.json", "report.md")}
    return out


def report_text(uri: str, root: str) -> str:
    """A report file with the run root written as <root>, each model id's digest as <id>, its config and
    lineage hashes as <hash> and its code version as <code>."""
    text = MODEL_ID.sub("@<id>", read_bytes(uri).decode().replace(root, "<root>"))
    return CODE_VERSION.sub(r"\1<code>", RUN_HASH.sub(r"\1<hash>", text))


def report_diff(got: dict, reference: dict) -> str:
    """The lines that differ between two runs' report files (the reference's first)."""
    lines = []
    for node, files in reference.items():
        if isinstance(files, dict) and "report.json" in files and got.get(node) != files:
            for name in files:
                lines += difflib.unified_diff(files[name].splitlines(), got[node][name].splitlines(),
                                              f"reference/{name}", f"got/{name}", n=1, lineterm="")
    return "\n".join(lines[:80])
