#!/usr/bin/env bash
# GPU check of the training stack, then the quick start (scripts/quickstart.sh) at reduced size, on one GPU
# (see scripts/gpu_check.py for what it runs and prints). Uses the machine's python3 with torch + transformers +
# accelerate + peft; packages it lacks (pydantic, trl, datasets) are installed from .whl/ when that folder
# holds their wheels. The quick start also needs vllm and ray (pip install -e ".[gpu]"); without them it is
# skipped with a line saying so.
set -euo pipefail
cd "$(dirname "$0")/.."
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
exec python3 scripts/gpu_check.py "$@"
