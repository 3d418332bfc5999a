"""Figures of the estimator's Monte Carlo error (The policy gradient) and variance
(Baselines), drawn from the numbers of :mod:`pgviz.sims.estimates`.

``draw(fig_or_ax, result, ...)`` functions, for :func:`pgviz.widgets.interactive`.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ..data import CIFAR10_CLASSES
from .style import BASELINE, GRADIENT, MUTED, REWARD, as_numpy, tidy

__all__ = ["draw_mc_errors", "draw_mc_estimate", "draw_variance_study", "draw_baseline_slider"]


def draw_mc_errors(ax, result: dict, n_points: int = 40):
    """The policy gradient: Monte Carlo error against ``n`` on log-log axes (:func:`~pgviz.sims.estimates.mc_error_scaling`).

    Faint dots: single repeats; line: root-mean-square error; dashed: ``sqrt(Var / n)``
    (eq:mc-mean); dotted grey: a slope -1/2 reference through the first point.
    """
    n, rms, pred = as_numpy(result["n"]), as_numpy(result["rms_error"]), as_numpy(result["predicted"])
    errs = as_numpy(result["errors"])[:, :n_points]
    floor = float(rms.min()) / 30  # a 0/1 reward makes some errors exactly 0: keep them on the axes
    errs = errs.clip(min=floor)
    jitter = 1.0 + 0.15 * (np.linspace(-1, 1, errs.shape[1]))
    for i in range(len(n)):
        ax.scatter(n[i] * jitter, errs[i], s=6, color=GRADIENT, alpha=0.25, linewidths=0)
    ax.plot(n, rms, "o-", color=GRADIENT, linewidth=2, label="measured RMS error")
    ax.plot(n, pred, "--", color="black", linewidth=1.2, label=r"theory $\sqrt{\mathrm{Var}/n}$")
    ax.plot(n, rms[0] * (n / n[0]) ** -0.5, ":", color=MUTED, linewidth=1.5, label="slope $-1/2$")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("number of samples $n$")
    ax.set_ylabel(r"$\|\hat g_n - \nabla G\|$")
    ax.set_title(f"error of the Monte Carlo gradient (fitted slope {result['slope']:.3f})")
    ax.legend(frameon=False, fontsize=9)
    tidy(ax)
    return ax


def draw_mc_estimate(fig, result: dict, n: int, labels: Sequence[str] = tuple(CIFAR10_CLASSES), shown: int = 3):
    """The policy gradient, slider: the exact gradient (bars) and ``shown`` Monte Carlo means from ``n`` samples."""
    ax = fig.add_subplot()
    i = [int(v) for v in as_numpy(result["n"])].index(int(n))
    exact = as_numpy(result["exact"])
    est = as_numpy(result["estimates"][i, :shown])
    x = np.arange(len(exact))
    ax.bar(x, exact, width=0.7, color="none", edgecolor=GRADIENT, linewidth=2,
           label=r"exact $\nabla G$ (sum over 10 actions)")
    for j in range(est.shape[0]):
        ax.scatter(x + (j - (shown - 1) / 2) * 0.18, est[j], s=22, color=GRADIENT, alpha=0.9,
                   marker="os^"[j % 3], label=f"estimate {j + 1} from $n={int(n):,}$" if j < 3 else None)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(x, labels, rotation=30, ha="right")
    ax.set_ylim(-0.6, 0.6)
    ax.set_ylabel("gradient on each logit")
    ax.set_title(f"{shown} independent Monte Carlo estimates, $n = {int(n):,}$ samples each")
    # below both panels, legible at the slider's size (the curve keeps the axes to itself)
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=3, frameon=False, fontsize=9)
    tidy(ax)
    return ax


def draw_variance_study(ax, study: dict, crossover: Optional[float] = None):
    """Baselines: exact (lines) and measured (dots) variance against ``pi_y`` for three baselines
    (:func:`~pgviz.sims.estimates.variance_study`; ``crossover``: :func:`~pgviz.sims.estimates.value_baseline_crossover`)."""
    p = as_numpy(study["p"])
    styles = {"none": (MUTED, "no baseline ($b = 0$)"),
              "value": (BASELINE, r"value baseline $b = V = \pi_y$"),
              "optimal": (GRADIENT, r"optimal baseline $b^*$")}
    for name, (color, label) in styles.items():
        ax.plot(p, as_numpy(study[f"exact_{name}"]), color=color, linewidth=2, label=label + " (exact)")
        ax.plot(p, as_numpy(study[f"measured_{name}"]), "o", color=color, markersize=4, markerfacecolor="white")
    ax.plot([], [], "o", color="black", markerfacecolor="white", markersize=4, label="measured (redraws)")
    if crossover is not None:
        ax.axvline(crossover, color="black", linestyle=":", linewidth=1)
        ax.text(crossover, ax.get_ylim()[1] * 0.98, f" $\\pi_y = {crossover:.2f}$", va="top", fontsize=9)
    ax.set_xlabel(r"probability of the correct label $\pi_y$")
    ax.set_ylabel("variance (trace of covariance)")
    ax.legend(frameon=False, fontsize=8)
    tidy(ax)
    return ax




def draw_baseline_slider(fig, result: dict):
    """Baselines, slider: the variance as a function of the baseline (a parabola) at one ``pi_y``,
    from :func:`~pgviz.sims.estimates.baseline_slice`.

    Left: exact curve (eq:variance), its minimum ``b*``, the value ``V = pi_y``, and the chosen
    ``b`` with a measured point.  Right: each kind of draw's share of the second moment
    (:func:`~pgviz.exact.variance_terms`) at the chosen ``b``: the correct label vs the wrong
    ones, on one scale for every ``b`` at this ``pi_y``.
    """
    b, p, b_opt, measured = result["b"], result["p"], result["b_opt"], result["measured"]
    curve = result["curve"]
    ax, ax2 = fig.subplots(1, 2, width_ratios=[2, 1])
    ax.plot(as_numpy(result["bs"]), as_numpy(curve), color=GRADIENT, linewidth=2, label="exact variance")
    ax.plot([b_opt], [result["var_opt"]], "*", color="black", markersize=12, label=f"minimum $b^* = {b_opt:.3f}$")
    ax.plot([p], [result["var_value"]], "s", color=BASELINE, markersize=7, label=rf"value $V = \pi_y = {p:g}$")
    ax.plot([0.0], [result["var_none"]], "D", color=MUTED, markersize=6, label="no baseline")
    ax.axvline(b, color="black", linewidth=0.8, linestyle="--")
    ax.plot([b], [measured], "o", color="black", markerfacecolor="white", markersize=7,
            label=f"measured at $b = {b:g}$: {measured:.3f}")
    ax.set_xlabel("baseline $b$")
    ax.set_ylabel("variance (trace of covariance)")
    ax.set_ylim(0, float(curve.max()) * 1.05)
    ax.set_title(rf"$\pi_y = {p:g}$: variance is a parabola in $b$")
    # below both panels, legible at the slider's size (the curve keeps the axes to itself)
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=3, frameon=False, fontsize=9)
    tidy(ax)
    shares = as_numpy(result["shares"])
    ax2.bar([0, 1], shares, color=[REWARD, MUTED], width=0.6)
    ax2.set_xticks([0, 1], ["correct label\n(R = 1)", f"{result['n_actions'] - 1} wrong labels\n(R = 0)"])
    ax2.set_title("who makes the noise:\n" + r"$\pi_a (R_a - b)^2 \|e_a - \pi\|^2$ summed by kind", fontsize=9)
    ax2.set_ylim(0, result["share_top"] * 1.15)
    for i, s in enumerate(shares):
        ax2.text(i, s, f"{s:.3f}", ha="center", va="bottom", fontsize=9)
    tidy(ax2)
    return fig
