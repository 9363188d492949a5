"""The whole method as one job: a graph of mathray's jobs under one run root, resumable stage by stage.

    python -m rayjobs.pipeline --config rayjobs/configs/demo.yaml [--set root=s3://bucket/run1]

The graph (Liu et al. 2023; Lightman et al. 2023; Math-Shepherd), each node one job whose inputs and outputs
are derived from ``root``::

    base_model -> ssft ------------------------------> sample_test (N + greedy) ------> score -> evaluate
    problems_train -^  \\-> sample_train -> shepherd -> prm ---------------------------^   ^
    problems_label ----/         \\-> verifier_<loss> (xent, margin) ----------------------/
                                  \\-> orm ------------------------------------------------/
                                  \\-> sequential, control -> sample_test_<generator> -----> (evaluate)
    problems_test -> (every test sampling stage)

A node is skipped when its output is complete with the lineage this config gives it (``runtime.lineage``:
result-affecting config and the fingerprints of its inputs), so a re-run recomputes nothing, and changing
one stage's config re-runs that stage and everything downstream of it, nothing else (an output of another
lineage is overwritten; a partial output of the same lineage is resumed shard by shard). Independent nodes
run at the same time up to ``max_parallel`` (each is a Ray job on the same cluster). Models travel through
storage (``runtime.models``), so ``root`` can be ``s3://`` on a cluster with no shared disk.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Literal

from mathray.config import StrictModel, code_version, knob
from mathray.jobs.evaluation import EvaluateConfig, GeneratorPools
from mathray.jobs.ingest import IngestConfig
from mathray.jobs.labeling import ShepherdConfig
from mathray.jobs.sampling import SampleJobConfig
from mathray.jobs.scoring import ScoreConfig
from mathray.jobs.tiny_model import TinyModelConfig
from mathray.jobs.training.config import TrainJobConfig
from mathray.runtime.entry import JobFailed
from mathray.runtime.lineage import Lineage
from mathray.runtime.storage import join


class ModelSection(StrictModel):
    base: str | None = None                    # base model URI or hub id; None: build ``tiny``
    tiny: TinyModelConfig = TinyModelConfig()  # the embedded demo's model, built locally and published
    tiny_seed: int = 0


class DataSection(StrictModel):
    train: IngestConfig = IngestConfig()           # SSFT problems (reference solutions)
    test: IngestConfig = IngestConfig()            # evaluation problems
    label: IngestConfig | None = None              # problems sampled for verifier/PRM/ORM data; None: train


class VerifierSection(StrictModel):
    losses: list[Literal["xent", "margin"]] = ["xent"]   # one verifier per loss; the first one is the report's
    train: TrainJobConfig = TrainJobConfig(task="verifier")


class SequentialSection(StrictModel):
    enabled: bool = True
    train: TrainJobConfig = TrainJobConfig(task="sequential")   # from the SSFT model; control derived


class PipelineConfig(StrictModel):
    root: str = knob("runs/default")          # run root: a local path or s3://bucket/prefix
    max_parallel: int = knob(1, ge=1)         # nodes run at the same time when their inputs are ready
    progress_every_s: float = knob(30.0, gt=0)  # stage table refresh while nodes run
    model: ModelSection = ModelSection()
    data: DataSection = DataSection()
    ssft: TrainJobConfig = TrainJobConfig(task="ssft")
    sample_train: SampleJobConfig = SampleJobConfig()
    shepherd: ShepherdConfig = ShepherdConfig()
    verifier: VerifierSection = VerifierSection()
    prm: TrainJobConfig = TrainJobConfig(task="prm")
    orm: TrainJobConfig | None = None          # Lightman et al.'s outcome reward model (task orm)
    sequential: SequentialSection = SequentialSection()
    sample_test: SampleJobConfig = SampleJobConfig()   # N samples; a greedy pass is derived
    score: ScoreConfig = ScoreConfig()
    evaluate: EvaluateConfig = EvaluateConfig()


# -- nodes ----------------------------------------------------------------------------------------------
@dataclass
class Node:
    """One job of the graph: its config with derived paths, and how to fingerprint, check and run it."""
    name: str
    kind: str                     # model | ingest | train | sample | shepherd | score | evaluate
    deps: list[str]
    cfg: object
    output: str                   # where the node's result lives (shard set, model export, report)


def _paths(root: str) -> dict[str, str]:
    j = lambda *p: join(root, *p)  # noqa: E731
    return {"base": j("models", "base"), "problems": j("problems"), "samples": j("samples"),
            "labels": j("step_labels"), "train": j("train"), "scores": j("scores"), "report": j("report")}


def _final(train_output: str) -> str:
    return join(train_output, "final")


def build_graph(cfg: PipelineConfig) -> list[Node]:
    """Every node of the method with its inputs and outputs derived from ``cfg.root``, in a topological
    order."""
    from mathray.runtime.storage import absolute

    p = _paths(absolute(cfg.root))   # Ray workers do not run in the driver's working directory
    nodes: list[Node] = []

    def add(name, kind, deps, job_cfg, output):
        nodes.append(Node(name, kind, deps, job_cfg, output))
        return output

    base = cfg.model.base or add("base_model", "model", [], cfg.model, p["base"])
    base_deps = [] if cfg.model.base else ["base_model"]

    def ingest(name, section: IngestConfig, split: str):
        out = join(p["problems"], split)
        return add(name, "ingest", [], section.model_copy(update={
            "output": out, "step_labels_output": join(p["problems"], f"{split}_step_labels")}), out)

    train_problems = ingest("problems_train", cfg.data.train, "train")
    test_problems = ingest("problems_test", cfg.data.test, "test")
    label_problems, label_dep = train_problems, "problems_train"
    if cfg.data.label is not None:
        label_problems, label_dep = ingest("problems_label", cfg.data.label, "label"), "problems_label"

    def train(name, section: TrainJobConfig, deps, model, **data):
        out = join(p["train"], name)
        data_cfg = section.data.model_copy(update=data)
        add(name, "train", deps, section.model_copy(update={"model": model, "output": out, "data": data_cfg}), out)
        return _final(out)

    ssft = train("ssft", cfg.ssft, ["problems_train", *base_deps], base, ssft=[train_problems])

    def sample(name, section: SampleJobConfig, deps, problems, model, **sampling):
        parts = name.split("_")              # sample_test_sequential -> test_sequential, greedy_test -> test_greedy
        out = join(p["samples"], "_".join(parts[1:] + (["greedy"] if parts[0] == "greedy" else [])))
        engine = section.engine.model_copy(update={"model": model})
        add(name, "sample", deps, section.model_copy(update={
            "input": problems, "output": out, "engine": engine,
            "sampling": section.sampling.model_copy(update=sampling)}), out)
        return out

    samples_train = sample("sample_train", cfg.sample_train, [label_dep, "ssft"], label_problems, ssft)
    labels_out = join(p["labels"], "shepherd")
    add("shepherd", "shepherd", ["sample_train", "ssft"], cfg.shepherd.model_copy(update={
        "input": samples_train, "output": labels_out,
        "engine": cfg.shepherd.engine.model_copy(update={"model": ssft})}), labels_out)

    verifiers = {}
    for loss in cfg.verifier.losses:
        section = cfg.verifier.train.model_copy(update={
            "verifier": cfg.verifier.train.verifier.model_copy(update={"loss": loss})})
        verifiers[loss] = train(f"verifier_{loss}", section, ["sample_train", "ssft"], ssft, samples=[samples_train])
    prm = train("prm", cfg.prm, ["shepherd", "ssft"], ssft, step_labels=[labels_out])
    orm = train("orm", cfg.orm, ["sample_train", "ssft"], ssft, samples=[samples_train]) if cfg.orm else None

    generators = {"ssft": (ssft, "ssft")}
    if cfg.sequential.enabled:
        seq = cfg.sequential.train
        generators["sequential"] = (train("sequential", seq, ["problems_train", "sample_train", "ssft"], ssft,
                                          ssft=[train_problems], samples=[samples_train]), "sequential")
        control = seq.model_copy(update={"sequential": seq.sequential.model_copy(update={"control": True})})
        generators["control"] = (train("control", control, ["problems_train", "ssft"], ssft,
                                       ssft=[train_problems]), "control")
    test_pools = {}
    for gen, (model, dep) in generators.items():
        suffix = "" if gen == "ssft" else f"_{gen}"
        test_pools[gen] = (
            sample(f"sample_test{suffix}", cfg.sample_test, ["problems_test", dep], test_problems, model),
            sample(f"greedy_test{suffix}", cfg.sample_test, ["problems_test", dep], test_problems, model,
                   greedy=True, n=1))
    samples_test, greedy_test = test_pools["ssft"]
    extra = {name.capitalize(): GeneratorPools(samples=s, greedy_samples=g)
             for name, (s, g) in test_pools.items() if name != "ssft"}
    for i, (loss, verifier) in enumerate(verifiers.items()):
        scores_out = join(p["scores"], f"test_{loss}")
        scorer = cfg.score.scorer.model_copy(update={"verifier": verifier, "prm": prm})
        deps = ["sample_test", f"verifier_{loss}", "prm"]
        if orm and "orm" in type(scorer).model_fields:
            scorer = scorer.model_copy(update={"orm": orm})
            deps.append("orm")
        add(f"score_{loss}", "score", deps, cfg.score.model_copy(update={
            "input": samples_test, "output": scores_out, "scorer": scorer}), scores_out)
        report = p["report"] if i == 0 else f"{p['report']}_{loss}"
        eval_deps = [f"score_{loss}", "greedy_test", *(f"{k}_test_{g}" for g in generators if g != "ssft"
                                                     for k in ("sample", "greedy"))]
        add("evaluate" if i == 0 else f"evaluate_{loss}", "evaluate", eval_deps, cfg.evaluate.model_copy(update={
            "samples": samples_test, "scores": scores_out, "greedy_samples": greedy_test, "output": report,
            "generators": extra}), report)
    return nodes


# -- what each kind of node is ----------------------------------------------------------------------------
def node_lineage(node: Node) -> Lineage:
    """The lineage the node's output must have to count as done (its inputs must be complete)."""
    from mathray.jobs.evaluation import evaluation_lineage
    from mathray.jobs.ingest import ingest_lineage
    from mathray.jobs.labeling import SHEPHERD
    from mathray.jobs.sampling import SAMPLE
    from mathray.jobs.scoring import SCORE
    from mathray.jobs.training.lineage import training_lineage
    from mathray.runtime.spec import stage_lineage

    kind, cfg = node.kind, node.cfg
    if kind == "model":
        return Lineage.of("tiny_model", cfg)
    if kind == "ingest":
        return ingest_lineage(cfg)
    if kind == "train":
        return training_lineage(cfg)
    if kind == "evaluate":
        return evaluation_lineage(cfg)
    return stage_lineage({"sample": SAMPLE, "shepherd": SHEPHERD, "score": SCORE}[kind], cfg)


