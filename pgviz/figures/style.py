"""The figures' palette and plumbing: the article's colours, one colour per training setting,
and the small helpers every figure module shares.

Colours: blue for the policy and the baseline, green for the reward, orange for gradients
(:data:`COLORS`); brown for the tempting wrong answer ("dog") of the collapse stories.
Every figure function draws into an ``ax`` (or ``fig``) it is given, or creates a new figure
when none is given (:func:`ensure_axes`, :func:`ensure_figure`), and returns what it drew
into.  Nothing here keeps global state or changes matplotlib's rcParams, so the figures are
safe to call from :func:`pgviz.widgets.interactive` draw callbacks.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np

__all__ = [
    "COLORS", "POLICY", "BASELINE", "REWARD", "GRADIENT", "MUTED", "DOG_COLOR", "HORSE_COLOR",
    "setting_color", "new_axes", "ensure_axes", "ensure_figure", "set_labels", "as_numpy",
    "tidy", "outcome_bars", "nearest_index",
]

#: The article's palette: blue for the policy.
POLICY = "#1f77b4"
#: Blue, like the policy: both are outputs of the network.
BASELINE = POLICY
#: Green for the reward.
REWARD = "#2ca02c"
#: Orange for gradients.
GRADIENT = "#ff7f0e"
#: Grey, for context (e.g. the policy before a step).
MUTED = "#9a9a9a"
#: The palette by role.
COLORS: Dict[str, str] = {
    "policy": POLICY, "baseline": BASELINE, "reward": REWARD,
    "gradient": GRADIENT, "muted": MUTED,
}

#: Brown: the tempting wrong answer ("dog") in the collapse stories (Policy regularisation).
DOG_COLOR = "#8c564b"
#: The right answer on a horse image: the policy's blue.
HORSE_COLOR = POLICY


def setting_color(name: str, default: Optional[str] = None) -> Optional[str]:
    """The colour of a training setting or probe estimator (``"pg"``, ``"rloo-4"``,
    ``"learned-V"``, ...), or ``default`` for a name without one."""
    from .. import objectives  # the colours live in the objectives' registry entries

    return objectives.color(name, default)


def new_axes(figsize: Tuple[float, float] = (5, 3.2)):
    """A new figure with one Axes (through pyplot, so notebooks show it)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def ensure_axes(ax, figsize=(5, 3.2)):
    """``ax``, or a new figure's Axes of size ``figsize`` when ``ax`` is None (:func:`new_axes`)."""
    return new_axes(figsize) if ax is None else ax


def ensure_figure(fig, figsize):
    """``fig``, or a new pyplot figure of size ``figsize`` (constrained layout) when it is None."""
    if fig is not None:
        return fig
    import matplotlib.pyplot as plt

    return plt.figure(figsize=figsize, layout="constrained")


def set_labels(ax, xlabel=None, ylabel=None, title=None) -> None:
    """Set whichever of the axis labels and the title are given."""
    if xlabel:
        ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)

def as_numpy(x) -> np.ndarray:
    """A float numpy array of ``x`` (a tensor, detached and on the CPU, a list or a number)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=float)


def outcome_bars(ax, fractions, colors, names, title) -> None:
    """Bars of the share of runs ending in each outcome, labelled in percent (collapse figures)."""
    bars = ax.bar(range(len(fractions)), fractions, color=colors, width=0.6)
    ax.bar_label(bars, labels=[f"{v:.0%}" for v in fractions], fontsize=9)
    ax.set_xticks(range(len(names)), names)
    ax.set_ylim(0, 1.12)
    ax.set_title(title, fontsize=10)
    tidy(ax)


def tidy(ax) -> None:
    """Hide the top and right spines (the book's plain look)."""
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)


def nearest_index(values, value) -> int:
    """The index of the entry of ``values`` closest to ``value`` (a slider value -> a row)."""
    values = list(values)
    return min(range(len(values)), key=lambda j: abs(values[j] - value))
