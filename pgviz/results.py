"""Reading finished runs back: ``metrics.jsonl`` files, grouped by setting and seed (numbers only).

``scripts/compare.sh`` trains every setting of the objectives comparison with the CLI
(``pgviz train ... --out results/compare/<setting>/seed<k>``); the chapters read those
folders with :func:`load_runs` and summarise them with :func:`summary_table`
(:func:`format_table` writes the summary as Markdown for the terminal).  The figures drawn
from them are :func:`pgviz.figures.comparison.comparison_table` and
:func:`pgviz.figures.comparison.plot_runs`.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from .sources import ORR_NOTEBOOK, notebook_accuracy

__all__ = ["read_metrics", "load_runs", "epoch_reaching", "summary_table", "REFERENCE_ACCURACIES", "COLUMNS",
           "table_rows", "format_table", "NOTEBOOK_OBJECTIVES", "NOTEBOOK_PRINTED", "NOTEBOOK_COLUMNS",
           "load_reference", "notebook_rows", "notebook_table_rows"]


def read_metrics(path) -> List[dict]:
    """The JSON lines of a ``metrics.jsonl`` (a torn last line, from a killed run, is skipped)."""
    rows = []
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if line:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows


def load_runs(root, *, finished_only: bool = True) -> Dict[str, List[dict]]:
    """``{setting: [run, ...]}`` for ``root/<setting>/<seed folder>/metrics.jsonl``.

    Each run is ``{"seed", "config" (the start line), "epochs" (epoch lines), "end"}``;
    a run resumed after a stop keeps only its last start line and the epochs it finished.
    ``finished_only`` leaves out runs still in progress or stopped before their last epoch.
    """
    out: Dict[str, List[dict]] = {}
    for path in sorted(Path(root).glob("*/*/metrics.jsonl")):
        rows = read_metrics(path)
        starts = [r for r in rows if r.get("event") == "start"]
        epochs: Dict[int, dict] = {}
        for r in rows:
            if r.get("event") == "epoch":
                epochs[r["epoch"]] = r  # a resumed run rewrites later epochs
        ends = [r for r in rows if r.get("event") == "end"]
        if not starts or not epochs:
            continue
        if finished_only and not (ends and ends[-1].get("status") == "finished"):
            continue
        out.setdefault(path.parent.parent.name, []).append({
            "seed": starts[-1].get("seed"), "config": starts[-1],
            "epochs": [epochs[k] for k in sorted(epochs)], "end": ends[-1] if ends else None,
        })
    return out


def _final(run: dict, key: str) -> float:
    v = run["epochs"][-1].get(key)
    return float("nan") if v is None else float(v)


def epoch_reaching(run: dict, threshold: float) -> Optional[int]:
    """The first epoch whose test accuracy is at least ``threshold`` (None if never)."""
    return next((e["epoch"] for e in run["epochs"] if e["test_acc"] >= threshold), None)


def _mean_or_none(xs) -> Optional[float]:
    """Mean of the epochs, or None when any seed never got there."""
    return None if any(x is None for x in xs) else float(np.mean(xs))


def summary_table(runs: Dict[str, List[dict]], order: Optional[Sequence[str]] = None) -> List[dict]:
    """One row per setting: seeds, final test accuracy mean / std / min / max, best epoch's
    accuracy (mean), wall time mean, final policy entropy and mean reward of the sampled
    labels in the last epoch (means; NaN for xent), the mean
    epoch at which the companion notebook's policy-gradient and cross-entropy accuracies
    (:data:`REFERENCE_ACCURACIES`, from :mod:`pgviz.sources`) were reached (None if a seed
    never did), epochs, and the run's settings."""
    rows = []
    for name in order or sorted(runs):
        if name not in runs:
            continue
        rs = runs[name]
        acc = np.array([_final(r, "test_acc") for r in rs])
        best = np.array([max(e["test_acc"] for e in r["epochs"]) for r in rs])
        cfg = rs[0]["config"]
        rows.append({
            "setting": name, "objective": cfg.get("objective"), "entropy_weight": cfg.get("entropy_weight"),
            "seeds": len(rs), "epochs": rs[0]["epochs"][-1]["epoch"],
            "test_acc_mean": float(acc.mean()), "test_acc_std": float(acc.std(ddof=1)) if len(rs) > 1 else 0.0,
            "test_acc_min": float(acc.min()), "test_acc_max": float(acc.max()),
            "best_epoch_acc_mean": float(best.mean()),
            "wall_time_mean": float(np.mean([r["epochs"][-1]["time"] for r in rs])),
            "entropy_final_mean": float(np.mean([_final(r, "entropy") for r in rs])),
            "reward_final_mean": float(np.mean([_final(r, "reward") for r in rs])),
            "epoch_reaching_mean": {t: _mean_or_none([epoch_reaching(r, t) for r in rs]) for t in REFERENCE_ACCURACIES},
            "n_train": cfg.get("n_train"), "n_test": cfg.get("n_test"), "model": cfg.get("model"),
            "lr": cfg.get("lr"), "batch_size": cfg.get("batch_size"), "device": cfg.get("device"),
        })
    return rows


