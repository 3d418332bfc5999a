#!/usr/bin/env bash
# pgviz: set up and build everything.    bash run.sh
#
# 1. system tools the book needs (npm for MathJax, Chromium for the browser test), via apt when root;
# 2. the Python packages (requirements.txt) and pgviz itself (editable);
# 3. the book: every chapter executed, MathJax served locally, checked for offline use
#    -> _build/html/index.html (opens from file://, no network needed).
# CIFAR-10 for the book comes from PGVIZ_DATA (a .npz path or "cifar10"); when unset and
# ../shared/data/cifar10-train-subset.npz exists, that subset is used.
set -euo pipefail
cd "$(dirname "$0")"
export PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
PY="${PYTHON:-python3}"

need=()
command -v npm >/dev/null 2>&1 || need+=(npm)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "[run.sh] installing ${need[*]} with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "[run.sh] please install: ${need[*]} (npm builds the offline book; chromium runs the browser test)" >&2
  fi
fi

echo "[run.sh] installing Python packages"
"$PY" -m pip install -q -r requirements.txt
"$PY" -m pip install -q --no-deps -e .

if [ -z "${PGVIZ_DATA:-}" ] && [ -f ../shared/data/cifar10-train-subset.npz ]; then
  PGVIZ_DATA="$(cd ../shared/data && pwd)/cifar10-train-subset.npz"
  export PGVIZ_DATA
fi
export OMP_WAIT_POLICY=PASSIVE  # spinning OpenMP threads crawl on a busy CPU (no MPLBACKEND here: kernels must use the inline backend)
echo "[run.sh] building the book (PGVIZ_DATA=${PGVIZ_DATA:-cifar10})"
"$PY" scripts/build_book.py "$@"
echo "[run.sh] done: open _build/html/index.html  |  run the tests: python3 -m pytest -q  |  train: python3 -m pgviz train --help"
