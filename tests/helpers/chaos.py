"""A seeded chaos schedule for one pipeline run: engine actors and a Ray Train worker SIGKILLed, the pipeline
driver SIGKILLed and re-run, the S3 server stopped for a while and brought back, each at a moment the seed
picks (a stage, and a count of engine calls, of committed shards or a training step within it). The faults are
injected from the test process, which watches the driver's "[pipeline] <stage>: running" lines, the engine
actors' call logs (local files: ``helpers.sampling_engines.log_call``), the stages' commit markers and the
training runs' progress records. An outage runs beside the watch, so engine kills still land while S3 is down
(the engines work on; only the faults that need S3 to see their moment wait for it). A data stage's engines
pause after each call until the stage's last fault has landed, then run at full speed."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from helpers.sampling_engines import calls_file, release
from mathray.jobs.training.progress import read_progress
from mathray.runtime.storage import ShardStore

# the class each data stage's engine actors run (tests/helpers/chaos_pipeline.py); Ray Data names its pool
# actors "MapWorker(MapBatches(<class>))"
ENGINE_CLASS = {"sample": "PausingEngine", "shepherd": "ObservableLabeler", "score": "ObservableScorer"}
TRAIN_WORKER_CLASS = "RayTrainWorker"


@dataclass
class Fault:
    kind: str            # engine | train_worker | driver | s3
    stage: str
    at: int              # engine calls (engine, s3 in a data stage), committed shards (driver) or global step
                         # (training stage) before it fires
    down_s: float = 0.0  # s3: how long the server stays down
    landed: str = ""     # what was done, once it fired
    seen: str = ""       # the last moment and live victims observed while it was not yet due (a failure says it)
    kept: dict = field(default_factory=dict)   # driver: the stage's commits after the kill {shard: (sha256, time)}


@dataclass
class StagePlan:
    """What the schedule picks from: the data stages with their shard counts and job kinds (sample, shepherd,
    score), the training stages with their checkpoint interval, steps and log interval (progress record)."""
    data: dict[str, int]
    kinds: dict[str, str]
    train: dict[str, tuple[int, int, int]]


def schedule(seed: int, plan: StagePlan) -> list[Fault]:
    """An engine kill in a stage of each engine kind, a Ray Train worker kill (after the first checkpoint,
    before the last step logged), a driver kill (between two commits of a sampling stage) and two S3 outages of
    3-10 s (one in a sampling or labelling stage, one in a training stage), at stages and moments drawn from
    ``seed``."""
    rng = random.Random(seed)
    data, train = sorted(plan.data), sorted(plan.train)
    # The score stage's shards commit together when its last call returns (its rows are few), and the labeller's
    # can trail its calls until its actor has no work left (on a loaded machine, all of them at its end): the
    # driver kill, placed by a count of commits, goes to a sampling stage, and the data stage's outage to a
    # sampling or labelling stage. The outage is placed by engine calls, like an engine kill: commits can stall
    # and then land together (S3 down for another fault, several shards finishing at once), outrunning the
    # watcher. The labeller's engine, like the scorer's, is killed while alive, before any commit.
    by_commits = [s for s in data if plan.kinds[s] == "sample"]
    by_calls = [s for s in data if plan.kinds[s] != "score"]
    faults = []
    for kind in sorted(set(plan.kinds.values())):
        stage = rng.choice([s for s in data if plan.kinds[s] == kind])
        at = rng.randrange(plan.data[stage] - 1)
        faults.append(Fault("engine", stage, at if kind == "sample" else 0))
    stage = rng.choice(train)
    every, steps, log_every = plan.train[stage]
    faults.append(Fault("train_worker", stage, rng.randrange(every + 1, steps - log_every)))
    stage = rng.choice(by_commits)
    faults.append(Fault("driver", stage, rng.randrange(1, plan.data[stage])))
    stage = rng.choice(by_calls)
    faults.append(Fault("s3", stage, rng.randrange(plan.data[stage] - 1), down_s=round(rng.uniform(3, 10), 1)))
    stage = rng.choice(train)
    faults.append(Fault("s3", stage, rng.randrange(1, plan.train[stage][1] - plan.train[stage][2]),
                        down_s=round(rng.uniform(3, 10), 1)))
    return faults


class Driver:
    """A pipeline driver subprocess (its own process group) and the stages it has announced as running."""

    def __init__(self, proc: subprocess.Popen):
        self.proc, self.lines, self.started = proc, [], {}
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)
            if line.startswith("[pipeline] ") and ": " in line:
                stage, _, rest = line[len("[pipeline] "):].partition(": ")
                if rest.startswith("running"):
                    self.started[stage] = time.time()
                elif rest.startswith(("done", "FAILED")):
                    self.started.pop(stage, None)

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.reader.join(timeout=30)

    def log(self) -> str:
        self.reader.join(timeout=30)
        return "".join(self.lines)


def alive_actor_pids(class_part: str) -> dict[str, int]:
    """{actor id: pid} of the live actors whose class name contains ``class_part`` (the GCS actor table: no
    dashboard needed)."""
    from ray._private import state

    return {a: info["Pid"] for a, info in state.actors(actor_state_name="ALIVE").items()
            if class_part in info["ActorClassName"] and info["Pid"]}


def commits(output: str) -> dict[str, tuple[str, str]]:
    """{shard: (sha256, committed_at)} of the shard set's commit markers."""
    return {n: (c.sha256, c.committed_at) for n, c in ShardStore(output).committed().items()}


