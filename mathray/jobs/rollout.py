"""The engine edge of Math-Shepherd labelling: one ``vllm.LLM`` rolls out step prefixes for SAMPLES rows and
returns STEP_LABELS rows.

``RolloutLabeler`` is a callable class for a Ray Data ``map_batches`` actor pool (one engine per actor),
and usable directly (benchmarks). It keeps the engine full without rounds: each completion of every open step
prefix is an engine request (``n=1`` with the seed it has among the prefix's K) added with
``LLMEngine.add_request``; the loop calls ``LLMEngine.step()`` and, as each completion finishes, grades it
(``RolloutGrader``: in grading processes, or with ``grading_processes=0`` in this loop) and folds it into its
prefix (``core.shepherd.PrefixRollouts``); a decided prefix goes back to its solution's search
(``core.shepherd.SearchQueue``), which queues its next prefix at once. vLLM's engine core runs in its own
process, so it keeps generating while this loop grades or waits on grades. On a CPU engine a grading process
only competes with the engine for the cores (the CPU demo grades in the loop); on a GPU node a pool keeps
slow sympy checks from delaying the next prefixes. Up to ``max_in_flight`` completions are in the engine at a
time; prefix caching shares the prefill of a solution's prefixes and of the K completions of a prefix.

``stop_at_correct`` (first-error mode's default): a prefix is decided at its first correct completion (see
``core.shepherd``), so the waiting completions go lowest index first across all prefixes, and a decided
prefix's remaining completions are dropped before they start or aborted in the engine. Same hard labels and
first errors as running all K; fewer generated tokens (``benchmarks/shepherd.py``). A good prefix is then
cheap (~2 rollouts) and a bad one costs K, so the first-error search probes where the expected rollouts
are lowest rather than in the middle (``search: weighted``, ``core.shepherd``). Synchronous rounds (one
``llm.generate`` per round, graded between rounds) would wait for each round's slowest rollout and leave the
engine idle while grading; ``benchmarks/shepherd.py`` compares the two.

Rollout prompt = the sample's generation prompt (``prompts.sample_prompt``: plain, few-shot or chat) + its
text up to the end of the step + ``"\\n"``: exactly what the generator had produced there, so the completer
continues with the next step in the sample's own format; output rows keep the prompt. A completion counts as
correct when ``prefix + "\\n" + completion`` grades correct against the reference and it finished (``length``
counts as wrong). Each prefix has its own sampling seed, a function of (seed, problem_id, sample_id, step): a
prefix's rollouts are the same whichever mode, batch or order asks for it, so re-runs and the two modes are
comparable.

A row's ``rollouts`` and ``tokens_generated`` count the completions its labels rest on (for a prefix
stopped early, 0..c), so a re-run writes the same row whichever completions happened to finish first. Cost
and cache accounting of the call ride on each row's ``metadata`` (JSON) under a batch id, which
``merge_costs`` counts once per batch: vLLM's counters read from its Prometheus metrics via
``llm.get_metrics()`` (prefix-cache queries and hits, prompt and generated tokens, the latter including
completions dropped part-way), completions aborted or discarded, engine steps, and the time the engine sat
empty waiting on grades.
"""
from __future__ import annotations

import hashlib
import heapq
import json
import logging
import time
import uuid
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Literal

import pyarrow as pa
from pydantic import Field, model_validator

from mathray.core import schemas
from mathray.config import StrictModel, outside_lineage
from mathray.runtime.engine import EngineConfig, build_llm, refusal_errors
from mathray.runtime.models import model_fingerprint
from mathray.core.prompts import STOP_STRINGS, sample_prompt
from mathray.core.shepherd import LABEL_SOURCE, PrefixRollouts, SearchQueue, make_search
from mathray.runtime.stage import is_quarantined, quarantined, rows_to_table, with_source
from mathray.core.steps import prefix_text, split_steps

from mathray.grading import grade

log = logging.getLogger(__name__)

# STEP_LABELS plus the search outcome
OUTPUT_SCHEMA = schemas.STEP_LABELS


