"""``mathray``: list the jobs, their configs, and print a job's default config; check a machine before a long
job; publish a model directory so that jobs load it.

    mathray                 # jobs and the config files for each
    mathray config sample   # the full default config of a job, as YAML
    mathray plan RECIPE     # parameters, per-GPU memory, fit per GPU type and GPU-hours of a training recipe
    mathray doctor [--root URI] [--model URI]   # packages, vLLM build, GPUs, storage, credentials, model
    mathray publish-model SRC [DEST]            # mark a model directory (local or s3://) as a complete export
"""
from __future__ import annotations

import argparse
import ast
import importlib
import sys
from pathlib import Path

import yaml

from mathray.config import load_config
from mathray.doctor import main as run_doctor
from mathray.jobs.training import plan as training_plan
from mathray.pipeline import PipelineConfig, build_graph
from mathray.runtime.models import mark_digest, publish_model_dir

# job name -> (entry module, "module:ConfigClass"); the entry modules are thin wrappers in rayjobs/.
JOBS: dict[str, tuple[str, str]] = {
    "ingest": ("rayjobs.ingest", "mathray.jobs.ingest:IngestConfig"),
    "sample": ("rayjobs.sample", "mathray.jobs.sampling:SampleJobConfig"),
    "train": ("rayjobs.train", "mathray.jobs.training.config:TrainJobConfig"),
    "shepherd": ("rayjobs.shepherd", "mathray.jobs.labeling:ShepherdConfig"),
    "score": ("rayjobs.score", "mathray.jobs.scoring:ScoreConfig"),
    "evaluate": ("rayjobs.evaluate", "mathray.jobs.evaluation:EvaluateConfig"),
    "evaluate_steps": ("rayjobs.evaluate_steps", "mathray.jobs.step_evaluation:StepEvalConfig"),
    "pipeline": ("rayjobs.pipeline", "mathray.pipeline:PipelineConfig"),
}

CONFIG_DIR = Path(__file__).resolve().parent.parent / "rayjobs" / "configs"
CONFIG_GLOBS = {"pipeline": ("pipeline*.yaml", "demo*.yaml"), "evaluate": ("evaluate.yaml",)}   # default: "<job>*.yaml"


def config_files(job: str) -> list[Path]:
    return sorted(f for pattern in CONFIG_GLOBS.get(job, (f"{job}*.yaml",)) for f in CONFIG_DIR.glob(pattern))


def plan_recipe(recipe: str, overrides: list[str], model_config: str | None = None) -> int:
    """``mathray plan``: a train recipe, or every training stage of a pipeline recipe (no top-level ``task``)."""
    text = yaml.safe_load(Path(recipe).read_text()) or {}
    if not (isinstance(text, dict) and "task" not in text):
        return training_plan.main(recipe, overrides, model_config)
    for node in build_graph(load_config(PipelineConfig, recipe, overrides)):
        if node.kind == "train":
            title = f"recipe {recipe}, stage {node.name} (task {node.cfg.task})"
            training_plan.print_plan(node.cfg, title, Path(recipe), model_config)
            print()
    return 0


def _config_class(job: str):
    module, _, name = JOBS[job][1].partition(":")
    return getattr(importlib.import_module(module), name)


def _doc_line(job: str) -> str:
    spec = importlib.util.find_spec(JOBS[job][0])
    if spec is None or spec.origin is None:
        return ""
    doc = ast.get_docstring(ast.parse(Path(spec.origin).read_text())) or ""
    return doc.strip().splitlines()[0] if doc else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mathray", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd")
    sub.add_parser("jobs", help="list jobs and their config files (the default)")
    show = sub.add_parser("config", help="print a job's default config as YAML")
    show.add_argument("job", choices=sorted(JOBS))
    plan = sub.add_parser("plan", help="size a training recipe (meta-device model, no GPU, no weights)")
    plan.add_argument("recipe", help="a train config, e.g. rayjobs/configs/recipes/math-qwen2.5-7b/ssft.yaml")
    plan.add_argument("--model-config", help="the model's config.json (default: the recipe's plan.model_config_json)")
    plan.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    doctor = sub.add_parser("doctor", help="check what a job needs: packages, vLLM build, GPUs, storage, "
                                           "credentials, model")
    doctor.add_argument("--root", help="a run root to check for writing (local path or s3://bucket/prefix)")
    doctor.add_argument("--model", help="a model a job will load (local directory, s3:// export or hub id)")
    publish = sub.add_parser("publish-model", help="publish a model directory (local, or uploaded by hand to "
                                                   "s3://) with the completion mark jobs require")
    publish.add_argument("src", help="the model directory: a local path, or an s3:// prefix it was uploaded to")
    publish.add_argument("dest", nargs="?", help="where to upload a local SRC (s3:// or a path); omitted: SRC is "
                                                 "marked where it is")
    args = parser.parse_args(argv)
    if args.cmd == "doctor":
        return run_doctor(args.root, args.model)
    if args.cmd == "publish-model":
        return publish_model(args.src, args.dest)
    if args.cmd == "plan":
        return plan_recipe(args.recipe, args.overrides, args.model_config)
    if args.cmd == "config":
        print(yaml.safe_dump(_config_class(args.job)().model_dump(mode="json"), sort_keys=False), end="")
        return 0
    for job, (module, _) in JOBS.items():
        print(f"{job:10s} python -m {module} --config FILE [--set key=value ...]")
        if line := _doc_line(job):
            print(f"{'':10s} {line}")
        for cfg in config_files(job):
            print(f"{'':10s}   rayjobs/configs/{cfg.name}")
    return 0


def publish_model(src: str, dest: str | None) -> int:
    """``mathray publish-model``: exit 0 with where the export is, 2 with the reason it was refused."""
    try:
        uri, mark = publish_model_dir(src, dest)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    size = sum(f["size"] for f in mark["files"].values())
    print(f"published {uri}: {len(mark['files'])} files, {size / 2**20:.1f} MiB, digest {mark_digest(mark)}")
    print(f"jobs load it as: model: {uri}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
