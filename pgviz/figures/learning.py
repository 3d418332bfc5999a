"""Figures of one training run as it goes (Training on CIFAR-10): the epoch curves, the live
panel's per-step curves with their smoothed values, and the policy on a few probe images
after each epoch, with a frame slider.  They draw what a
:class:`pgviz.figures.panel.Recorder` recorded.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ..widgets import Control, interactive
from .charts import bar_chart, curves, image
from .style import BASELINE, GRADIENT, MUTED, POLICY, REWARD, ensure_figure, tidy

__all__ = ["CURVES", "STEP_CURVES", "SMOOTHING", "plural", "smooth", "curves_figure", "live_figure",
           "draw_snapshot", "snapshot_slider"]

#: The epoch curves :func:`curves_figure` draws (key, title, colour).
CURVES = (("test_acc", "test accuracy", POLICY),
          ("reward", "mean reward", REWARD),
          ("baseline", "mean baseline V", BASELINE),
          ("entropy", "policy entropy (nats)", GRADIENT))
#: The per-step statistics the live panel draws (key, title, colour).
STEP_CURVES = (("reward", "reward (per step)", REWARD),
               ("baseline", "baseline V (per step)", BASELINE),
               ("entropy", "entropy, nats (per step)", GRADIENT))
#: Decay of the exponential moving average drawn over the per-step curves.
SMOOTHING = 0.9


def plural(n: int, word: str) -> str:
    """``n`` and ``word``, plural unless ``n`` is 1: ``"1 epoch"``, ``"2 epochs"``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def smooth(values: Sequence[Optional[float]], decay: float = SMOOTHING) -> np.ndarray:
    """Exponential moving average with bias correction (as Adam corrects its moments).

    ``m_t = decay * m_{t-1} + (1 - decay) * v_t``, ``m_0 = 0``, reported as
    ``m_t / (1 - decay ** t)``, so a constant series is returned unchanged and the first
    value is the first sample.  Missing values (``None``/NaN) are skipped: they give NaN
    and leave the average as it was."""
    if not 0 <= decay < 1:
        raise ValueError(f"decay must be in [0, 1), got {decay}")
    out = np.full(len(values), np.nan)
    m, t = 0.0, 0
    for i, v in enumerate(values):
        if v is None or not np.isfinite(v):
            continue
        t += 1
        m = decay * m + (1 - decay) * float(v)
        out[i] = m / (1 - decay ** t)
    return out


def curves_figure(history: Sequence[dict], *, fig=None, title: Optional[str] = None):
    """Four panels against epochs: test accuracy, mean reward, mean baseline, entropy."""
    fig = ensure_figure(fig, (10, 2.6))
    axes = fig.subplots(1, len(CURVES))
    x = [h["epoch"] for h in history]
    for ax, (key, label, color) in zip(axes, CURVES):
        y = [np.nan if h.get(key) is None else h[key] for h in history]
        curves(x, {label: y}, ax=ax, colors={label: color}, marker="o" if len(x) < 15 else None,
                     xlabel="epoch", title=label, legend=False)
    if title:
        fig.suptitle(title)
    return fig


def live_figure(steps: Sequence[dict], history: Sequence[dict], *, fig=None, decay: float = SMOOTHING):
    """The live panel's curves: test accuracy after each epoch (top, against the step at
    which the epoch ended) over the per-step reward, baseline and entropy (bottom row:
    each logged step faint, its :func:`smooth` average solid).  Works from the first step
    on; a statistic the objective does not measure (``None``) is shown as such."""
    fig = ensure_figure(fig, (10, 4.4))
    grid = fig.add_gridspec(2, len(STEP_CURVES), height_ratios=[1, 1.25])
    top = fig.add_subplot(grid[0, :])
    x_end = max([s["step"] for s in steps] + [h["step"] for h in history] + [1])
    if history:
        curves([h["step"] for h in history], {"test accuracy": [h["test_acc"] for h in history]},
                     ax=top, colors={"test accuracy": POLICY}, marker="o", legend=False)
        last = history[-1]
        top.set_title(f"test accuracy {last['test_acc']:.3f} after {plural(int(last['epoch']), 'epoch')}",
                      fontsize=10)
    else:
        top.text(0.5, 0.5, "test accuracy: measured at the end of each epoch", ha="center", va="center",
                 transform=top.transAxes, color=MUTED)
        top.set_title("test accuracy", fontsize=10)
    top.set_xlim(0, x_end)
    top.set_ylim(0, 1)
    top.set_ylabel("accuracy")
    x = [s["step"] for s in steps]
    for j, (key, title, color) in enumerate(STEP_CURVES):
        ax = fig.add_subplot(grid[1, j], sharex=top)
        y = [s.get(key) for s in steps]
        if steps and all(v is None for v in y):
            ax.text(0.5, 0.5, "not measured by\nthis objective", ha="center", va="center",
                    transform=ax.transAxes, color=MUTED)
        elif steps:
            raw = np.array([np.nan if v is None else v for v in y], dtype=float)
            ax.plot(x, raw, color=color, alpha=0.3, linewidth=0.8, label="each step")
            ax.plot(x, smooth(y, decay), color=color, linewidth=1.8, label="smoothed")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step")
        tidy(ax)
    tidy(top)
    return fig


def draw_snapshot(fig, recorder, label_names, i: int):
    """The policy on each probe image after the ``i``-th recorded epoch of ``recorder`` (a
    :class:`~pgviz.figures.panel.Recorder`): the image above its bars, the true label green."""
    probs = recorder.snapshots[i]
    n = len(probs)
    axes = fig.subplots(2, n, gridspec_kw={"height_ratios": [1, 1.2]})
    axes = np.asarray(axes).reshape(2, n)
    short = [s[:4] for s in label_names]
    for j in range(n):
        true = int(recorder.labels[j])
        image(recorder.images[j].numpy(), ax=axes[0, j], title=label_names[true])
        colors = [REWARD if k == true else POLICY for k in range(len(short))]
        ax = axes[1, j]
        bar_chart(probs[j], short, ax=ax, color=colors, ylim=(0, 1), annotate=False, rotate=90)
        ax.tick_params(axis="both", labelsize=9)  # legible at the slider's size
        tick = ax.get_xticklabels()[true]  # the true label marked on the axis too, not by colour only
        tick.set_fontweight("bold")
        tick.set_color(REWARD)
    fig.suptitle(f"policy after {plural(int(recorder.epochs[i]), 'epoch')} (green: the true label)")


def snapshot_slider(recorder, label_names: Sequence[str]):
    """A frame slider over the policy snapshots of a :class:`~pgviz.figures.panel.Recorder`
    (:func:`draw_snapshot`; works in the static book too)."""
    epochs = [int(e) for e in recorder.epochs]
    return interactive(
        lambda fig, epoch: draw_snapshot(fig, recorder, label_names, epochs.index(epoch)),
        {"epoch": Control(epochs, value=epochs[-1], label="after epoch", fmt="{:d}")},
        figsize=(10, 4.6),
    )
