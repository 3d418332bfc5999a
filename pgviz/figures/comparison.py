"""Figures of finished training runs (Training on CIFAR-10): the objectives comparison table
and the curves of mean and spread over seeds, from :func:`pgviz.results.load_runs` and
:func:`pgviz.results.summary_table`."""
from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..results import COLUMNS, NOTEBOOK_COLUMNS, notebook_table_rows, table_rows
from .style import ensure_axes, tidy
from .tables import Table

__all__ = ["comparison_table", "notebook_table", "plot_runs"]


def comparison_table(rows: List[dict]) -> Table:
    """The summary as a table (HTML in notebooks and the book): final test accuracy as
    mean ± std over seeds, its range, and the mean wall time of a run
    (:func:`pgviz.results.table_rows`)."""
    return Table(COLUMNS, table_rows(rows))


def notebook_table(rows: List[dict]) -> Table:
    """The companion notebook's five objectives: its printed full-data accuracies, its own
    code on the subset and ``pgviz train --recipe notebook`` there, from
    :func:`pgviz.results.notebook_rows` (:func:`pgviz.results.notebook_table_rows`)."""
    return Table(NOTEBOOK_COLUMNS, notebook_table_rows(rows))


def _curve(runs: List[dict], x: str, key: str):
    """Runs aligned on epochs: ``(x mean over seeds, y [seeds, epochs])``."""
    n = min(len(r["epochs"]) for r in runs)
    xs = np.array([[e[x] for e in r["epochs"][:n]] for r in runs], dtype=float)
    ys = np.array([[math.nan if e.get(key) is None else e[key] for e in r["epochs"][:n]] for r in runs], dtype=float)
    return xs.mean(0), ys


def plot_runs(runs: Dict[str, List[dict]], *, x: str = "step", key: str = "test_acc", ax=None,
              order: Optional[Sequence[str]] = None, colors: Optional[Dict[str, str]] = None,
              xlabel: Optional[str] = None, ylabel: str = "test accuracy", title: Optional[str] = None,
              reference: Optional[Dict[str, float]] = None, legend: Optional[str] = "best"):
    """Mean over seeds (line) and min–max over seeds (band) of ``key`` against ``x``
    (``"step"``, ``"time"`` in seconds, ``"epoch"`` or ``"images_seen"``).
    ``reference`` draws horizontal lines (e.g. the article's accuracies), named in the
    legend. ``legend`` is its ``loc``; ``None`` draws none (for one legend per figure:
    ``fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center")``)."""
    ax = ensure_axes(ax, figsize=(6, 3.6))
    for i, name in enumerate(order or sorted(runs)):
        if name not in runs:
            continue
        xm, ys = _curve(runs[name], x, key)
        color = (colors or {}).get(name, f"C{i}")
        ax.plot(xm, np.nanmean(ys, 0), color=color, linewidth=2, label=f"{name} ({len(ys)} seeds)")
        ax.fill_between(xm, np.nanmin(ys, 0), np.nanmax(ys, 0), color=color, alpha=0.18, linewidth=0)
    for j, (label, y) in enumerate((reference or {}).items()):
        ax.axhline(y, color="black", linestyle=["--", ":"][j % 2], linewidth=1, label=label)
    ax.set_xlabel(xlabel or {"step": "training steps", "time": "wall time (s)", "epoch": "epoch",
                             "images_seen": "images seen"}.get(x, x))
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if legend:
        ax.legend(frameon=False, fontsize=9, loc=legend)
    tidy(ax)
    return ax
