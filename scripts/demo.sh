#!/usr/bin/env bash
# The main job on the embedded default: local Ray, local storage under runs/default, the tiny model on CPU.
# The whole pipeline of Liu et al. / Lightman et al. / Math-Shepherd, end to end:
#  1. build the tiny model (random weights, local tokenizer)   2. ingest the toy task (train + test)
#  3. SSFT on Ray Train (2 CPU workers)
#  4. sample N=8 solutions per test problem, and a greedy pass (vLLM in a Ray Data actor pool, graded)
#  5. sample N=8 solutions on 300 training problems: the verifier's and the labeler's data
#  6. Math-Shepherd step labels of those samples by rollouts (first-error search)
#  7. train the Liu et al. verifier (cls-xent) and a PRM from the SSFT checkpoint (Ray Train)
#  8. score the test samples (verifier S_cls per sample, PRM per step) in a Ray Data actor pool
#  9. evaluate every selector on the same pools: report.md / report.json / PNG plots under $RUN/report
# Every stage is resumable: re-running skips what is committed. Takes about 9-12 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export RAY_AUTH_MODE=${RAY_AUTH_MODE:-disabled} TOKENIZERS_PARALLELISM=false
PY=.venv/bin/python
# an easy setting of the toy task (1-2 operations, operands 1..9) that the tiny model learns within minutes
TOY="--set toy.min_ops=1 --set toy.max_ops=2 --set toy.max_operand=9 --set toy.max_result=99"
RUN=${RUN:-$PWD/runs/default}
[ -f "$RUN/tiny_model/config.json" ] || $PY -c "from mathray.jobs.tiny_model import build_tiny_model; print('[model] tiny model at', build_tiny_model('$RUN/tiny_model'))"
$PY -m rayjobs.ingest --set source.format=toy --set source.split=train --set toy.num_train=8000 $TOY \
    --set output=$RUN/problems_train --set step_labels_output=$RUN/step_labels_unused
$PY -m rayjobs.ingest --set source.format=toy --set source.split=test --set toy.num_test=100 $TOY \
    --set output=$RUN/problems_test --set step_labels_output=$RUN/step_labels_unused
$PY -m rayjobs.train --config rayjobs/configs/train_ssft.yaml --set model=$RUN/tiny_model \
    --set "data.ssft=[$RUN/problems_train]" --set output=$RUN/ssft --set optim.steps=${SSFT_STEPS:-1200}
SAMPLE="$PY -m rayjobs.sample --config rayjobs/configs/sample.yaml --set engine.model=$RUN/ssft/final --set sampling.max_tokens=96"
$SAMPLE --set input=$RUN/problems_test --set output=$RUN/samples_test --set sampling.n=8
$SAMPLE --set input=$RUN/problems_test --set output=$RUN/greedy_test --set sampling.greedy=true
$PY -m rayjobs.ingest --set source.format=toy --set source.split=train --set toy.num_train=300 $TOY \
    --set output=$RUN/problems_label --set step_labels_output=$RUN/step_labels_unused
$SAMPLE --set input=$RUN/problems_label --set output=$RUN/samples_train --set sampling.n=8 --set sampling.seed=1
$PY -m rayjobs.shepherd --config rayjobs/configs/shepherd.yaml --set input=$RUN/samples_train \
    --set output=$RUN/step_labels_train --set engine.model=$RUN/ssft/final --set labeling.max_tokens=96
$PY -m rayjobs.train --config rayjobs/configs/train_verifier.yaml --set model=$RUN/ssft/final \
    --set "data.samples=[$RUN/samples_train]" --set output=$RUN/verifier --set optim.steps=${VERIFIER_STEPS:-300}
$PY -m rayjobs.train --config rayjobs/configs/train_prm.yaml --set model=$RUN/ssft/final \
    --set "data.step_labels=[$RUN/step_labels_train]" --set output=$RUN/prm --set optim.steps=${PRM_STEPS:-300}
$PY -m rayjobs.score --config rayjobs/configs/score.yaml --set input=$RUN/samples_test --set output=$RUN/scores_test \
    --set scorer.verifier=$RUN/verifier/final --set scorer.prm=$RUN/prm/final --set scorer.dtype=float32 \
    --set scorer.device=cpu --set scorer.max_replicas=1
# K=2 of N=8 clusters for RR.Top-K: the share Liu et al. keep (K=8 of N=64)
$PY -m rayjobs.evaluate --config rayjobs/configs/evaluate.yaml --set samples=$RUN/samples_test \
    --set scores=$RUN/scores_test --set greedy_samples=$RUN/greedy_test --set output=$RUN/report \
    --set k=2 --set top_n=4
