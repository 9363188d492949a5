#!/usr/bin/env bash
# Quick start on one GPU machine: a published instruct model samples MATH-500 from the Hugging Face hub;
# every sample is graded, the pools are voted on and re-ranked, and the report is printed and written.
#   pip install -e ".[gpu]"
#   scripts/quickstart.sh
# Three jobs (configs: rayjobs/configs/recipes/quickstart/), all under $ROOT:
#   1. rayjobs.ingest    $SOURCE                                  -> $ROOT/problems
#   2. rayjobs.sample    N solutions per problem (chat prompt) and,
#                        in the same engine pass, its greedy one  -> $ROOT/samples
#   3. rayjobs.evaluate  Pass@1, Maj1@N, Pass@N, LogProb BoN, ... -> $ROOT/report/report.md
# Running it again resumes: committed shards are kept, only the missing ones are computed.
# Settings (environment variables, default in brackets):
#   MODEL        hub id or local model directory [Qwen/Qwen2.5-Math-1.5B-Instruct]
#   ROOT         run directory, local or s3:// [runs/quickstart]
#   N            samples per problem [16]
#   MAX_TOKENS   longest solution, in tokens [2048]
#   LIMIT        only the first LIMIT problems (a slice of the hub split: split=test[:LIMIT]) [all 500]
#   SOURCE       the problems: an hf:// split, or a MATH-500 JSONL file (local or s3://)
#                [hf://HuggingFaceH4/MATH-500?split=test]
#   SAMPLE_SETS  more overrides for the sampling job, space-separated key=value (no spaces inside a value),
#                e.g. "engine.max_model_len=2048 engine.gpu_memory_utilization=0.8"
#   PYTHON       the Python that has mathray installed [python]
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
CONFIGS=$REPO/rayjobs/configs/recipes/quickstart
MODEL=${MODEL:-Qwen/Qwen2.5-Math-1.5B-Instruct}
ROOT=${ROOT:-runs/quickstart}
N=${N:-16}
MAX_TOKENS=${MAX_TOKENS:-2048}
SOURCE=${SOURCE:-hf://HuggingFaceH4/MATH-500?split=test}
PYTHON=${PYTHON:-python}
export PYTHONPATH=$REPO${PYTHONPATH:+:$PYTHONPATH} RAY_AUTH_MODE=${RAY_AUTH_MODE:-disabled}
export TOKENIZERS_PARALLELISM=false

if [[ -n ${LIMIT:-} ]]; then
  [[ $LIMIT =~ ^[1-9][0-9]*$ ]] || { echo "error: LIMIT must be a positive whole number, not '$LIMIT'" >&2; exit 2; }
  if [[ $SOURCE != hf://*split=* || $SOURCE == *split=*[[]* ]]; then
    echo "error: LIMIT takes the first problems of an hf:// split; SOURCE is '$SOURCE'" >&2
    exit 2
  fi
  SOURCE=$(sed -E "s/(split=[^&]+)/\1[:$LIMIT]/" <<< "$SOURCE")
fi
read -r -a sample_sets <<< "${SAMPLE_SETS:-}"
sample_overrides=(--set "engine.model=$MODEL" --set "input=$ROOT/problems" --set "sampling.max_tokens=$MAX_TOKENS")
for kv in "${sample_sets[@]}"; do sample_overrides+=(--set "$kv"); done

step() { echo; echo "== $1"; }
step "1/3 ingest $SOURCE -> $ROOT/problems"
"$PYTHON" -m rayjobs.ingest --config "$CONFIGS/ingest.yaml" \
  --set "source.path=$SOURCE" --set "output=$ROOT/problems"
step "2/3 sample $N solutions and the greedy one per problem with $MODEL -> $ROOT/samples"
"$PYTHON" -m rayjobs.sample --config "$CONFIGS/sample.yaml" "${sample_overrides[@]}" \
  --set "sampling.n=$N" --set "output=$ROOT/samples"
step "3/3 evaluate -> $ROOT/report"
"$PYTHON" -m rayjobs.evaluate --config "$CONFIGS/evaluate.yaml" \
  --set "samples=$ROOT/samples" --set "output=$ROOT/report"
echo
echo "Report: $ROOT/report/report.md (report.json, accuracy_vs_n.png, accuracy_vs_cost.png beside it)"
