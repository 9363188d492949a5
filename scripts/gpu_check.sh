#!/usr/bin/env bash
# GPU check of the training stack, a few minutes on one GPU (see scripts/gpu_check.py for what it runs and
# prints). Uses the machine's python3 with torch + transformers + accelerate + peft; packages it lacks
# (pydantic, trl, datasets) are installed from .whl/ when that folder holds their wheels.
set -euo pipefail
cd "$(dirname "$0")/.."
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
exec python3 scripts/gpu_check.py "$@"