def output_lineage(node: Node) -> str | None:
    """The lineage hash the node's existing output was completed with, None when it is not complete."""
    import json

    from mathray.runtime import storage
    from mathray.runtime.models import read_mark
    from mathray.runtime.storage import ShardStore

    if node.kind in ("model", "train"):
        mark = read_mark(node.output if node.kind == "model" else _final(node.output))
        return ((mark or {}).get("info", {}).get("lineage") or {}).get("hash")
    if node.kind == "evaluate":
        done = join(node.output, "_COMPLETE.json")
        return json.loads(storage.read_bytes(done))["lineage"]["hash"] if storage.exists(done) else None
    try:
        manifest = ShardStore(node.output).read_manifest()
    except storage.CorruptShard:
        return None   # an unreadable manifest: the node runs again and rewrites it
    return manifest["lineage"]["hash"] if manifest and manifest.get("complete") and manifest.get("lineage") \
        else None


def stale_output(node: Node, lineage: Lineage) -> bool:
    """True when the output holds work of another lineage (the node then overwrites it)."""
    from mathray.runtime.storage import ShardStore

    if node.kind in ("ingest", "sample", "shepherd", "score"):
        return any(c.lineage != lineage.hash for c in ShardStore(node.output).committed().values())
    return False


def run_node(node: Node, overwrite: bool):
    """Run the node's job; returns its summary (``lines()``) and a short progress figure."""
    cfg = node.cfg
    if node.kind == "model":
        return build_base_model(cfg, node.output, node_lineage(node)), "built"
    if node.kind in ("ingest", "sample", "shepherd", "score") and overwrite:
        cfg = cfg.model_copy(update={"resume": "overwrite"})
    if node.kind == "ingest":
        from mathray.jobs.ingest import run_ingest

        s = run_ingest(cfg)
        return s, f"{s.problems} problems"
    if node.kind == "train":
        from mathray.jobs.training.job import run_training

        r = run_training(cfg)
        return r, f"{r.metrics.get('global_step', r.metrics.get('step', '?'))} steps"
    if node.kind == "evaluate":
        from mathray.jobs.evaluation import run_evaluate

        return run_evaluate(cfg), "report"
    from mathray.jobs.labeling import run_shepherd
    from mathray.jobs.sampling import run_sampling
    from mathray.jobs.scoring import run_score

    s = {"sample": run_sampling, "shepherd": run_shepherd, "score": run_score}[node.kind](cfg)
    stage = getattr(s, "stage", s)
    return s, f"{stage.totals.get('rows', stage.rows_written)} rows"


