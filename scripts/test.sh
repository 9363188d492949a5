#!/usr/bin/env bash
# The test command: set up .venv if needed, then run the whole suite (real vLLM, Ray, moto S3, data).
# Extra arguments go to pytest, e.g. scripts/test.sh -m "not slow" or scripts/test.sh tests/grading.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export RAY_AUTH_MODE=disabled TOKENIZERS_PARALLELISM=false
exec .venv/bin/python -m pytest -q -p no:cacheprovider --durations=15 "$@"