class LabelingConfig(StrictModel):
    mode: Literal["full", "first-error"] = "first-error"
    k: int = Field(8, ge=1)                   # completions per prefix (Math-Shepherd N)
    temperature: float = Field(0.7, ge=0.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_tokens: int = Field(512, ge=1)
    seed: int = 0
    step_format: Literal["auto", "newline", "step_prefix", "shepherd"] = "auto"
    # which solutions get their last step from their own grade instead of rollouts:
    # correct: correct answers (their last step is good by definition); graded: also answered-but-wrong ones; never
    free_last_step: Literal["correct", "graded", "never"] = "graded"
    # stop a prefix's rollouts at its first correct completion (core.shepherd.PrefixRollouts): same hard
    # labels and first errors, fewer rollouts; soft labels of prefixes stopped early are null. None: on in
    # first-error mode (hard labels only), off in full mode (soft labels of every step)
    stop_at_correct: bool | None = None
    # first-error mode, where a solution's search probes (core.shepherd): weighted, where the expected
    # rollouts are lowest given what a good and a bad prefix cost (with stop_at_correct ~2 and K, so it
    # probes early; without, K and K: bisection); bisect, always the middle. Same first error under
    # monotone labels
    search: Literal["weighted", "bisect"] = "weighted"
    # how the work is scheduled (not which labels come out: knobs)
    # completions (sequences) in the engine at once; None: the engine's max_num_seqs plus a quarter, enough
    # to refill its batch between two steps of this loop, few enough that with stop_at_correct a prefix's
    # later completions (often never needed) wait behind every prefix's earlier ones
    max_in_flight: int | None = outside_lineage(None, ge=1)
    # processes that grade rollouts beside each engine actor; 0: grade in the actor's own loop (vLLM's engine
    # core is a process of its own, so it keeps generating meanwhile; no pickling, no extra process)
    grading_processes: int = outside_lineage(1, ge=0)
    solutions_per_call: int | None = outside_lineage(None, ge=1)  # rows per actor call; None: whole input shards

    @model_validator(mode="after")
    def _check(self) -> "LabelingConfig":
        if self.temperature == 0 and self.k > 1:
            raise ValueError("temperature 0 (greedy) gives identical completions: use k=1 or temperature > 0")
        if self.stop_at_correct is None:
            self.stop_at_correct = self.mode == "first-error"
        return self


def is_correct_answer(text: str, reference: str) -> bool:
    return grade(text, reference).is_correct


def count_correct(jobs: list[tuple[str, list[str], str]]) -> list[int]:
    """Correct completions per (prefix, finished completion texts, reference) (runs in grading processes)."""
    return [sum(is_correct_answer(prefix + "\n" + text, ref) for text in texts) for prefix, texts, ref in jobs]


def _warm_grader() -> None:
    is_correct_answer("\\boxed{1}", "1")   # imports and parser warm-up before the first real job


class RolloutGrader:
    """Grades rollouts in ``processes`` spawned processes (a fresh interpreter each: no fork of an engine
    process), so the engine loop only schedules; ``processes=0`` grades in the caller at ``submit``.
    Futures of ``count_correct``."""

    def __init__(self, processes: int):
        import multiprocessing

        self.pool = None
        if processes:
            self.pool = ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"),
                                            initializer=_warm_grader)
            for _ in range(processes):   # start them now, while the engine loads (the pool starts them lazily)
                self.pool.submit(int)

    def submit(self, jobs: list[tuple[str, list[str], str]]) -> Future:
        if self.pool is not None:
            return self.pool.submit(count_correct, jobs)
        done: Future = Future()
        done.set_result(count_correct(jobs))
        return done

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)


def final_grade(row: dict, policy: str) -> bool | None:
    """The solution's own grade when it may stand in for rolling out its last step, else None."""
    if policy == "never":
        return None
    if row.get("is_correct"):
        return True
    answered = row.get("answer") is not None and row.get("finish_reason") != "length"
    return False if policy == "graded" and answered else None


