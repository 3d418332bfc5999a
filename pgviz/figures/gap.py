"""Figures of the gap chapter (Where the gap comes from): one image's logit directions, test
accuracy over seeds against epochs and reward queries (runs read by :mod:`pgviz.results`), and
the gradient-noise probe across training (rows of :func:`pgviz.gap.read_probes`), with its
epoch slider.  Colours per setting come from :func:`~pgviz.figures.style.setting_color`.
"""
from __future__ import annotations

from typing import Mapping, Optional, Sequence, Tuple

import numpy as np

from ..widgets import Control, InteractiveFigure, interactive
from .style import as_numpy, ensure_figure, setting_color, tidy

__all__ = ["LINESTYLES", "gap_directions", "gap_curves", "gap_noise", "probe_slider"]

#: Line styles of :func:`gap_curves` beside the registry's colours: the RLOO family shares a
#: hue (``rloo-2/4/8`` by lightness), ``grpo-4`` is dashed, and the two plain policy
#: gradients and the value objective differ in style as well as colour.
LINESTYLES = {"grpo-4": "--", "pg-no-baseline": ":", "value": "-.", "pg-exact": (0, (5, 1, 1, 1))}


def gap_directions(probs, label: int, *, fig=None, names: Optional[Sequence[str]] = None):
    """One image's logit directions side by side (eq:gap-xent, eq:gap-exact): cross-
    entropy's ``onehot(y) - pi`` and the exact policy gradient ``pi_y (onehot(y) - pi)``,
    the same arrow shrunk by ``pi_y``."""
    fig = ensure_figure(fig, (7, 2.6))
    p = as_numpy(probs)
    onehot = np.eye(len(p))[label]
    xent = onehot - p
    exact = p[label] * xent
    names = list(names) if names is not None else [str(i) for i in range(len(p))]
    axes = fig.subplots(1, 2, sharey=True)
    for ax, g, title, color in ((axes[0], xent, "cross-entropy: onehot(y) - pi", "black"),
                                (axes[1], exact, f"exact policy gradient: pi_y x that (pi_y = {p[label]:.2f})",
                                 setting_color("pg-exact"))):
        ax.bar(range(len(p)), g, color=color)
        ax.axhline(0, color="black", linewidth=0.6)
        ax.set_xticks(range(len(p)), names, rotation=60, fontsize=7)
        ax.set_title(title, fontsize=9)
        tidy(ax)
    axes[0].set_ylabel("ascent direction on the logits")
    return fig


def _gap_curve(runs_: Sequence[dict], key: str = "test_acc"):
    n = min(len(r["epochs"]) for r in runs_)
    ep = np.array([[e["epoch"] for e in r["epochs"][:n]] for r in runs_], dtype=float).mean(0)
    img = np.array([[e["images_seen"] for e in r["epochs"][:n]] for r in runs_], dtype=float).mean(0)
    ys = np.array([[np.nan if e.get(key) is None else e[key] for e in r["epochs"][:n]] for r in runs_], dtype=float)
    return ep, img, ys


def gap_curves(runs: Mapping[str, Sequence[dict]], queries_per_image: Mapping[str, Optional[float]], *,
               order: Optional[Sequence[str]] = None, fig=None, key: str = "test_acc"):
    """Test accuracy (mean over seeds, min-max band) against epochs (left) and against reward
    queries, images x rewards asked per image (right; settings without rewards, ``None``,
    are left out there).  ``runs`` is :func:`pgviz.results.load_runs`'s dictionary."""
    fig = ensure_figure(fig, (10, 4.6))
    ax_e, ax_q = fig.subplots(1, 2, sharey=True)
    for i, name in enumerate(order or sorted(runs)):
        if name not in runs or not runs[name]:
            continue
        ep, img, ys = _gap_curve(runs[name], key)
        color = setting_color(name, f"C{i}")
        label = f"{name} ({len(ys)} seeds)"
        for ax, x in ((ax_e, ep), (ax_q, None)):
            if x is None:
                q = queries_per_image.get(name)
                if q is None:
                    continue
                x = img * q
            ax.plot(x, np.nanmean(ys, 0), color=color, linewidth=2, label=label,
                    linestyle=LINESTYLES.get(name, "-"))
            ax.fill_between(x, np.nanmin(ys, 0), np.nanmax(ys, 0), color=color, alpha=0.15, linewidth=0)
    ax_e.set_xlabel("epoch (same images for every setting)")
    ax_q.set_xlabel("reward queries (images x rewards per image)")
    ax_q.set_xscale("log")
    ax_e.set_ylabel("test accuracy")
    handles, labels = ax_e.get_legend_handles_labels()  # every setting is on the left panel
    fig.legend(handles, labels, loc="outside lower center", ncols=min(5, max(len(labels), 1)),
               frameon=False, fontsize=9, handlelength=3)  # one legend for both panels
    for ax in (ax_e, ax_q):
        tidy(ax)
    return fig


