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
    sample_test -> exact_labels_test (toy task: true first errors) -> (evaluate: the PRM's first-error table)

A node is skipped when its output is complete with the lineage this config gives it (``runtime.lineage``:
result-affecting config and the fingerprints of its inputs), so a re-run recomputes nothing, and changing
one stage's config re-runs that stage and everything downstream of it, nothing else (an output of another
lineage is overwritten; a partial output of the same lineage is resumed shard by shard). Independent nodes
run at the same time up to ``max_parallel`` (each is a Ray job on the same cluster). Models travel through
storage (``runtime.models``), so ``root`` can be ``s3://`` on a cluster with no shared disk.
"""
from __future__ import annotations

import dataclasses
import json
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from functools import partial
from typing import Callable, Literal

from mathray.config import StrictModel, code_version, outside_lineage
from mathray.jobs.evaluation import EvaluateConfig, GeneratorPools, evaluation_lineage, run_evaluate
from mathray.jobs.exact_labels import EXACT_LABELS, ExactLabelConfig, run_exact_labels
from mathray.jobs.ingest import IngestConfig, ingest_lineage, run_ingest
from mathray.jobs.labeling import SHEPHERD, ShepherdConfig, run_shepherd
from mathray.jobs.report import evaluator_markdown, findings_markdown, markdown_table
from mathray.jobs.sampling import SAMPLE, SampleJobConfig, run_sampling
from mathray.jobs.scoring import SCORE, ScoreConfig, run_score
from mathray.jobs.tiny_model import TinyModelConfig, build_tiny_model
from mathray.jobs.training.config import TrainJobConfig
from mathray.jobs.training.job import run_training
from mathray.jobs.training.lineage import training_lineage
from mathray.jobs.training.progress import progress_text, read_progress
from mathray.jobs.training.tasks import phases
from mathray.runtime.errors import CorruptShard, JobFailed
from mathray.runtime.lease import OutputLease
from mathray.runtime.lineage import Lineage
from mathray.runtime.models import publish_model, read_mark, staging_dir
from mathray.runtime.spec import stage_lineage
from mathray.runtime.stage import running_stage
from mathray.runtime.storage import ShardStore, absolute, exists, join, read_bytes


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
    root: str = outside_lineage("runs/default")  # run root: a local path or s3://bucket/prefix
    max_parallel: int = outside_lineage(1, ge=1)  # nodes run at the same time when their inputs are ready
    progress_every_s: float = outside_lineage(30.0, gt=0)  # stage table refresh while nodes run
    model: ModelSection = ModelSection()
    data: DataSection = DataSection()
    ssft: TrainJobConfig = TrainJobConfig(task="ssft")
    sample_train: SampleJobConfig = SampleJobConfig()
    shepherd: ShepherdConfig = ShepherdConfig()
    verifier: VerifierSection = VerifierSection()
    prm: TrainJobConfig = TrainJobConfig(task="prm")
    orm: TrainJobConfig | None = None          # Lightman et al.'s outcome reward model (task orm)
    sequential: SequentialSection = SequentialSection()
    sample_test: SampleJobConfig = SampleJobConfig()   # N samples; the pipeline adds the greedy pass
    score: ScoreConfig = ScoreConfig()
    evaluate: EvaluateConfig = EvaluateConfig()


# -- nodes ----------------------------------------------------------------------------------------------
@dataclass
class Node:
    """One job of the graph: its config with derived paths, and how to fingerprint, check and run it."""
    name: str
    kind: str                     # a key of KINDS (model, ingest, train, sample, shepherd, score, ...)
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
    g = _GraphBuilder(cfg)
    base, base_deps = g.base_model()
    problems = g.problems()
    ssft = g.train("ssft", cfg.ssft, ["problems_train", *base_deps], base, ssft=[problems.train])
    samples_train, labels = g.label_data(problems, ssft)
    verifiers, prm, orm = g.reward_models(ssft, samples_train, labels)
    generators = g.generators(ssft, problems.train, samples_train)
    test_pools = g.test_sampling(generators, problems.test)
    exact = g.exact_labels(test_pools["ssft"], problems.test)
    g.scoring_and_evaluation(verifiers, prm, orm, test_pools, exact)
    return g.nodes


@dataclass
class _Problems:
    train: str          # SSFT problems
    test: str           # evaluation problems
    label: str          # problems sampled for the verifier/PRM/ORM data (``train`` unless given)
    label_node: str     # the node that writes ``label``


class _GraphBuilder:
    """Adds the method's nodes to ``nodes`` in a topological order: a method per group of stages, each
    returning where its results live (a trained model as its ``final`` export)."""

    def __init__(self, cfg: PipelineConfig):
        self.cfg = cfg
        self.p = _paths(absolute(cfg.root))   # Ray workers do not run in the driver's working directory
        self.nodes: list[Node] = []

    def add(self, name: str, kind: str, deps: list[str], job_cfg, output: str) -> str:
        self.nodes.append(Node(name, kind, deps, job_cfg, output))
        return output

    def ingest(self, name: str, section: IngestConfig, split: str) -> str:
        out = join(self.p["problems"], split)
        return self.add(name, "ingest", [], section.model_copy(update={
            "output": out, "step_labels_output": join(self.p["problems"], f"{split}_step_labels")}), out)

    def train(self, name: str, section: TrainJobConfig, deps: list[str], model: str, **data) -> str:
        out = join(self.p["train"], name)
        data_cfg = section.data.model_copy(update=data)
        self.add(name, "train", deps, section.model_copy(update={"model": model, "output": out, "data": data_cfg}),
                 out)
        return _final(out)

    def sample(self, name: str, section: SampleJobConfig, deps: list[str], problems: str, model: str,
               **sampling) -> str:
        out = join(self.p["samples"], name.removeprefix("sample_"))   # sample_test_sequential -> test_sequential
        engine = section.engine.model_copy(update={"model": model})
        return self.add(name, "sample", deps, section.model_copy(update={
            "input": problems, "output": out, "engine": engine,
            "sampling": section.sampling.model_copy(update=sampling)}), out)

    def base_model(self) -> tuple[str, list[str]]:
        """The base model (built when the config names none) and the nodes a job on it depends on."""
        if self.cfg.model.base:
            return self.cfg.model.base, []
        return self.add("base_model", "model", [], self.cfg.model, self.p["base"]), ["base_model"]

    def problems(self) -> _Problems:
        data = self.cfg.data
        train = self.ingest("problems_train", data.train, "train")
        test = self.ingest("problems_test", data.test, "test")
        if data.label is None:
            return _Problems(train, test, train, "problems_train")
        return _Problems(train, test, self.ingest("problems_label", data.label, "label"), "problems_label")

    def label_data(self, problems: _Problems, ssft: str) -> tuple[str, str]:
        """The SSFT model's samples of the labelling problems and their Math-Shepherd step labels."""
        cfg = self.cfg
        samples = self.sample("sample_train", cfg.sample_train, [problems.label_node, "ssft"], problems.label, ssft)
        labels = join(self.p["labels"], "shepherd")
        self.add("shepherd", "shepherd", ["sample_train", "ssft"], cfg.shepherd.model_copy(update={
            "input": samples, "output": labels,
            "engine": cfg.shepherd.engine.model_copy(update={"model": ssft})}), labels)
        return samples, labels

    def reward_models(self, ssft: str, samples: str, labels: str) -> tuple[dict[str, str], str, str | None]:
        """A verifier per loss, the PRM and (when configured) the ORM, all trained from the SSFT model."""
        cfg = self.cfg
        verifiers = {}
        for loss in cfg.verifier.losses:
            section = cfg.verifier.train.model_copy(update={
                "verifier": cfg.verifier.train.verifier.model_copy(update={"loss": loss})})
            verifiers[loss] = self.train(f"verifier_{loss}", section, ["sample_train", "ssft"], ssft, samples=[samples])
        prm = self.train("prm", cfg.prm, ["shepherd", "ssft"], ssft, step_labels=[labels])
        orm = self.train("orm", cfg.orm, ["sample_train", "ssft"], ssft, samples=[samples]) if cfg.orm else None
        return verifiers, prm, orm

    def generators(self, ssft: str, train_problems: str, samples: str) -> dict[str, tuple[str, str]]:
        """The generators evaluated: SSFT, and with ``sequential`` its sequential model and control;
        name -> (model, the node that trains it)."""
        generators = {"ssft": (ssft, "ssft")}
        if self.cfg.sequential.enabled:
            seq = self.cfg.sequential.train
            generators["sequential"] = (self.train("sequential", seq, ["problems_train", "sample_train", "ssft"],
                                                   ssft, ssft=[train_problems], samples=[samples]), "sequential")
            control = seq.model_copy(update={"sequential": seq.sequential.model_copy(update={"control": True})})
            generators["control"] = (self.train("control", control, ["problems_train", "ssft"], ssft,
                                                ssft=[train_problems]), "control")
        return generators

    def test_sampling(self, generators: dict[str, tuple[str, str]], test_problems: str) -> dict[str, str]:
        """Per generator its N samples of the test problems and, in the same engine pass, their greedy decodes."""
        return {gen: self.sample("sample_test" + ("" if gen == "ssft" else f"_{gen}"), self.cfg.sample_test,
                                 ["problems_test", dep], test_problems, model, greedy_pass=True)
                for gen, (model, dep) in generators.items()}

    def exact_labels(self, samples_test: str, test_problems: str) -> str | None:
        """On the toy task, the SSFT test samples' true first errors (for the report's first-error table)."""
        cfg = self.cfg
        if cfg.data.test.source.format != "toy":
            return None
        out = join(self.p["labels"], "test_exact")
        return self.add("exact_labels_test", "exact_labels", ["sample_test", "problems_test"], ExactLabelConfig(
            input=samples_test, output=out, problems=test_problems, toy=cfg.data.test.toy,
            step_format=cfg.score.scorer.step_format), out)

    def scoring_and_evaluation(self, verifiers: dict[str, str], prm: str, orm: str | None,
                               test_pools: dict[str, str], exact_labels: str | None) -> None:
        """Per verifier, the SSFT test samples scored and the evaluation report (the first verifier's is the
        run's report; the other generators' pools are evaluated beside it; with exact labels, the PRM's
        first-error table)."""
        cfg, p = self.cfg, self.p
        samples_test = test_pools["ssft"]
        extra = {name.capitalize(): GeneratorPools(samples=s) for name, s in test_pools.items() if name != "ssft"}
        for i, (loss, verifier) in enumerate(verifiers.items()):
            scores_out = join(p["scores"], f"test_{loss}")
            scorer = cfg.score.scorer.model_copy(update={"verifier": verifier, "prm": prm})
            deps = ["sample_test", f"verifier_{loss}", "prm"]
            if orm and "orm" in type(scorer).model_fields:
                scorer = scorer.model_copy(update={"orm": orm})
                deps.append("orm")
            self.add(f"score_{loss}", "score", deps, cfg.score.model_copy(update={
                "input": samples_test, "output": scores_out, "scorer": scorer}), scores_out)
            report = p["report"] if i == 0 else f"{p['report']}_{loss}"
            eval_deps = [f"score_{loss}", *(f"sample_test_{g}" for g in test_pools if g != "ssft")]
            eval_deps += ["exact_labels_test"] if exact_labels else []
            self.add("evaluate" if i == 0 else f"evaluate_{loss}", "evaluate", eval_deps,
                     cfg.evaluate.model_copy(update={"samples": samples_test, "scores": scores_out, "output": report,
                                                     "generators": extra, "step_labels": exact_labels}), report)