#: The thresholds of ``epoch_reaching_mean``: the companion notebook's final test accuracies
#: of policy gradient and of softmax cross-entropy (credit: :data:`pgviz.sources.ORR_NOTEBOOK`).
REFERENCE_ACCURACIES = (notebook_accuracy("policy gradient"), notebook_accuracy("softmax cross-entropy"))


#: The columns of the objectives comparison table (:func:`table_rows`).
COLUMNS = ("setting", "entropy weight", "seeds", "epochs", "test accuracy", "range over seeds", "time (s)")


def table_rows(rows: List[dict]) -> List[List[str]]:
    """The summary's cells as text, one list per setting in :data:`COLUMNS`' order: final test
    accuracy as mean ± std over seeds, its range, and the mean wall time of a run."""
    cells = []
    for r in rows:
        ew = "–" if r["objective"] == "xent" else f"{r['entropy_weight']:g}"
        cells.append([r["setting"], ew, str(r["seeds"]), str(r["epochs"]),
                      f"{100 * r['test_acc_mean']:.1f} ± {100 * r['test_acc_std']:.1f} %",
                      f"{100 * r['test_acc_min']:.1f}–{100 * r['test_acc_max']:.1f} %", f"{r['wall_time_mean']:.0f}"])
    return cells


def format_table(rows: List[dict]) -> str:
    """The summary as a Markdown table (for the README and the terminal)."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in table_rows(rows)])


# ----------------------------------------------------------------------------
# The companion notebook's experiment (scripts/notebook.sh, results/notebook-reference)
# ----------------------------------------------------------------------------
#: The five objectives of the companion notebook, in its order, by pgviz's names.
NOTEBOOK_OBJECTIVES = ("xent", "teacher-student", "sampled-softmax", "value", "pg")

#: The final test accuracies the companion notebook prints ({cite}`orr2021notebook`; credit:
#: Douglas Orr, 2021): full CIFAR-10 (50,000 training, 10,000 test images), one run each;
#: :data:`pgviz.sources.ORR_NOTEBOOK` holds them, here by pgviz's objective names.
NOTEBOOK_PRINTED = {name: ORR_NOTEBOOK["test_accuracy"][theirs] for name, theirs in (
    ("xent", "softmax cross-entropy"), ("teacher-student", "teacher-student"),
    ("sampled-softmax", "sampled softmax"), ("value", "value function"), ("pg", "policy gradient"))}


def load_reference(path) -> dict:
    """The notebook's own code run on the subset (``results/notebook-reference/reference.json``:
    ``accuracy[objective][seed]`` and how it was made, see its README)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _spread(values: Sequence[float]) -> dict:
    a = np.asarray(values, dtype=float)
    return {"mean": float(a.mean()) if len(a) else math.nan,
            "std": float(a.std(ddof=1)) if len(a) > 1 else 0.0, "seeds": len(a)}


def notebook_rows(runs: Dict[str, List[dict]], reference: dict) -> List[dict]:
    """One row per notebook objective: the notebook's printed full-data accuracy, its own
    code on the subset (``reference``: mean, std over seeds, seeds) and ``pgviz train
    --recipe notebook`` on the subset (``runs`` from :func:`load_runs`, the same)."""
    rows = []
    for name in NOTEBOOK_OBJECTIVES:
        ref = list(reference.get("accuracy", {}).get(name, {}).values())
        ours = [_final(r, "test_acc") for r in runs.get(name, [])]
        rows.append({"objective": name, "printed": NOTEBOOK_PRINTED[name],
                     "reference": _spread(ref), "pgviz": _spread(ours)})
    return rows


#: The columns of the notebook table (:func:`notebook_table_rows`).
NOTEBOOK_COLUMNS = ("objective", "notebook, full data (printed)", "notebook's code, subset (seeds)",
                    "pgviz --recipe notebook, subset (seeds)")


def notebook_table_rows(rows: List[dict]) -> List[List[str]]:
    """:func:`notebook_rows` as text cells in :data:`NOTEBOOK_COLUMNS`' order (accuracies
    in %, mean ± std over the seeds, their number in brackets; ``–``: no run)."""
    def cell(s):
        if not s["seeds"]:
            return "–"
        return f"{100 * s['mean']:.1f} ± {100 * s['std']:.1f} % ({s['seeds']})" if s["seeds"] > 1 \
            else f"{100 * s['mean']:.1f} % (1)"
    return [[r["objective"], f"{100 * r['printed']:.1f} %", cell(r["reference"]), cell(r["pgviz"])] for r in rows]
