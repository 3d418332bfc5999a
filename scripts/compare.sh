#!/usr/bin/env bash
# The objectives comparison of the training chapter (book/08_training_cifar10), made with the CLI.
#
#   bash scripts/compare.sh [DATA]        # DATA: cifar10 | PATH.npz   (default: $PGVIZ_DATA, else cifar10)
#
# Every setting is trained with the same data, model, batch size, learning rate, epochs and
# seeds; only the objective / entropy weight differ. Each run writes
# results/compare/<setting>/seed<k>/metrics.jsonl (committed) and checkpoint.pt (not committed).
# A finished run is skipped, a stopped one is resumed (--resume), so the script can be re-run.
# Settings: EPOCHS, SEEDS, DEVICE, OUT environment variables.
set -euo pipefail
DATA="${1:-${PGVIZ_DATA:-cifar10}}"
EPOCHS="${EPOCHS:-40}"
SEEDS="${SEEDS:-0 1 2}"
DEVICE="${DEVICE:-auto}"
OUT="${OUT:-results/compare}"
PGVIZ="${PGVIZ:-python -m pgviz}"

settings=(
  "xent|--objective xent"
  "pg|--objective pg"
  "pg-no-baseline|--objective pg-no-baseline"
  "pg-entropy-0|--objective pg --entropy-weight 0"
  "pg-entropy-0.5|--objective pg --entropy-weight 0.5"
)
for seed in $SEEDS; do
  for s in "${settings[@]}"; do
    name="${s%%|*}"; args="${s#*|}"
    dir="$OUT/$name/seed$seed"
    if [ -f "$dir/metrics.jsonl" ] && grep -q '"status": "finished"' "$dir/metrics.jsonl"; then
      echo "done already: $dir"; continue
    fi
    resume=""; [ -f "$dir/checkpoint.pt" ] && resume="--resume"
    echo "== $name seed $seed -> $dir"
    # shellcheck disable=SC2086
    $PGVIZ train $args --data "$DATA" --epochs "$EPOCHS" --seed "$seed" --device "$DEVICE" --out "$dir" $resume
  done
done
python - "$OUT" <<'PY'
import sys
from pgviz import results
print(results.format_table(results.summary_table(results.load_runs(sys.argv[1]))))
PY