# -- what each kind of node is ----------------------------------------------------------------------------
@dataclass(frozen=True)
class NodeKind:
    """How the pipeline treats one kind of job: the lineage its output must have, where completion is read
    (a shard set's manifest, a model export's mark, a report's completion mark), and how it runs (returning
    the job's summary and a short progress figure). A Ray Data stage holds its actor pool's CPUs while its
    read tasks wait for a CPU of their own, so two of them side by side on a small node can hold every CPU
    and wait for each other forever: they run one at a time (a training stage may run beside one)."""
    lineage: Callable[[Node], Lineage]
    output: Literal["shards", "model", "report"]
    run: Callable[[Node], tuple[object, str]]
    ray_data: bool = False


def _stage_run(runner: Callable, node: Node) -> tuple[object, str]:
    s = runner(node.cfg)
    stage = getattr(s, "stage", s)
    return s, f"{stage.totals.get('rows', stage.rows_written)} rows"


def _ingest_run(node: Node) -> tuple[object, str]:
    s = run_ingest(node.cfg)
    return s, f"{s.problems} problems"


def _train_run(node: Node) -> tuple[object, str]:
    r = run_training(node.cfg)
    return r, f"{r.metrics.get('global_step', r.metrics.get('step', '?'))} steps"


KINDS: dict[str, NodeKind] = {
    "model": NodeKind(lambda n: Lineage.of("tiny_model", n.cfg), "model",
                      lambda n: (build_base_model(n.cfg, n.output, node_lineage(n)), "built")),
    "ingest": NodeKind(lambda n: ingest_lineage(n.cfg), "shards", _ingest_run, True),
    "train": NodeKind(lambda n: training_lineage(n.cfg), "model", _train_run),
    "sample": NodeKind(lambda n: stage_lineage(SAMPLE, n.cfg), "shards", partial(_stage_run, run_sampling), True),
    "shepherd": NodeKind(lambda n: stage_lineage(SHEPHERD, n.cfg), "shards", partial(_stage_run, run_shepherd),
                         True),
    "score": NodeKind(lambda n: stage_lineage(SCORE, n.cfg), "shards", partial(_stage_run, run_score), True),
    "exact_labels": NodeKind(lambda n: stage_lineage(EXACT_LABELS, n.cfg), "shards",
                             partial(_stage_run, run_exact_labels), True),
    "evaluate": NodeKind(lambda n: evaluation_lineage(n.cfg), "report", lambda n: (run_evaluate(n.cfg), "report")),
}