@dataclass
class BuiltModel:
    uri: str

    def lines(self) -> list[str]:
        return [f"[base_model] tiny model published at {self.uri}"]


def build_base_model(section: ModelSection, uri: str, lineage: Lineage) -> BuiltModel:
    from mathray.jobs.tiny_model import build_tiny_model
    from mathray.runtime.models import publish_model, staging_dir

    with staging_dir() as tmp:
        build_tiny_model(tmp, section.tiny, seed=section.tiny_seed)
        publish_model(tmp, uri, {"job": "tiny_model", "lineage": lineage.record(), "code_version": code_version()})
    return BuiltModel(uri)


# -- the executor ---------------------------------------------------------------------------------------
@dataclass
class NodeState:
    state: str = "waiting"        # waiting | running | done | skipped | failed | blocked
    detail: str = ""
    started: float | None = None
    ended: float | None = None
    error: BaseException | None = None

    def elapsed(self) -> str:
        if self.started is None:
            return "-"
        return f"{(self.ended or time.time()) - self.started:.0f}s"


@dataclass
class PipelineSummary:
    states: dict[str, NodeState]
    reports: dict[str, str] = field(default_factory=dict)   # evaluate node -> report URI
    summaries: dict[str, object] = field(default_factory=dict)
    wall_s: float = 0.0

    def lines(self) -> list[str]:
        import json

        from mathray.jobs.report import evaluator_markdown, findings_markdown, markdown_table
        from mathray.runtime import storage

        out = stage_table(self.states)
        for name, uri in self.reports.items():
            path = join(uri, "report.json")
            if storage.exists(path):    # also when the node was skipped: the report of the earlier run
                report = json.loads(storage.read_bytes(path))
                out += [f"[pipeline] {name}: {report['num_problems']} problems, pool of up to "
                        f"{report['pool_size']} samples ({join(uri, 'report.md')})", markdown_table(report)]
        return out + [f"[pipeline] elapsed {self.wall_s:.0f}s"]


