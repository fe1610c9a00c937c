#!/usr/bin/env bash
# Equal-CPU-time comparison of colorization recipes (the model card's table).
# Each recipe trains for SECONDS of wall time on an otherwise idle machine (stopped with
# Ctrl-C, which saves a checkpoint), then all are scored on photos/val with the gray baseline.
#   scripts/compare_recipes.sh [SECONDS]
set -uo pipefail
SECONDS_EACH=${1:-360}
PHOTOS=${PHOTOS:-../shared/data/photos}
PIX=${PIX:-.venv/bin/pixcolor}
OUT=${OUT:-runs/compare}
mkdir -p "$OUT"
[ -d cache/train160 ] || $PIX data prepare "$PHOTOS/train" --out cache/train160 --size 160
[ -d cache/train256 ] || $PIX data prepare "$PHOTOS/train" --out cache/train256 --size 256
EFF="--data cache/train160 --load-size 160 --size 128 --generator effunet --pretrained-encoder \
 --augment crop --crop-min-scale 0.5 --batch-size 16 --epochs 1000 --keep-last 0 --num-workers 0"
run() {  # name, flags...
  local name=$1; shift
  timeout -s INT -k 60 "$SECONDS_EACH" $PIX train --out "$OUT/$name" "$@" >"$OUT/$name.log" 2>&1
  echo "$name: $(grep -c '"kind": "train"' "$OUT/$name/metrics.jsonl") log rows"
}
# 1. the seed write-up's recipe: seed U-Net + PatchGAN, GAN + 100 L1, 256x256, flips
run seed --data cache/train256 --size 256 --generator seed --batch-size 16 --epochs 1000 \
  --keep-last 0 --num-workers 0
# 2. EfficientNet-Lite0 U-Net (ImageNet encoder), L1 alone, crops
run effunet_l1 $EFF --gan-mode none --lambda-l1 100
# 3. the same encoder, ab-bin classification with rebalancing + small L1 (the shipped recipe)
run effunet_bins $EFF --generator-kwargs '{"head":"bins"}' --gan-mode none --lambda-l1 10