def gap_noise(probes: Sequence[dict], epoch: int, *, fig=None, order: Optional[Sequence[str]] = None):
    """The gradient-noise probe across training (rows from :func:`pgviz.gap.read_probes`):
    left, the trace of the covariance of each estimator's parameter gradient against the
    epoch (log scale), with the chosen ``epoch`` marked; right, at that epoch, the mean cosine
    of one estimate with the exact expected gradient."""
    fig = ensure_figure(fig, (10, 3.6))
    ax_t, ax_c = fig.subplots(1, 2)
    rows = sorted(probes, key=lambda r: r["epoch"])
    epochs = [r["epoch"] for r in rows]
    names = list(order or rows[0]["estimators"])
    for i, n in enumerate(names):
        color = setting_color(n, f"C{i}")
        tr = [r["estimators"][n]["trace_cov"] for r in rows]
        ax_t.plot(epochs, tr, marker="o", color=color, label=n, linewidth=1.8)
    ax_t.plot(epochs, [r["exact_norm"] ** 2 for r in rows], color="black", linestyle="--", linewidth=1,
              label="|exact gradient|^2")
    ax_t.axvline(epoch, color="black", alpha=0.25, linewidth=6)
    ax_t.set_yscale("log")
    ax_t.set_xlabel("epoch")
    ax_t.set_ylabel("trace of covariance")
    ax_t.set_title("noise of one estimate of the parameter gradient", fontsize=10)
    ax_t.legend(frameon=False, fontsize=7, ncols=2, loc="best")
    row = next(r for r in rows if r["epoch"] == epoch)
    cos = [row["estimators"][n]["cosine"] for n in names]
    ax_c.barh(range(len(names)), cos, color=[setting_color(n, f"C{i}") for i, n in enumerate(names)])
    for i, c in enumerate(cos):
        ax_c.annotate(f"{c:.2f}", (max(c, 0), i), xytext=(3, 0), textcoords="offset points",
                      va="center", fontsize=8)
    ax_c.set_yticks(range(len(names)), names, fontsize=8)
    ax_c.invert_yaxis()
    ax_c.set_xlim(0, 1.05)
    ax_c.set_xlabel("mean cosine with the exact gradient")
    ax_c.set_title(f"epoch {epoch}: test-batch reward {row['expected_reward']:.2f}", fontsize=10)
    for ax in (ax_t, ax_c):
        tidy(ax)
    return fig


def probe_slider(probes: Sequence[dict], *, order: Optional[Sequence[str]] = None,
                 figsize: Tuple[float, float] = (10, 3.6), dpi: float = 80) -> InteractiveFigure:
    """The gap chapter's gradient-noise figure (:func:`gap_noise`) with one slider over the
    epochs at which the probe was recorded (rows of :func:`pgviz.gap.read_probes`)."""
    rows = sorted(probes, key=lambda r: r["epoch"])
    if not rows:
        raise ValueError("probe_slider needs at least one probe row")
    epochs = [r["epoch"] for r in rows]
    return interactive(
        lambda fig, epoch: gap_noise(rows, epoch, fig=fig, order=order),
        {"epoch": Control(epochs, value=epochs[-1], label="epoch", fmt="{:d}")},
        figsize=figsize, dpi=dpi,
        alt="Gradient noise of each policy-gradient estimator across training: trace of the "
            "covariance of the parameter gradient against the epoch, and the cosine of one "
            "estimate with the exact gradient at the chosen epoch")
