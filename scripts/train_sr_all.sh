#!/usr/bin/env bash
# Train SRCNN (9-5-5, Y channel) for x2, x3 and x4 on T91, validate on Set5 every epoch, export
# OUTDIR/srcnn-x{2,3,4}/{model.safetensors,config.json} and print the paper-protocol tables.
#
# usage: scripts/train_sr_all.sh OUTDIR [EPOCHS]
#   env: SR_DATA  folder holding T91/ and Set5/ (default: ../shared/data/sr)
#        PYTHON   interpreter with pixcolor importable (default: python)
#        DEVICE   cuda / cpu / ... (default: best available)
#        EXTRA_ARGS  more train-sr flags, e.g. "--lr 5e-4 --batch-size 256"
# Re-running continues an interrupted run (--resume) up to EPOCHS.
# Copy the exports into src/pixcolor/weights/ to ship them.
set -euo pipefail

OUT=${1:?usage: scripts/train_sr_all.sh OUTDIR [EPOCHS]}
EPOCHS=${2:-100}
DATA=${SR_DATA:-../shared/data/sr}
PY=${PYTHON:-python}
DEVICE_ARGS=()
if [[ -n "${DEVICE:-}" ]]; then DEVICE_ARGS=(--device "$DEVICE"); fi
read -r -a EXTRA <<< "${EXTRA_ARGS:-}"

for scale in 2 3 4; do
  run="$OUT/runs/srcnn-x$scale"
  resume=()
  if [[ -d "$run/checkpoints/last" ]]; then resume=(--resume); fi
  "$PY" -m pixcolor train-sr --data "$DATA/T91" --val "$DATA/Set5" --scale "$scale" \
    --epochs "$EPOCHS" --out "$run" --export "$OUT/srcnn-x$scale" \
    "${DEVICE_ARGS[@]}" "${resume[@]}" "${EXTRA[@]}"
done

for scale in 2 3 4; do
  "$PY" -m pixcolor evaluate-sr "$DATA/Set5" --scale "$scale" --model "$OUT/srcnn-x$scale" \
    "${DEVICE_ARGS[@]}" | tee "$OUT/srcnn-x$scale/set5.txt"
done
