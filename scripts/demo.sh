#!/usr/bin/env bash
# The main job: the whole method on the embedded default (rayjobs/configs/demo.yaml: local Ray, local
# storage under runs/default, the tiny model on CPU). Extra arguments go to the pipeline, e.g.
#   scripts/demo.sh --set root=/tmp/run2
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Python's bytecode caches written as modules are first imported (.venv and __pycache__, ignored by git):
# set-up compiles only what every process imports, and a machine's PYTHONDONTWRITEBYTECODE would have each
# process compile the rest again
unset PYTHONDONTWRITEBYTECODE
export RAY_AUTH_MODE=${RAY_AUTH_MODE:-disabled} TOKENIZERS_PARALLELISM=false
exec .venv/bin/python -m rayjobs.pipeline --config rayjobs/configs/demo.yaml "$@"
