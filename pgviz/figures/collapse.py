"""Figures of the two collapse stories (Policy regularisation), drawn from the numbers of
:mod:`pgviz.sims.collapse`: single runs and their outcomes for one entropy weight (slider
figures), and the outcomes against the entropy weight.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from ..sims.collapse import dog_horse_optimum
from ..sims.policies import DOG, HORSE
from .style import (DOG_COLOR, HORSE_COLOR, MUTED, POLICY, REWARD, as_numpy, ensure_axes, nearest_index,
                    outcome_bars, tidy)

__all__ = ["draw_collapse_runs", "draw_collapse_summary", "draw_dog_horse_runs", "draw_dog_horse_summary"]


def draw_collapse_runs(fig, sweep: dict, entropy_weight: float, n_shown: int = 30):
    """Slider, this book's partial-credit variant: ``P(horse)`` and ``P(dog)`` over
    training for one entropy weight (:func:`~pgviz.sims.collapse.collapse_sweep`).

    Left: runs (thin), their mean (thick) and the exact-gradient path (dashed).  Right: the
    fraction of runs that locked onto "dog", found "horse" or stayed spread out.
    """
    lam = as_numpy(sweep["entropy_weights"]).tolist()
    i = min(range(len(lam)), key=lambda j: abs(lam[j] - entropy_weight))
    steps = as_numpy(sweep["steps"])
    hist = sweep["history"][:, i]                                    # [T, n_seeds, K]
    ax, ax2 = fig.subplots(1, 2, width_ratios=[2.2, 1])
    for label, idx, color in (("dog", DOG, DOG_COLOR), ("horse", HORSE, POLICY)):
        traj = as_numpy(hist[..., idx]).T                                  # [n_seeds, T]
        for row in traj[:n_shown]:
            ax.plot(steps, row, color=color, alpha=0.15, linewidth=0.7)
        ax.plot(steps, traj.mean(0), color=color, linewidth=2.4, label=f"P({label}), mean of {traj.shape[0]} runs")
        ax.plot(steps, as_numpy(sweep["exact_history"][:, i, idx]), "--", color=color, linewidth=1.3,
                label=f"P({label}), exact-gradient path")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("step")
    ax.set_ylabel("probability")
    ax.set_title(f"entropy weight $\\lambda = {entropy_weight:g}$")
    ax.legend(frameon=False, fontsize=7, loc="center right")
    tidy(ax)
    outcome_bars(ax2, [float(sweep[k][i]) for k in ("locked", "found", "spread")],
                  [DOG_COLOR, POLICY, MUTED], ["locked on\ndog", "found\nhorse", "still\nspread"],
                  f"after {int(steps[-1])} steps")
    return fig


def draw_collapse_summary(ax, sweep: dict):
    """The partial-credit variant: outcome fractions against the entropy weight, with
    the mean final ``P(horse)``
    and the regularised optimum ``softmax(R / lambda)`` (eq:regularised-optimum)."""
    lam = as_numpy(sweep["entropy_weights"])
    x = np.arange(len(lam))
    for key, color, label in (("locked", DOG_COLOR, "runs locked on dog"), ("found", POLICY, "runs that found horse"),
                              ("spread", MUTED, "runs still spread out")):
        ax.plot(x, as_numpy(sweep[key]), "o-", color=color, linewidth=2, label=label)
    ax.plot(x, as_numpy(sweep["mean_final"][:, HORSE]), "s--", color=REWARD, linewidth=1.2,
            label="mean final P(horse)")
    ax.plot(x, as_numpy(sweep["optimum"][:, HORSE]), "x:", color="black", linewidth=1,
            label=r"P(horse) in $\mathrm{softmax}(R/\lambda)$")
    ax.set_xticks(x, [f"{v:g}" for v in lam])
    ax.set_xlabel(r"entropy weight $\lambda$")
    ax.set_ylabel("fraction of runs / probability")
    ax.set_ylim(-0.03, 1.05)
    ax.legend(frameon=False, fontsize=8, loc="center left")
    tidy(ax)
    return ax


def draw_dog_horse_runs(fig, sim: dict, entropy_weight: float, exact: Optional[dict] = None,
                        n_shown: int = 30):
    """Slider, the article's story: P(horse | horse image) over training for one
    entropy weight (:func:`~pgviz.sims.collapse.dog_horse_simulate`).

    Left: single runs (thin), their mean (thick), P(dog | horse image) (brown, mean), the
    step from which the feature tells dogs from horses (dotted) and, if ``exact`` (a run with
    ``exact=True``) is given, the exact-gradient path (dashed).  Right: the fraction of runs
    that never learned to say "horse" for a horse image (P < 0.1 at the end), learned it
    (P > 0.9) or sit in between.
    """
    lam = as_numpy(sim["entropy_weights"]).tolist()
    i = nearest_index(lam, entropy_weight)
    steps = as_numpy(sim["steps"])
    hh = as_numpy(sim["p_horse_horse"][:, i]).T                       # [n_runs, T]
    dh = as_numpy(sim["p_dog_horse"][:, i]).T
    ax, ax2 = fig.subplots(1, 2, width_ratios=[2.2, 1])
    for row in hh[:n_shown]:
        ax.plot(steps, row, color=HORSE_COLOR, alpha=0.15, linewidth=0.7)
    ax.plot(steps, hh.mean(0), color=HORSE_COLOR, linewidth=2.4,
            label=f"P(horse | horse image), mean of {hh.shape[0]} runs")
    ax.plot(steps, dh.mean(0), color=DOG_COLOR, linewidth=2.0, label="P(dog | horse image), mean")
    if exact is not None:
        j = nearest_index(as_numpy(exact["entropy_weights"]).tolist(), entropy_weight)
        ax.plot(as_numpy(exact["steps"]), as_numpy(exact["p_horse_horse"][:, j, 0]), "--", color="black",
                linewidth=1.3, label="P(horse | horse image), exact gradient")
    ax.axvline(sim["feature_step"], color=MUTED, linestyle=":", linewidth=1.5)
    ax.text(sim["feature_step"], 1.04, " feature learned", color="#555555", fontsize=8, va="bottom")
    ax.set_ylim(-0.02, 1.1)
    ax.set_xlabel("step (one image per step)")
    ax.set_ylabel("probability")
    ax.set_title(f"entropy weight $\\lambda = {lam[i]:g}$", loc="left")
    ax.legend(frameon=False, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
    tidy(ax)
    outcome_bars(ax2, [float(sim[k][i]) for k in ("collapsed", "learned", "between")],
                  [DOG_COLOR, HORSE_COLOR, MUTED], ["never says\nhorse", "learned\nhorse", "in\nbetween"],
                  f"horse images, after {int(steps[-1]):,} steps")
    return fig


def draw_dog_horse_summary(ax, sim: dict, exact: Optional[dict] = None):
    """The article's story: outcome fractions against the entropy weight, with the
    mean final P(horse | horse image), its exact-gradient value (if ``exact`` is given) and
    the regularised optimum ``softmax(R / lambda)`` (eq:regularised-optimum)."""
    ax = ensure_axes(ax, (7.5, 4))
    lam = as_numpy(sim["entropy_weights"])
    x = np.arange(len(lam))
    for key, color, label in (("collapsed", DOG_COLOR, "runs that never say horse (P < 0.1)"),
                              ("learned", HORSE_COLOR, "runs that learned horse (P > 0.9)")):
        ax.plot(x, as_numpy(sim[key]), "o-", color=color, linewidth=2, label=label)
    ax.plot(x, as_numpy(sim["p_horse_horse"][-1]).mean(-1), "s--", color=REWARD, linewidth=1.2,
            label="mean final P(horse | horse image)")
    if exact is not None:
        ax.plot(x, as_numpy(exact["p_horse_horse"][-1, :, 0]), "^:", color="black", linewidth=1,
                markerfacecolor="white", label="exact-gradient path, final")
    ax.plot(x, as_numpy(dog_horse_optimum(torch.as_tensor(lam))), "x", color="black",
            markersize=8, label=r"optimum $\mathrm{softmax}(R/\lambda)$")
    ax.set_xticks(x, [f"{v:g}" for v in lam])
    ax.set_xlabel(r"entropy weight $\lambda$")
    ax.set_ylabel("fraction of runs / probability")
    ax.set_ylim(-0.03, 1.05)
    ax.legend(frameon=False, fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    tidy(ax)
    return ax