class ChaosRun:
    """Runs the pipeline driver (``start()`` returns a new one) to the end, firing each fault of ``faults``
    once its stage is running and has reached its moment; a killed driver is started again. The engine actors
    log their calls under ``calls_dir`` (the drivers' ``MATHRAY_TEST_CALLS_DIR``)."""

    def __init__(self, faults: list[Fault], outputs: dict[str, str], plan: StagePlan, s3,
                 start: Callable[[], subprocess.Popen], calls_dir: str):
        self.faults, self.outputs, self.plan, self.calls_dir = faults, outputs, plan, calls_dir
        self.s3, self.start = s3, start
        self.logs: list[str] = []
        self.outage: threading.Thread | None = None

    def run(self, timeout: float) -> list[str]:
        """The logs of every driver started; fails when the last one does not succeed in time."""
        driver, deadline = Driver(self.start()), time.time() + timeout
        try:
            while driver.proc.poll() is None:
                assert time.time() < deadline, f"the chaos run did not end in {timeout:.0f} s"
                for fault in self.faults:
                    if not fault.landed and (moment := self.due(fault, driver)) is not None:
                        driver = self.fire(fault, moment, driver)
                        self.release_when_done(fault.stage)
                        break
                time.sleep(0.25)
        finally:
            if self.outage is not None:
                self.outage.join()
        self.logs.append(driver.log())
        assert driver.proc.returncode == 0, self.logs[-1][-4000:]
        return self.logs

    def moment(self, fault: Fault, driver: Driver) -> int | None:
        """The engine calls finished (engine kill, outage in a data stage), shards committed (driver kill) or the
        global step reached (training stage) in this driver's run of the fault's stage; None when the stage is
        not running, is past its last shard, or S3 is down (one outage at a time, and a commit or progress record
        cannot be seen then)."""
        stage = fault.stage
        if stage not in driver.started or (fault.kind == "s3" and self.s3_down()):
            return None
        if fault.kind in ("engine", "s3") and stage in self.plan.data:
            try:
                times = Path(calls_file(self.outputs[stage], self.calls_dir)).read_text().split()
            except FileNotFoundError:
                times = []
            return sum(float(t) >= driver.started[stage] for t in times)
        if self.s3_down():
            return None
        if stage in self.plan.data:
            committed = len(ShardStore(self.outputs[stage]).committed())
            return committed if committed < self.plan.data[stage] else None
        record = read_progress(self.outputs[stage], since=driver.started[stage])
        return record["step"] if record else None

    def release_when_done(self, stage: str) -> None:
        """A data stage's engine actors pause after each call only until every fault of the stage has landed."""
        if stage in self.plan.data and all(f.landed for f in self.faults if f.stage == stage):
            release(self.outputs[stage], self.calls_dir)

    def s3_down(self) -> bool:
        return self.outage is not None and self.outage.is_alive()

    def victims(self, fault: Fault) -> dict[str, int]:
        """{actor id: pid} of the live actors the fault may kill: the stage's engine actors (one data stage runs
        at a time, each kind with its own class), or the Ray Train worker whose pid the training stage's progress
        record names (training stages may run side by side)."""
        if fault.kind == "engine":
            return alive_actor_pids(ENGINE_CLASS[self.plan.kinds[fault.stage]])
        record = read_progress(self.outputs[fault.stage]) or {}
        return {a: pid for a, pid in alive_actor_pids(TRAIN_WORKER_CLASS).items() if pid == record.get("pid")}

    def due(self, fault: Fault, driver: Driver) -> int | None:
        """The stage's moment when ``fault`` is due now (and, for a kill, a live actor to kill), else None."""
        moment = self.moment(fault, driver)
        if moment is not None:
            fault.seen = f"at moment {moment}"
        if moment is None or moment < fault.at:
            return None
        if fault.kind in ("engine", "train_worker") and not self.victims(fault):
            fault.seen += ", no live actor to kill"
            return None
        return moment

    def fire(self, fault: Fault, moment: int, driver: Driver) -> Driver:
        """Inject ``fault``; returns the driver to watch from now on (a new one after a driver kill)."""
        if fault.kind in ("engine", "train_worker"):
            actor, pid = sorted(self.victims(fault).items())[0]
            os.kill(pid, signal.SIGKILL)
            fault.landed = f"{fault.kind} actor {actor[:8]} (pid {pid}) killed at {moment}"
        elif fault.kind == "driver":
            driver.kill()
            fault.kept = self.settled_commits(fault.stage)
            self.logs.append(driver.log())
            fault.landed = f"driver killed at {moment}"
            return Driver(self.start())
        else:
            self.s3.stop()
            self.outage = threading.Thread(target=self._restart_s3_after, args=(fault.down_s,), daemon=True)
            self.outage.start()
            fault.landed = f"S3 down {fault.down_s} s from {moment}"
        return driver

    def settled_commits(self, stage: str, quiet_s: float = 5.0, timeout: float = 120.0) -> dict:
        """The stage's commits once a killed driver's work has stopped: Ray ends a dead driver's actors and tasks
        shortly after it, and a commit task already running may still land; so, no engine actor of the stage's
        kind alive and no new commit for ``quiet_s``."""
        kept, since, deadline = commits(self.outputs[stage]), time.time(), time.time() + timeout
        while time.time() < deadline:
            time.sleep(0.5)
            now = commits(self.outputs[stage])
            if now != kept:
                kept, since = now, time.time()
            elif time.time() - since >= quiet_s and not alive_actor_pids(ENGINE_CLASS[self.plan.kinds[stage]]):
                return kept
        raise AssertionError(f"the killed driver's work on {stage} did not stop in {timeout:.0f} s")

    def _restart_s3_after(self, down_s: float) -> None:
        try:
            time.sleep(down_s)
        finally:
            self.s3.start()
