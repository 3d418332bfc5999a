#!/usr/bin/env bash
# The GPU check for pgviz: run it from the project root on a machine with a CUDA GPU
# (estimated at about 7 minutes on an H200; it has never run on a GPU):   bash scripts/gpu_check.sh
# Reads: the real CIFAR-10 subset at .gpu/cifar10-train-subset.npz (copy
# ../shared/data/cifar10-train-subset.npz into an ignored .gpu/ folder first).
# Writes: its figures under $OUT (default /tmp/gpu-out; summary.txt first) and its runs'
# folders under $CHECK_WORK (default /tmp/pgviz-gpu-check, emptied first).
# Dry run on a CPU: CHECK_DEVICE=cpu CHECK_EPOCHS=1 CHECK_BENCH="--steps 2 --repeats 3" CHECK_BENCH_LIMIT=900 bash scripts/gpu_check.sh
#
# It runs what a CPU machine never can: the bench on cuda (both precisions, 20 steps a
# block), pg and xent on the real subset (40 epochs), eval on cuda and on cpu of the same
# checkpoint, host-device syncs per training step, bit-exact resume on cuda (pg and rloo-4),
# and a cuda checkpoint resumed on the cpu. It needs torch and tqdm, not jupyter.
set -u
OUT=${OUT:-/tmp/gpu-out}; mkdir -p "$OUT"
W=${CHECK_WORK:-/tmp/pgviz-gpu-check}; rm -rf "$W"; mkdir -p "$W"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
D=.gpu/cifar10-train-subset.npz
DEV=${CHECK_DEVICE:-cuda}; EP=${CHECK_EPOCHS:-40}; BENCH=${CHECK_BENCH:---steps 20}   # overrides: a dry run on a CPU
S="$OUT/summary.txt"; : > "$S"
say() { echo "$*" | tee -a "$S"; }
step() { local name=$1 limit=$2; shift 2; local t0=$SECONDS
  timeout "$limit" "$@" > "$OUT/$name.out" 2> "$OUT/$name.err"; local rc=$?
  say "$name: rc=$rc in $((SECONDS - t0)) s :: $(tail -c 300 "$OUT/$name.out" | tail -1)"
  [[ $rc == 0 ]] || say "  stderr: $(tail -c 400 "$OUT/$name.err" | tr '\n' ' ')"; }
P="python3 -m pgviz"

say "== $(date -u +%FT%TZ) $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | head -1)"
say "== $(python3 -c 'import sys, torch; print(sys.version.split()[0], torch.__version__, "cuda", torch.cuda.is_available())' 2>&1)"
[[ -f $D ]] || say "!! $D missing: copy ../shared/data/cifar10-train-subset.npz into .gpu/ and carry .gpu"

step bench "${CHECK_BENCH_LIMIT:-150}" $P bench --device "$DEV" $BENCH
for obj in pg xent; do
  step "train-$obj" 150 $P train --objective "$obj" --data "$D" --device "$DEV" --epochs "$EP" --seed 0 --quiet --out "$W/gpu-$obj"
  cp "$W/gpu-$obj/metrics.jsonl" "$OUT/metrics-$obj.jsonl" 2>/dev/null
  step "eval-$obj-$DEV" 60 $P eval --checkpoint "$W/gpu-$obj/checkpoint.pt" --data "$D" --device "$DEV"
  step "eval-$obj-cpu" 90 $P eval --checkpoint "$W/gpu-$obj/checkpoint.pt" --data "$D" --device cpu
done

# host-device syncs in one epoch of pg training (torch's sync debug mode warns on each one)
step syncs 120 python3 - "$DEV" <<'PY'
import sys, warnings, torch
from pgviz.train import TrainConfig, train
dev = sys.argv[1]
if dev == "cuda":
    torch.cuda.set_sync_debug_mode("warn")
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    s = train(TrainConfig(objective="pg", data="synthetic", epochs=1, device=dev, out=None, progress=False))
n = sum("synchroniz" in str(x.message) for x in w)
print(f"sync warnings {n} over {s['step']} steps: {n / max(1, s['step']):.1f} per step")
PY

# bit-exact resume on the device: straight 3 epochs vs 2 + resume, for pg and rloo-4
for o in "pg" "rloo --samples 4"; do
  tag=${o%% *}
  a=(--objective $o --data synthetic --seed 3 --device "$DEV" --quiet)
  step "resume-$tag-straight" 90 $P train "${a[@]}" --epochs 3 --out "$W/gpu-s-$tag"
  step "resume-$tag-again" 90 $P train "${a[@]}" --epochs 3 --out "$W/gpu-t-$tag"
  step "resume-$tag-first" 90 $P train "${a[@]}" --epochs 2 --out "$W/gpu-r-$tag"
  step "resume-$tag-rest" 90 $P train "${a[@]}" --epochs 3 --out "$W/gpu-r-$tag" --resume
  step "resume-$tag-diff" 60 python3 - "$tag" "$W" <<'PY'
import sys, torch
t = sys.argv[1]
sd = lambda d: torch.load(f"{sys.argv[2]}/gpu-{d}-{t}/checkpoint.pt", map_location="cpu", weights_only=True)["model"]
s, again, r = sd("s"), sd("t"), sd("r")
diff = lambda a, b: max((a[k].float() - b[k].float()).abs().max().item() for k in a)
print(f"{t}: straight vs repeated {diff(s, again):.3g}; straight vs resumed {diff(s, r):.3g} (0 = bit-exact)")
PY
done
# a device checkpoint carried on the cpu
step cross-device-resume 120 $P train --objective pg --data synthetic --seed 3 --device cpu --epochs 4 --quiet --out $W/gpu-r-pg --resume
say "== done in $SECONDS s"
