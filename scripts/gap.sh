#!/usr/bin/env bash
# The runs of the gap chapter (book/09_the_gap), made with the CLI.
#
#   bash scripts/gap.sh [DATA]        # DATA: cifar10 | PATH.npz   (default: $PGVIZ_DATA, else cifar10)
#
# Same data, model, batch size, learning rate, epochs (40), seeds (0 1 2) and precision
# (bf16) as scripts/compare.sh; only the objective differs. Each run writes
# results/gap/<setting>/seed<k>/metrics.jsonl (committed) and checkpoint.pt (not committed).
# A finished run is skipped, a stopped one resumed. Then one pg run with gradient-noise
# probes at a few epochs goes to results/gap-probe/pg/seed0.
# Settings: EPOCHS, SEEDS, DEVICE, PRECISION, OUT, SETTINGS (names to run; empty: none), PROBE=0
# skips the probe run.
set -euo pipefail
DATA="${1:-${PGVIZ_DATA:-cifar10}}"
EPOCHS="${EPOCHS:-40}"
SEEDS="${SEEDS:-0 1 2}"
DEVICE="${DEVICE:-auto}"
PRECISION="${PRECISION:-bf16}"
OUT="${OUT:-results/gap}"
PGVIZ="${PGVIZ:-python -m pgviz}"
SETTINGS="${SETTINGS-xent pg pg-no-baseline pg-exact rloo-2 rloo-4 rloo-8 grpo-4 value}"
PROBE="${PROBE:-1}"
PROBE_EPOCHS="${PROBE_EPOCHS:-1,2,5,10,20,40}"

declare -A args=(
  [xent]="--objective xent"
  [pg]="--objective pg"
  [pg-no-baseline]="--objective pg-no-baseline"
  [pg-exact]="--objective pg-exact"
  [rloo-2]="--objective rloo --samples 2"
  [rloo-4]="--objective rloo --samples 4"
  [rloo-8]="--objective rloo --samples 8"
  [grpo-4]="--objective rloo --samples 4 --group-norm"
  [value]="--objective value"
)
finished() { [ -f "$1/metrics.jsonl" ] && grep -q '"status": "finished"' "$1/metrics.jsonl"; }
run() {  # run NAME DIR EXTRA...
  local name="$1" dir="$2"; shift 2
  if finished "$dir"; then echo "done already: $dir"; return; fi
  local resume=""; [ -f "$dir/checkpoint.pt" ] && resume="--resume"
  echo "== $name -> $dir"
  # shellcheck disable=SC2086
  $PGVIZ train ${args[$name]} --data "$DATA" --epochs "$EPOCHS" --device "$DEVICE" \
    --precision "$PRECISION" --out "$dir" --quiet $resume "$@"
}
for seed in $SEEDS; do
  for name in $SETTINGS; do
    [ -n "${args[$name]+x}" ] || { echo "unknown setting: $name" >&2; exit 2; }
    run "$name" "$OUT/$name/seed$seed" --seed "$seed"
  done
done
if [ "$PROBE" = 1 ]; then
  run pg "$OUT-probe/pg/seed0" --seed 0 --probe-epochs "$PROBE_EPOCHS"
fi
python - "$OUT" <<'PY'
import sys
from pgviz import results
print(results.format_table(results.summary_table(results.load_runs(sys.argv[1]))))
PY
