"""One side of a benchmark in a fresh Python process, for settings a process fixes once it has used them (vLLM
reads its environment when an engine starts; TorchDynamo keeps what it compiled)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCHMARKS = str(Path(__file__).resolve().parent)


def run_side(module: str, call: str, name: str) -> dict:
    """``<module>.<call>`` (a Python call expression returning a JSON-able dict) run in a new interpreter."""
    code = (f"import json, sys; sys.path.insert(0, {BENCHMARKS!r}); import {module}; "
            f"print('SIDE', json.dumps({module}.{call}))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=1800)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("SIDE ")), None)
    if proc.returncode != 0 or line is None:
        raise SystemExit(f"the {name} side failed:\n{proc.stderr[-3000:]}")
    return json.loads(line[5:])


def sides_on_tiny_model(module: str, flags: dict[str, bool]) -> dict[str, dict]:
    """``<module>.one_side(model, flag)`` for each named flag, each in a new interpreter, on one tiny model."""
    import tempfile

    from mathray.jobs.tiny_model import build_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        model = str(build_tiny_model(Path(tmp) / "model"))
        return {name: run_side(module, f"one_side({model!r}, {flag})", name) for name, flag in flags.items()}