def prefix_seed(seed: int, problem_id: str, sample_id: int, step: int, k: int) -> int:
    digest = hashlib.sha256(f"{seed}:{problem_id}:{sample_id}:{step}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % (2**31 - k)   # children use seed + index


def rollout_prompt(prompt: str, text: str, steps, i: int) -> str:
    """The sample's own prompt and its text up to the end of step i, then a newline: exactly what the
    generator had produced at that point, so the completer continues its solution in its format."""
    return prompt + prefix_text(text, steps, i) + "\n"


def engine_counters(llm) -> dict[str, int]:
    """vLLM's cumulative counters (tokens) from its Prometheus metrics: prefix-cache queries and hits, prompt
    and generated tokens (these include completions aborted part-way); {} when stats are off."""
    try:
        metrics = llm.get_metrics()
    except AssertionError:  # disable_log_stats=True
        return {}
    out = {"prefix_cache_queries": 0, "prefix_cache_hits": 0, "prompt_tokens": 0, "generation_tokens": 0}
    for m in metrics:
        name = m.name.removeprefix("vllm:")
        if name in out:
            out[name] += int(m.value)
    return out


@dataclass
class _OpenPrefix:
    """A step prefix being rolled out in a ``_BatchSearch``."""
    rollouts: PrefixRollouts                                          # graded completions; decides the prefix
    returned: dict[int, tuple[int, bool]] = field(default_factory=dict)   # completion -> (tokens, cut)
    running: set[str] = field(default_factory=set)                   # its request ids in the engine


class _BatchSearch:
    """The searches of one ``RolloutLabeler.label`` call and the engine loop that advances them: step
    prefixes wait (a heap of their completions), run in the engine (one request per completion), are graded,
    and are closed once decided, which queues their solution's next prefix."""

    def __init__(self, labeler: "RolloutLabeler", rows: list[dict], all_steps: list[list]):
        cfg = self.cfg = labeler.cfg
        self.rows, self.all_steps, self.params, self.grader = rows, all_steps, labeler._params, labeler.grader
        self.queue = SearchQueue([make_search(cfg.mode, len(steps), cfg.k, final_grade(r, cfg.free_last_step),
                                              cfg.stop_at_correct, cfg.search)
                                  for r, steps in zip(rows, all_steps)])
        self.tokens, self.unfinished = [0] * len(rows), [0] * len(rows)   # per solution, counted completions
        self.refused: dict[int, str] = {}                       # solution -> the engine's reason
        self.refusals = refusal_errors()
        self.engine, self.call = labeler.llm.llm_engine, uuid.uuid4().hex[:12]
        self.cap = labeler._max_in_flight()
        self.waiting: list[tuple[tuple[int, int], int, int, int]] = []   # heap: (order, solution, step, completion)
        self.prefixes: dict[tuple[int, int], _OpenPrefix] = {}           # open prefix evaluations
        self.in_engine: dict[str, tuple[int, int, int]] = {}            # request id -> (solution, step, completion)
        self.grading: dict[Future, list[tuple[int, int, int]]] = {}     # grading job -> its completions
        self.queued = 0                                                 # prefixes queued so far
        self.aborted = self.discarded = self.engine_steps = self.peak = 0
        self.empty_s = 0.0                                              # engine empty, waiting on grades

    def run(self) -> None:
        """Advance every search until each is done (the engine is left empty, also on an error)."""
        try:
            self.take_new_prefixes()
            while self.waiting or self.in_engine or self.grading:
                self.fill_engine()
                if self.in_engine:
                    self.step_engine()
                if self.grading:
                    self.collect_grades()
                    self.take_new_prefixes()
        finally:
            if self.in_engine:   # an error mid-call: leave the engine empty for the next call
                self.engine.abort_request(list(self.in_engine))
        self.queue.check_done()

    def take_new_prefixes(self) -> None:
        """Open the prefixes the searches ask for next; their K completions wait in the heap."""
        cfg = self.cfg
        while len(self.queue):
            j, i = self.queue.pop()
            if j in self.refused:   # never sent again; the solution's row is quarantined
                self.queue.record(j, i, 0)
                continue
            self.prefixes[(j, i)] = _OpenPrefix(PrefixRollouts(cfg.k, cfg.stop_at_correct))
            for c in range(cfg.k):
                order = (c, self.queued) if cfg.stop_at_correct else (self.queued, c)
                heapq.heappush(self.waiting, (order, j, i, c))
            self.queued += 1

    def fill_engine(self) -> None:
        """Send waiting completions of open prefixes until ``cap`` are in the engine."""
        while self.waiting and len(self.in_engine) < self.cap:
            _, j, i, c = heapq.heappop(self.waiting)
            if (j, i) in self.prefixes:   # else decided (or refused) while this completion waited
                self.send(j, i, c)
        self.peak = max(self.peak, len(self.in_engine))

    def send(self, j: int, i: int, c: int) -> None:
        """Add completion c of solution j's prefix i to the engine; a refused prompt ends the solution."""
        row, rid = self.rows[j], f"{self.call}-{j}-{i}-{c}"
        try:
            self.engine.add_request(rid, rollout_prompt(sample_prompt(row), row["text"], self.all_steps[j], i),
                                    self.params(row, i, c))
        except self.refusals as e:   # e.g. a prefix longer than max_model_len
            self.refused[j] = f"engine refused the prompt: {e}"
            self.drop_prefix(j, i)
            self.queue.record(j, i, 0)
            self.take_new_prefixes()
            return
        self.in_engine[rid] = (j, i, c)
        self.prefixes[(j, i)].running.add(rid)

    def step_engine(self) -> None:
        """One engine step; the completions it finished go to the grader as one job."""
        jobs, keys = [], []
        for res in self.engine.step():
            if not res.finished or res.request_id not in self.in_engine:
                continue
            j, i, c = self.in_engine.pop(res.request_id)
            prefix = self.prefixes[(j, i)]
            prefix.running.discard(res.request_id)
            (out,) = res.outputs
            cut = out.finish_reason == "length"   # unfinished: counts as wrong, not graded
            prefix.returned[c] = (len(out.token_ids), cut)
            row = self.rows[j]
            jobs.append((prefix_text(row["text"], self.all_steps[j], i), [] if cut else [out.text],
                         row["reference_answer"]))
            keys.append((j, i, c))
        self.engine_steps += 1
        if jobs:
            self.grading[self.grader.submit(jobs)] = keys

    def collect_grades(self) -> None:
        """Fold the grades that are ready into their prefixes, closing the decided ones; blocks only when
        the engine has nothing to run."""
        waited = time.time()
        done, _ = wait(list(self.grading), timeout=None if not self.in_engine else 0, return_when=FIRST_COMPLETED)
        if not self.in_engine:
            self.empty_s += time.time() - waited
        for fut in done:
            for (j, i, c), n_correct in zip(self.grading.pop(fut), fut.result()):
                self.add_grade(j, i, c, n_correct > 0)

    def add_grade(self, j: int, i: int, c: int, correct: bool) -> None:
        if (j, i) not in self.prefixes:   # decided before this completion was graded
            self.discarded += 1
            return
        rollouts = self.prefixes[(j, i)].rollouts
        rollouts.add(c, correct)
        if rollouts.counted() is not None:
            self.close_prefix(j, i)

    def drop_prefix(self, j: int, i: int) -> _OpenPrefix:
        """Forget an open prefix: its waiting completions are skipped, its running ones aborted."""
        prefix = self.prefixes.pop((j, i))
        if prefix.running:
            self.engine.abort_request(list(prefix.running))
            for rid in prefix.running:
                del self.in_engine[rid]
            self.aborted += len(prefix.running)
        return prefix

    def close_prefix(self, j: int, i: int) -> None:
        """A decided prefix: count the completions its outcome rests on and return it to its search."""
        prefix = self.drop_prefix(j, i)
        n_correct, n = prefix.rollouts.outcome()
        # graded completions past the counted ones (those still being graded are counted as they return)
        self.discarded += sum(1 for c in prefix.rollouts.correct if c >= n)
        self.tokens[j] += sum(prefix.returned[c][0] for c in range(n))
        self.unfinished[j] += sum(prefix.returned[c][1] for c in range(n))
        self.queue.record(j, i, n_correct, n)


class RolloutLabeler:
    """A ``map_batches`` callable: SAMPLES rows (stage-tagged) in, STEP_LABELS rows (or quarantine) out."""

    def __init__(self, engine: EngineConfig, labeling: LabelingConfig, llm=None, device: str = "cpu"):
        self.cfg = labeling
        if llm is None:  # stats on: the prefix-cache counters come from vLLM's metrics
            engine = engine.model_copy(update={"engine_kwargs": {"disable_log_stats": False,
                                                                 **engine.engine_kwargs}})
            llm = build_llm(engine, device)
        self.llm = llm
        self.completer = model_fingerprint(engine.model)
        self.grader = RolloutGrader(labeling.grading_processes)

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows, out, work = batch.to_pylist(), [], []
        for row in rows:
            if is_quarantined(row):
                out.append(row)
                continue
            steps = split_steps(row["text"], self.cfg.step_format)
            if not steps:
                out.append(quarantined(row, f"no parsable steps ({self.cfg.step_format} format)"))
                continue
            work.append((row, steps))
        labelled = self.label([r for r, _ in work], [s for _, s in work])
        out += [quarantined(row, lab) if isinstance(lab, str) else with_source(lab, row, 1)
                for (row, _), lab in zip(work, labelled)]
        return rows_to_table(out, OUTPUT_SCHEMA)

    def _params(self, row: dict, step: int, completion: int | None = None):
        """The sampling parameters of a prefix's K completions (``n=K``), or of its completion number
        ``completion`` alone: vLLM seeds the i-th of ``n`` completions with seed + i, so completion c asked
        alone is the same text as the c-th of the K asked together."""
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        cfg = self.cfg
        seed = prefix_seed(cfg.seed, row["problem_id"], row["sample_id"], step, cfg.k)
        n = cfg.k
        if completion is not None:
            n, seed = 1, seed + completion
        return SamplingParams(n=n, temperature=cfg.temperature, top_p=cfg.top_p, max_tokens=cfg.max_tokens,
                              stop=STOP_STRINGS, output_kind=RequestOutputKind.FINAL_ONLY, seed=seed)

    def _max_in_flight(self) -> int:
        if self.cfg.max_in_flight:
            return self.cfg.max_in_flight
        try:
            batch = self.llm.llm_engine.vllm_config.scheduler_config.max_num_seqs
        except AttributeError:
            batch = 256
        return batch + batch // 4

    def label(self, rows: list[dict], all_steps: list[list] | None = None) -> list[dict | str]:
        """STEP_LABELS rows for SAMPLES rows (no stage bookkeeping), every search advanced as its rollouts
        return (see the module docstring). A solution one of whose rollout prompts the engine refuses (e.g.
        longer than ``max_model_len``) gets the reason (a str) instead of a row, and no further rollouts.

        Each completion is its own engine request (``n=1``, the seed it has among the prefix's K). With
        ``stop_at_correct`` the waiting completions go lowest index first across all prefixes, so a
        prefix's completion 0 runs before any prefix's completion 1; once a prefix is decided its
        remaining completions are dropped (never sent, or aborted in the engine)."""
        if all_steps is None:
            all_steps = [split_steps(r["text"], self.cfg.step_format) for r in rows]
        search = _BatchSearch(self, rows, all_steps)
        before, t0 = engine_counters(self.llm), time.time()
        search.run()
        after = engine_counters(self.llm)
        batch_info = {"id": search.call, "solutions": len(rows), "evaluations": search.queue.evaluations,
                      "engine_steps": search.engine_steps, "max_in_flight": search.peak,
                      "engine_empty_s": round(search.empty_s, 3), "rollouts_aborted": search.aborted,
                      "rollouts_discarded": search.discarded, "wall_s": round(time.time() - t0, 3),
                      **{k: after[k] - before.get(k, 0) for k in after}}
        return [search.refused[j] if j in search.refused else self._labels_row(search, j, batch_info)
                for j in range(len(rows))]

    def _labels_row(self, search: _BatchSearch, j: int, batch_info: dict) -> dict:
        """The STEP_LABELS row of solution j of a finished search."""
        cfg, r, steps, s = self.cfg, search.rows[j], search.all_steps[j], search.queue.searches[j]
        lab = s.labels()
        meta = {"mode": cfg.mode, "k": cfg.k, "completer": self.completer, "evaluations": lab.evaluations,
                "free_last_step": s.final_grade is not None, "unfinished_rollouts": search.unfinished[j],
                "monotone_assumed": cfg.mode == "first-error", "stop_at_correct": cfg.stop_at_correct,
                "batch": batch_info}
        return {"problem_id": r["problem_id"], "sample_id": r["sample_id"], "problem": r["problem"],
                "prompt": sample_prompt(r),
                "steps": [st.text for st in steps], "hard_labels": lab.hard, "soft_labels": lab.soft,
                "label_source": LABEL_SOURCE[cfg.mode], "rollouts": lab.rollouts,
                "tokens_generated": search.tokens[j], "first_error_step": lab.first_error,
                "metadata": json.dumps(meta)}

    def close(self) -> None:
        self.grader.close()


BATCH_COUNTERS = ("prefix_cache_queries", "prefix_cache_hits", "engine_steps", "generation_tokens",
                  "rollouts_aborted", "rollouts_discarded", "engine_empty_s")


def shard_cost(table: pa.Table) -> dict:
    """The cost parts of STEP_LABELS rows written by ``RolloutLabeler`` (one shard's): sums over the rows, and
    the engine counters of each labeller batch by its id (a batch may span shards: ``merge_costs`` counts
    it once)."""
    rows = table.select(["steps", "rollouts", "tokens_generated", "metadata"]).to_pylist()
    batches = {}
    for r in rows:
        b = json.loads(r["metadata"] or "{}").get("batch")
        if b:
            batches[b["id"]] = {k: b.get(k, 0) for k in BATCH_COUNTERS}
    return {"solutions": len(rows), "steps": sum(len(r["steps"]) for r in rows),
            "rollouts": sum(sum(r["rollouts"] or []) for r in rows),
            "tokens_generated": sum(r["tokens_generated"] or 0 for r in rows), "batches": batches}


def merge_costs(parts) -> dict:
    """Rollouts, generated tokens (per labelled step and per solution) and the prefix-cache hit rate from
    ``shard_cost`` parts (batches counted once)."""
    sums = {"solutions": 0, "steps": 0, "rollouts": 0, "tokens_generated": 0}
    batches: dict = {}
    for part in parts:
        for k in sums:
            sums[k] += part.get(k, 0)
        batches.update(part.get("batches") or {})
    total = {k: sum(b.get(k, 0) for b in batches.values()) for k in BATCH_COUNTERS}
    steps, n, queries = max(sums["steps"], 1), max(sums["solutions"], 1), total["prefix_cache_queries"]
    return {**sums, "rollouts_per_step": sums["rollouts"] / steps, "tokens_per_step": sums["tokens_generated"] / steps,
            "rollouts_per_solution": sums["rollouts"] / n, "tokens_per_solution": sums["tokens_generated"] / n,
            "engine_steps": total["engine_steps"], "engine_tokens": total["generation_tokens"],
            "rollouts_dropped": total["rollouts_aborted"] + total["rollouts_discarded"],
            "engine_empty_s": total["engine_empty_s"], "prefix_cache_queries": queries,
            "prefix_cache_hits": total["prefix_cache_hits"],
            "prefix_cache_hit_rate": total["prefix_cache_hits"] / queries if queries else None}