def node_lineage(node: Node) -> Lineage:
    """The lineage the node's output must have to count as done (its inputs must be complete)."""
    return KINDS[node.kind].lineage(node)


def output_lineage(node: Node) -> str | None:
    """The lineage hash the node's existing output was completed with, None when it is not complete."""
    output = KINDS[node.kind].output
    if output == "model":
        mark = read_mark(node.output if node.kind == "model" else _final(node.output))
        return ((mark or {}).get("info", {}).get("lineage") or {}).get("hash")
    if output == "report":
        done = join(node.output, "_COMPLETE.json")
        return json.loads(read_bytes(done))["lineage"]["hash"] if exists(done) else None
    try:
        manifest = ShardStore(node.output).read_manifest()
    except CorruptShard:
        return None   # an unreadable manifest: the node runs again and rewrites it
    return manifest["lineage"]["hash"] if manifest and manifest.get("complete") and manifest.get("lineage") \
        else None


def stale_output(node: Node, lineage: Lineage) -> bool:
    """True when the output holds work of another lineage (the node then overwrites it)."""
    if KINDS[node.kind].output == "shards":
        return any(c.lineage != lineage.hash for c in ShardStore(node.output).committed().values())
    return False


def run_node(node: Node, overwrite: bool):
    """Run the node's job; returns its summary (``lines()``) and a short progress figure."""
    if overwrite and KINDS[node.kind].output == "shards":
        node = dataclasses.replace(node, cfg=node.cfg.model_copy(update={"resume": "overwrite"}))
    return KINDS[node.kind].run(node)


