#!/usr/bin/env bash
# Reproduce the default colorizer (src/pixcolor/weights/default) and `fast` on a CPU or GPU:
# six decoders trained alone on one frozen ImageNet EfficientNet-Lite0 encoder, joined into one
# ensemble model; then one decoder distilled from the ensemble. Needs the `pretrained` extra.
#
#   PHOTOS=DIR EXTRA="DIR/extra" scripts/train_default.sh
#
# DIR holds train/ (and val/, never used here); EXTRA names more training folders. The members
# learn on DIR/train, then each is fine-tuned for one epoch on DIR/train and EXTRA together
# (without EXTRA, on DIR/train again).
#
# 200 photos of PHOTOS/train are held out (splits/holdout/val.txt) to choose the annealing
# temperature, the chroma gain and the cast gain; they never enter the training caches. Report
# the final figures on a separate set with `pixcolor evaluate`. Rerunning continues where an
# interrupted run stopped (each stage resumes from its `last` checkpoint).
#
# Each member: stage 1 on 128 px crops of 160 px images (`--preset default`: a 14-epoch
# schedule, learning rate constant for 7 epochs then decaying; its epoch 10 is kept), then
# stage 2, a new run started from that epoch with `--init-from`, on 224 px crops of 240 px
# images, the learning rate decaying over 6 epochs; from its epoch 4, one epoch over all the
# training photos (224 px crops, learning rate 5e-5) gives the member. The shipped
# members continued stage 1's optimiser state into stage 2 (a resume), which this script's
# fresh stage 2 approximates. Figures: MODEL_CARD.md.
set -euo pipefail
PHOTOS=${PHOTOS:?set PHOTOS to the folder that holds train/}
EXTRA=${EXTRA:-}
PIX=${PIX:-.venv/bin/pixcolor}
PY=${PY:-.venv/bin/python}
HERE=$(dirname "$(readlink -f "$0")")
MEMBERS=${MEMBERS:-"fz:0.5:0:100 fzc:0.25:0:101 s11:0.5:11:102 s12:0.25:12:103 s13:0.5:13:104 s14:0.25:14:105"}
S1_TAKE=${S1_TAKE:-10}   # stage-1 epoch that starts stage 2
S2_TAKE=${S2_TAKE:-4}    # stage-2 epoch that is the member
epoch() { printf 'epoch_%04d' "$1"; }

$PIX data split "$PHOTOS/train" --n "${SPLIT_N:-1801}" --val "${SPLIT_VAL:-200}" --seed 1 --out splits/holdout
mkdir -p splits/holdout/images
while read -r f; do ln -sf "$(realpath "$f")" splits/holdout/images/; done <splits/holdout/val.txt
for size in 160 240; do
  $PIX data prepare splits/holdout/train.txt --exclude splits/holdout/val.txt \
    --shuffle 7 --out "cache/train$size" --size "$size"
done
# shellcheck disable=SC2086  # EXTRA is a list of folders
$PIX data prepare splits/holdout/train.txt $EXTRA --exclude splits/holdout/val.txt \
  --shuffle 7 --out cache/all240 --size 240

