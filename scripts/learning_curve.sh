#!/usr/bin/env bash
# Learning curve at equal steps: the default's member recipe (`--preset default`) trained on
# 25%, 50% and 100% of the training photos for the same number of steps (about 889 steps of
# 128 px crops, then 444 of 224 px crops, batch 16), each exported at T 0.7 and chroma gain 1.3
# and scored on a held-out set in one `pixcolor evaluate` run.
#
#   PHOTOS=DIR EXTRA="DIR/extra" VAL=DIR/val scripts/learning_curve.sh
#
# The photos are joined and shuffled into one cache (`data prepare --shuffle`), so `--limit N`
# takes a random N. The 200 held-out photos of DIR/train stay out of training. Rerun to resume.
set -euo pipefail
PHOTOS=${PHOTOS:?set PHOTOS to the folder that holds train/}
EXTRA=${EXTRA:-}
VAL=${VAL:?set VAL to the folder of photos to score on}
PIX=${PIX:-.venv/bin/pixcolor}
# name:photos:stage-1 epochs:stage-1 decay epochs:stage-2 epochs (7,111 photos in all)
RUNS=${RUNS:-"lc100:7111:2:1:1 lc50:3555:4:2:2 lc25:1778:8:4:4"}
epoch() { printf 'epoch_%04d' "$1"; }
resume_flag() { [ -d "$1/checkpoints/last" ] && echo --resume || true; }

$PIX data split "$PHOTOS/train" --n 1801 --val 200 --seed 1 --out splits/holdout
# shellcheck disable=SC2086  # EXTRA is a list of folders
for size in 160 240; do
  $PIX data prepare splits/holdout/train.txt $EXTRA --exclude splits/holdout/val.txt \
    --shuffle 7 --out "cache/train$size" --size "$size"
done
MODELS=()
for r in $RUNS; do
  IFS=: read -r name limit e1 d1 e2 <<<"$r"
  s1=runs/${name}_s1 s2=runs/${name}_s2
  # shellcheck disable=SC2046
  [ -d "$s1/checkpoints/$(epoch "$e1")" ] || $PIX train $(resume_flag "$s1") --preset default \
    --data cache/train160 --limit "$limit" --val splits/holdout/val.txt --val-limit 48 \
    --val-every "$e1" --out "$s1" --epochs "$e1" --decay-epochs "$d1" --num-workers 0
  # shellcheck disable=SC2046
  [ -d "$s2/checkpoints/$(epoch "$e2")" ] || $PIX train $(resume_flag "$s2") --preset default \
    --init-from "$s1/checkpoints/$(epoch "$e1")" --data cache/train240 --load-size 240 \
    --size 224 --limit "$limit" --val splits/holdout/val.txt --val-limit 48 --val-every "$e2" \
    --out "$s2" --epochs "$e2" --decay-epochs "$e2" --lr-g 1e-4 --num-workers 0
  $PIX export "$s2/checkpoints/$(epoch "$e2")" -o "runs/$name" --size 224 --temperature 0.7 \
    --chroma-gain 1.3
  MODELS+=("runs/$name")
done
$PIX evaluate "$VAL" --model "${MODELS[0]}" --compare "${MODELS[@]:1}" -o reports/learning_curve