@dataclass
class BuiltModel:
    uri: str

    def lines(self) -> list[str]:
        return [f"[base_model] tiny model published at {self.uri}"]


def build_base_model(section: ModelSection, uri: str, lineage: Lineage) -> BuiltModel:
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
        out = stage_table(self.states)
        for name, uri in self.reports.items():
            path = join(uri, "report.json")
            if exists(path):    # also when the node was skipped: the report of the earlier run
                report = json.loads(read_bytes(path))
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
    if KINDS[node.kind].ray_data:
        summary = running_stage(node.output)
        return summary.progress() if summary else None
    if node.kind == "train":
        return progress_text(read_progress(node.output, since=started), sum(p.steps for p in phases(node.cfg)))
    return None


class PipelineFailed(JobFailed):
    """A stage failed; the others that did not depend on it ran to the end."""


def run_pipeline(cfg: PipelineConfig, echo: Callable[[str], None] = lambda s: print(s, flush=True),
                 only: list[str] | None = None) -> PipelineSummary:
    """Run every node not done (Ray must be up: ``runtime.entry.init_ray``); ``only`` limits the run to
    these nodes and what they depend on. The run root's writer lease is held throughout (a second pipeline
    on the same root refuses), besides each stage's lease on its own output."""
    with OutputLease(absolute(cfg.root), "pipeline"):
        return _run_graph(cfg, echo, only)


def _run_graph(cfg: PipelineConfig, echo: Callable[[str], None], only: list[str] | None) -> PipelineSummary:
    nodes = {n.name: n for n in build_graph(cfg)}
    return _GraphRun(_with_inputs(nodes, only) if only else nodes, cfg, echo).run()


def _with_inputs(nodes: dict[str, Node], only: list[str]) -> dict[str, Node]:
    """The nodes named in ``only`` and every node they depend on, directly or not, in graph order."""
    keep, todo = set(), list(only)
    while todo:
        name = todo.pop()
        if name not in nodes:
            raise PipelineFailed(f"unknown stage {name!r}; stages: {', '.join(nodes)}")
        if name not in keep:
            keep.add(name)
            todo += nodes[name].deps
    return {k: v for k, v in nodes.items() if k in keep}


def _in_thread(fn: Callable[[], None], name: str) -> Future:
    """Run ``fn`` in a daemon thread of its own (an interrupted driver exits without waiting for the stages
    it runs); the future resolves when ``fn`` returns."""
    done: Future = Future()

    def target() -> None:
        try:
            done.set_result(fn())
        except BaseException as e:  # noqa: BLE001 - handed to whoever waits on the future
            done.set_exception(e)

    threading.Thread(target=target, name=name, daemon=True).start()
    return done


