#!/usr/bin/env bash
# The test command: set up .venv if needed, then run the whole suite (real vLLM, Ray, moto S3, data) in
# MATHRAY_TEST_WORKERS pytest processes (pytest-xdist, default 2; each its own Ray cluster and S3 server),
# a module at a time per process, in the order tests/conftest.py gives (the modules running whole pipelines
# first: xdist would otherwise order them by their number of tests and start the longest last). Extra
# arguments go to pytest, e.g. scripts/test.sh -m "not slow", scripts/test.sh tests/grading, or -n 0 for one
# process.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Python's bytecode caches written as modules are first imported (.venv and __pycache__, ignored by git):
# set-up compiles only what every process imports, and a machine's PYTHONDONTWRITEBYTECODE would have each
# process compile the rest again
unset PYTHONDONTWRITEBYTECODE
export RAY_AUTH_MODE=disabled TOKENIZERS_PARALLELISM=false
exec .venv/bin/python -m pytest -q -p no:cacheprovider --durations=15 \
  -n "${MATHRAY_TEST_WORKERS:-2}" --dist loadscope --no-loadscope-reorder "$@"