resume_flag() { [ -d "$1/checkpoints/last" ] && echo --resume || true; }
member() {  # NAME CROP_MIN_SCALE SEED FINE_TUNE_SEED -> prints the member's checkpoint
  local s1="runs/$1_s1" s2="runs/$1_s2" ft="runs/$1_ft"
  if [ ! -d "$s1/checkpoints/$(epoch 14)" ]; then
    # shellcheck disable=SC2046
    $PIX train $(resume_flag "$s1") --preset default --data cache/train160 \
      --val splits/holdout/val.txt --val-limit 48 --val-every 2 --out "$s1" \
      --crop-min-scale "$2" --keep-last 30 --num-workers 0 --seed "$3" >&2
  fi
  if [ ! -d "$s2/checkpoints/$(epoch 6)" ]; then
    # shellcheck disable=SC2046
    $PIX train $(resume_flag "$s2") --preset default --init-from "$s1/checkpoints/$(epoch "$S1_TAKE")" \
      --data cache/train240 --load-size 240 --size 224 --crop-min-scale "$2" \
      --val splits/holdout/val.txt --val-limit 48 --val-every 2 --out "$s2" \
      --epochs 6 --decay-epochs 6 --keep-last 30 --num-workers 0 --seed "$3" >&2
  fi
  if [ ! -d "$ft/checkpoints/$(epoch 1)" ]; then  # one epoch at 1e-4 x 1/2 (the decay's only step)
    # shellcheck disable=SC2046
    $PIX train $(resume_flag "$ft") --preset default --init-from "$s2/checkpoints/$(epoch "$S2_TAKE")" \
      --data cache/all240 --load-size 240 --size 224 --crop-min-scale "$2" \
      --val splits/holdout/val.txt --val-limit 48 --out "$ft" --epochs 1 --decay-epochs 1 \
      --lr-g 1e-4 --keep-last 5 --num-workers 0 --seed "$4" >&2
  fi
  echo "$ft/checkpoints/$(epoch 1)"
}
CKPTS=()
for m in $MEMBERS; do
  IFS=: read -r name crop seed ft_seed <<<"$m"
  CKPTS+=("$(member "$name" "$crop" "$seed" "$ft_seed")")
done

# Join the members at gain 1, score chroma gains on the held-out photos (full resolution),
# export the highest-PSNR one whose spread is at least the previous default's (0.51 of the
# truth's there); then, at that gain, the cast gain on each photo's mean ab (the highest PSNR).
$PIX export "${CKPTS[@]}" -o runs/ensemble_g1 --size 224 --temperature 0.7 --chroma-gain 1.0
$PY "$HERE/sweep_checkpoints.py" runs/ensemble_g1 --images splits/holdout/images --temps 0.7 \
  --sizes 224 --gains 1.3 1.38 1.46 1.54 1.62 --out runs/ensemble_g1/sweep.jsonl
$PY "$HERE/sweep_checkpoints.py" runs/ensemble_g1 --images splits/holdout/images --temps 0.7 \
  --sizes 224 --gains "${GAIN:-1.46}" --cast-gains 1.0 1.15 1.3 \
  --out runs/ensemble_g1/sweep.jsonl
# The default also averages its colours at a second working size (352 px), chosen on the same
# held-out photos at these gains (MODEL_CARD.md, "Two working sizes"); `fast` keeps one size.
$PIX export "${CKPTS[@]}" -o runs/release/default --fp16 --size 224 --temperature 0.7 \
  --chroma-gain "${GAIN:-1.46}" --cast-gain "${CAST_GAIN:-1.15}" --extra-sizes 352 \
  --hints-model hints

# `fast`: the first member trained two short epochs (100 steps each, the first 1,600 photos of
# the shuffled all-photo cache) against the ensemble's mean bin distribution (--teacher), the
# learning rate going 4.5e-5, 2.2e-5; its chroma gain gives the default's spread (held out).
first=${CKPTS[0]}
# shellcheck disable=SC2046
$PIX train $(resume_flag runs/fast_dist) --preset default --init-from "$first" \
  --teacher runs/release/default --data cache/all240 --load-size 240 --size 224 \
  --crop-min-scale 0.5 --limit 1600 \
  --val splits/holdout/val.txt --val-limit 48 --out runs/fast_dist --epochs 2 --decay-epochs 2 \
  --lr-g 6.7e-5 --num-workers 0 --seed 200
$PIX export runs/fast_dist/checkpoints/$(epoch 2) -o runs/release/fast --fp16 --size 224 \
  --temperature 0.7 --chroma-gain "${FAST_GAIN:-1.38}" --cast-gain "${CAST_GAIN:-1.15}" \
  --hints-model hints
echo "release folders: runs/release/default runs/release/fast (copy into src/pixcolor/weights/)"