def stage_table(states: dict[str, NodeState], live: dict[str, str] | None = None) -> list[str]:
    """The stage table: a finished stage shows its result, a running one its ``live`` progress."""
    live = live or {}
    rows = [("stage", "state", "progress", "elapsed")] + [
        (n, s.state, (live.get(n) if s.state == "running" else None) or s.detail or "-", s.elapsed())
        for n, s in states.items()]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return ["[pipeline] " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]


def live_progress(node: Node, started: float) -> str | None:
    """How far a running node is: rows committed of a data stage (its live summary in this process), the
    global step of a training run (its progress record, one small read); None for other kinds."""
    if node.kind in DATA_STAGES:
        from mathray.runtime.stage import running_stage

        summary = running_stage(node.output)
        return summary.progress() if summary else None
    if node.kind == "train":
        from mathray.jobs.training.progress import progress_text, read_progress
        from mathray.jobs.training.tasks import phases

        return progress_text(read_progress(node.output, since=started), sum(p.steps for p in phases(node.cfg)))
    return None


# Ray Data stages: each holds its actor pool's CPUs while its read tasks wait for a CPU of their own, so two of
# them side by side on a small node can hold every CPU and wait for each other forever. They run one at a
# time; a training stage may run beside one (it finishes on its own).
DATA_STAGES = ("sample", "shepherd", "score")


class PipelineFailed(JobFailed):
    """A stage failed; the others that did not depend on it ran to the end."""


