"""Where a machine's CPU time goes while something runs (the test suite, the demo): every process's CPU time
(all its threads, from /proc/<pid>/stat), read every 2 s and summed by kind of process (Ray actor or task
class, Ray daemon, pytest worker, S3 server, ...). Processes already running when it starts count
only what they use after; one that lives less than 2 s, or its last 2 s, is missed.

    python scripts/cpu_by_process.py OUT.json &    # then the run; stop it with SIGTERM (kill %1)

Writes {kind: CPU seconds}, largest first. Linux only.
"""
from __future__ import annotations

import collections
import json
import os
import signal
import sys
import time

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
KINDS = (("raylet", "ray daemon: raylet"), ("gcs_server", "ray daemon: gcs"),
         ("dashboard/agent", "ray daemon: dashboard agent"), ("dashboard.py", "ray daemon: dashboard"),
         ("runtime_env/agent", "ray daemon: runtime env agent"), ("log_monitor", "ray daemon: log monitor"),
         ("monitor.py", "ray daemon: autoscaler monitor"), ("default_worker.py", "ray worker: starting"),
         ("moto", "moto S3 server"), ("xdist", "pytest worker"), ("pytest", "pytest"),
         ("mathray.grading.sandbox", "grading sandbox"), ("rayjobs", "job driver (rayjobs)"),
         ("tests/helpers/", "job driver (tests/helpers)"), ("bin/ray ", "ray CLI"), ("uv ", "set-up"),
         ("pip ", "set-up"))


def kind(cmdline: str) -> str:
    """A process's kind from its command line (a Ray worker names itself ``ray::<class or task>``)."""
    if cmdline.startswith("ray::"):
        return "ray: " + cmdline.split()[0][len("ray::"):].split(".")[0][:60]
    return next((k for key, k in KINDS if key in cmdline), "other: " + cmdline[:50])


def sample(seen: dict, first: bool) -> None:
    """Update {(pid, start time): [CPU s at first sight (0 for a new process), CPU s now, command line]}."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = open(f"/proc/{pid}/stat").read()
            cmdline = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        entry = seen.setdefault((pid, fields[19]), [cpu if first else 0.0, cpu, ""])
        entry[1] = cpu
        entry[2] = cmdline.strip() or entry[2]


def main(out: str) -> None:
    stopped = []
    signal.signal(signal.SIGTERM, lambda *_: stopped.append(True))
    seen: dict = {}
    sample(seen, first=True)
    while not stopped:
        time.sleep(2)
        sample(seen, first=False)
    totals = collections.Counter()
    for base, cpu, cmdline in seen.values():
        totals[kind(cmdline or "?")] += cpu - base
    with open(out, "w") as f:
        json.dump({k: round(v, 1) for k, v in totals.most_common() if v >= 0.05}, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1])
