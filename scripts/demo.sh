#!/usr/bin/env bash
# The main job on the embedded default: local Ray, local storage under runs/default, the tiny model on CPU.
# 1. build the tiny model (random weights, local tokenizer)   2. ingest the toy task (train + test)
# 3. SSFT on Ray Train (2 CPU workers)                         4. sample N=8 solutions per test problem
#    with vLLM in a Ray Data actor pool, grade them, commit sample shards
# Every stage is resumable: re-running skips what is committed. Takes about 10 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export RAY_AUTH_MODE=${RAY_AUTH_MODE:-disabled} TOKENIZERS_PARALLELISM=false
PY=.venv/bin/python
# an easy setting of the toy task (1-2 operations, operands 1..9) that the tiny model learns within minutes
TOY="--set toy.min_ops=1 --set toy.max_ops=2 --set toy.max_operand=9 --set toy.max_result=99"
RUN=${RUN:-$PWD/runs/default}
[ -f "$RUN/tiny_model/config.json" ] || $PY -c "from mathray.tiny_model import build_tiny_model; print('[model] tiny model at', build_tiny_model('$RUN/tiny_model'))"
$PY -m rayjobs.ingest --set source.format=toy --set source.split=train --set toy.num_train=8000 $TOY \
    --set output=$RUN/problems_train --set step_labels_output=$RUN/step_labels_unused
$PY -m rayjobs.ingest --set source.format=toy --set source.split=test --set toy.num_test=40 $TOY \
    --set output=$RUN/problems_test --set step_labels_output=$RUN/step_labels_unused
$PY -m rayjobs.train --config rayjobs/configs/train_ssft.yaml --set model=$RUN/tiny_model \
    --set "data.ssft=[$RUN/problems_train]" --set output=$RUN/ssft --set optim.steps=${SSFT_STEPS:-1200}
$PY -m rayjobs.sample --config rayjobs/configs/sample.yaml --set input=$RUN/problems_test \
    --set output=$RUN/samples --set engine.model=$RUN/ssft/final --set sampling.n=8 --set sampling.max_tokens=96