def run_pipeline(cfg: PipelineConfig, echo: Callable[[str], None] = lambda s: print(s, flush=True),
                 only: list[str] | None = None) -> PipelineSummary:
    """Run every node not done (Ray must be up: ``runtime.entry.init_ray``); ``only`` limits the run to
    these nodes and what they depend on. The run root's writer lease is held throughout (a second pipeline
    on the same root refuses), besides each stage's lease on its own output."""
    from mathray.runtime.lease import OutputLease
    from mathray.runtime.storage import absolute

    with OutputLease(absolute(cfg.root), "pipeline"):
        return _run_graph(cfg, echo, only)


def _run_graph(cfg: PipelineConfig, echo: Callable[[str], None], only: list[str] | None) -> PipelineSummary:
    nodes = {n.name: n for n in build_graph(cfg)}
    if only:
        keep, todo = set(), list(only)
        while todo:
            name = todo.pop()
            if name not in nodes:
                raise PipelineFailed(f"unknown stage {name!r}; stages: {', '.join(nodes)}")
            if name not in keep:
                keep.add(name)
                todo += nodes[name].deps
        nodes = {k: v for k, v in nodes.items() if k in keep}
    states = {name: NodeState() for name in nodes}
    summary = PipelineSummary(states, {n.name: n.output for n in nodes.values() if n.kind == "evaluate"})
    lock, changed = threading.Lock(), threading.Event()
    t0 = time.time()

    def show():
        live = {n: text for n, st in list(states.items()) if st.state == "running" and st.started is not None
                and (text := live_progress(nodes[n], st.started))}
        with lock:
            echo("\n".join(stage_table(states, live)))

    def work(node: Node) -> None:
        st = states[node.name]
        try:
            lineage = node_lineage(node)
            if output_lineage(node) == lineage.hash:
                st.state, st.detail = "skipped", "done before"
                echo(f"[pipeline] {node.name}: skipped (complete with lineage {lineage.hash})")
                return
            overwrite = stale_output(node, lineage)
            st.state, st.started = "running", time.time()
            echo(f"[pipeline] {node.name}: running" + (" (config or inputs changed: overwriting its output)"
                                                      if overwrite else ""))
            result, st.detail = run_node(node, overwrite)
            summary.summaries[node.name] = result
            if hasattr(result, "lines") and node.kind != "evaluate":
                echo("\n".join(result.lines()))
            st.state = "done"
            echo(f"[pipeline] {node.name}: done ({st.detail}, {time.time() - st.started:.0f}s)")
        except BaseException as e:  # noqa: BLE001 - reported in the table, raised after the others stop
            first_line = str(e).splitlines()[0][:100] if str(e) else ""
            st.state, st.detail, st.error = "failed", f"{type(e).__name__}: {first_line}", e
            echo(f"[pipeline] {node.name}: FAILED: {type(e).__name__}: {e}")
        finally:
            st.ended = time.time()
            changed.set()

    running: dict[str, threading.Thread] = {}
    show()
    last_show = time.time()
    while True:
        with lock:
            for name, st in states.items():
                if st.state == "waiting" and any(states[d].state in ("failed", "blocked") for d in nodes[name].deps):
                    st.state = "blocked"
            ready = [n for n, st in states.items() if st.state == "waiting"
                     and all(states[d].state in ("done", "skipped") for d in nodes[n].deps)]
        for name in [n for n, t in running.items() if states[n].ended is not None]:
            running.pop(name).join()
        data_running = any(nodes[n].kind in DATA_STAGES for n in running)
        for name in ready:
            if len(running) >= cfg.max_parallel:
                break
            if nodes[name].kind in DATA_STAGES:
                if data_running:
                    continue
                data_running = True
            states[name].state = "starting"
            thread = threading.Thread(target=work, args=(nodes[name],), name=f"stage-{name}", daemon=True)
            running[name] = thread
            thread.start()
        if not running and not ready:
            break
        changed.wait(timeout=cfg.progress_every_s)
        changed.clear()
        if time.time() - last_show >= cfg.progress_every_s:
            show()
            last_show = time.time()
    summary.wall_s = time.time() - t0
    failed = {n: st for n, st in states.items() if st.state == "failed"}
    if failed:
        show()
        first = next(iter(failed.values()))
        raise PipelineFailed(f"stages failed: {', '.join(failed)}; first error: "
                             f"{type(first.error).__name__}: {first.error}") from first.error
    return summary
