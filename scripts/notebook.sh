#!/usr/bin/env bash
# The companion notebook's experiment (training_objectives.ipynb, {cite}`orr2021notebook`) with
# pgviz: its five objectives, each with --recipe notebook (its network, Adam 1e-3, raw [0, 1]
# inputs, no augmentation, no weight average, 15 epochs of batch 128 over every image).
#
#   bash scripts/notebook.sh [DATA]       # DATA: cifar10 | PATH.npz   (default: $PGVIZ_DATA, else cifar10)
#
# For each seed the xent run comes first: it is the teacher of that seed's teacher-student
# run (--teacher, as the notebook's teacher is its cross-entropy network). Each run writes
# results/notebook/<objective>/seed<k>/metrics.jsonl (committed) and checkpoint.pt (not
# committed). A finished run is skipped, a stopped one resumed.
# Settings: SEEDS (default 0 1 2), DEVICE, PRECISION (default auto: bf16 on CUDA and on CPUs
# with native bf16), OUT, OBJECTIVES (names to run, in order; xent must precede teacher-student).
set -euo pipefail
DATA="${1:-${PGVIZ_DATA:-cifar10}}"
SEEDS="${SEEDS:-0 1 2}"
DEVICE="${DEVICE:-auto}"
PRECISION="${PRECISION:-auto}"
OUT="${OUT:-results/notebook}"
PGVIZ="${PGVIZ:-python -m pgviz}"
OBJECTIVES="${OBJECTIVES:-xent teacher-student sampled-softmax value pg}"

finished() { [ -f "$1/metrics.jsonl" ] && grep -q '"status": "finished"' "$1/metrics.jsonl"; }
for seed in $SEEDS; do
  for objective in $OBJECTIVES; do
    dir="$OUT/$objective/seed$seed"
    if finished "$dir"; then echo "done already: $dir"; continue; fi
    extra=()
    if [ "$objective" = teacher-student ]; then
      teacher="$OUT/xent/seed$seed/checkpoint.pt"
      [ -f "$teacher" ] || { echo "no teacher for seed $seed: run xent first ($teacher)" >&2; exit 2; }
      extra=(--teacher "$teacher")
    fi
    [ -f "$dir/checkpoint.pt" ] && extra+=(--resume)
    echo "== $objective seed $seed -> $dir"
    # shellcheck disable=SC2086
    $PGVIZ train --recipe notebook --objective "$objective" --data "$DATA" --seed "$seed" \
      --device "$DEVICE" --precision "$PRECISION" --out "$dir" --quiet "${extra[@]}"
  done
done
python - "$OUT" <<'PY'
import sys
from pgviz import results
print(results.format_table(results.summary_table(results.load_runs(sys.argv[1]))))
PY