class _GraphRun:
    """One run over the graph: each node runs in a thread of its own once its inputs are done or skipped, in
    graph order, up to ``max_parallel`` at a time and one data stage at a time. A failed node blocks the nodes
    downstream of it; the others run to the end, then the failures are raised together. The stage table is
    shown at the start, every ``progress_every_s`` and after a failure."""

    def __init__(self, nodes: dict[str, Node], cfg: PipelineConfig, echo: Callable[[str], None]):
        self.nodes, self.cfg, self.echo = nodes, cfg, echo
        self.states = {name: NodeState() for name in nodes}
        self.summary = PipelineSummary(self.states, {n.name: n.output for n in nodes.values() if n.kind == "evaluate"})

    def run(self) -> PipelineSummary:
        t0 = time.time()
        running: dict[Future, str] = {}
        self.show()
        last_show = time.time()
        while True:
            for future in [f for f in running if f.done()]:
                del running[future]
            for name in self.startable(list(running.values())):
                self.states[name].state = "starting"
                running[_in_thread(partial(self.run_or_skip, self.nodes[name]), f"stage-{name}")] = name
            if not running:
                break
            wait(running, timeout=self.cfg.progress_every_s, return_when=FIRST_COMPLETED)
            if time.time() - last_show >= self.cfg.progress_every_s:
                self.show()
                last_show = time.time()
        self.summary.wall_s = time.time() - t0
        self.raise_failures()
        return self.summary

    def startable(self, running: list[str]) -> list[str]:
        """The waiting nodes to start now: their inputs done or skipped, in graph order, within
        ``max_parallel`` and with no second data stage (``NodeKind.ray_data``). Nodes downstream of a failure are
        marked blocked first."""
        states, nodes = self.states, self.nodes
        for name, st in states.items():   # graph order: a blocked node blocks its dependents in the same pass
            if st.state == "waiting" and any(states[d].state in ("failed", "blocked") for d in nodes[name].deps):
                st.state = "blocked"
        data_running = any(KINDS[nodes[n].kind].ray_data for n in running)
        start = []
        for name, st in states.items():
            if len(running) + len(start) >= self.cfg.max_parallel:
                break
            if st.state != "waiting" or any(states[d].state not in ("done", "skipped") for d in nodes[name].deps):
                continue
            if KINDS[nodes[name].kind].ray_data:
                if data_running:
                    continue
                data_running = True
            start.append(name)
        return start

    def run_or_skip(self, node: Node) -> None:
        """Skip the node when its output is complete with its lineage, else run it (overwriting an output of
        another lineage); a failure is recorded in its state, not raised."""
        st = self.states[node.name]
        try:
            lineage = node_lineage(node)
            if output_lineage(node) == lineage.hash:
                st.state, st.detail = "skipped", "done before"
                self.echo(f"[pipeline] {node.name}: skipped (complete with lineage {lineage.hash})")
                return
            overwrite = stale_output(node, lineage)
            st.state, st.started = "running", time.time()
            self.echo(f"[pipeline] {node.name}: running" + (" (config or inputs changed: overwriting its output)"
                                                           if overwrite else ""))
            result, st.detail = run_node(node, overwrite)
            self.summary.summaries[node.name] = result
            if hasattr(result, "lines") and node.kind != "evaluate":
                self.echo("\n".join(result.lines()))
            st.state = "done"
            self.echo(f"[pipeline] {node.name}: done ({st.detail}, {time.time() - st.started:.0f}s)")
        except BaseException as e:  # noqa: BLE001 - reported in the table, raised after the others stop
            first_line = str(e).splitlines()[0][:100] if str(e) else ""
            st.state, st.detail, st.error = "failed", f"{type(e).__name__}: {first_line}", e
            self.echo(f"[pipeline] {node.name}: FAILED: {type(e).__name__}: {e}")
        finally:
            st.ended = time.time()

    def show(self) -> None:
        live = {n: text for n, st in list(self.states.items()) if st.state == "running" and st.started is not None
                and (text := live_progress(self.nodes[n], st.started))}
        self.echo("\n".join(stage_table(self.states, live)))

    def raise_failures(self) -> None:
        failed = {n: st for n, st in self.states.items() if st.state == "failed"}
        if failed:
            self.show()
            first = next(iter(failed.values()))
            raise PipelineFailed(f"stages failed: {', '.join(failed)}; first error: "
                                 f"{type(first.error).__name__}: {first.error}") from first.error
