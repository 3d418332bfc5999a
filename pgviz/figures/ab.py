"""Figures of the A/B game (Averaging over time), drawn from :mod:`pgviz.sims.ab`: the two
possible single-sample steps and their expectation, and many runs at one setting.

:func:`draw_ab_steps` evaluates the closed form :func:`pgviz.sims.ab.ab_steps` itself (no
sampling), so that a slider can move the rewards and the baseline freely.
"""
from __future__ import annotations

from typing import Optional

from ..sims.ab import ab_index, ab_steps
from .charts import runs
from .style import GRADIENT, MUTED, POLICY, as_numpy, tidy

__all__ = ["draw_ab_steps", "draw_ab_runs"]


def draw_ab_steps(fig, r_a: float, r_b: float, baseline: float, lr: float = 0.01):
    """Slider: the two possible single-sample steps from 50/50 and their expectation
    (eq:ab-expected), as changes of the logit gap ``theta_B - theta_A`` and of ``P(B)``."""
    s = ab_steps(r_a, r_b, 0.5, lr, baseline)
    gap = lambda v: float(v[1] - v[0])  # noqa: E731
    vals = [gap(s["step_a"]), gap(s["step_b"]), gap(s["expected"])]
    ax, ax2 = fig.subplots(1, 2)
    bars = ax.bar([0, 1, 2], vals, color=[GRADIENT, GRADIENT, "#b35806"], width=0.6)
    bars[2].set_hatch("//")
    ax.bar_label(bars, labels=[f"{v:+.3g}" for v in vals], fontsize=9, padding=2)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks([0, 1, 2], ["A sampled\n(prob 0.5)", "B sampled\n(prob 0.5)", "expected\nstep"])
    lim = max(abs(v) for v in vals + [1e-9]) * 1.3
    ax.set_ylim(-lim, lim)
    ax.set_ylabel(r"change of $\theta_B - \theta_A$")
    ax.set_title(f"$R_A = {r_a:g}$, $R_B = {r_b:g}$, $b = {baseline:g}$, lr $= {lr:g}$", fontsize=10)
    tidy(ax)
    pb = [0.5, float(s["p_b_after_a"]), float(s["p_b_after_b"])]
    bars2 = ax2.bar([0, 1, 2], pb, color=[MUTED, POLICY, POLICY], width=0.6)
    ax2.bar_label(bars2, labels=[f"{v:.3f}" for v in pb], fontsize=9)
    ax2.set_xticks([0, 1, 2], ["before", "after an\nA step", "after a\nB step"])
    ax2.set_ylim(0, 1.1)
    ax2.set_ylabel("P(B)")
    ax2.set_title("the policy after one step", fontsize=10)
    tidy(ax2)
    return fig


def draw_ab_runs(fig, ab: dict, index: Optional[tuple] = None, n_shown: int = 30, **values: float):
    """Slider: P(B) over steps for many runs at one setting of :func:`~pgviz.sims.ab.ab_runs`.

    Give the setting as an ``index`` tuple, or by value (``r_a=..., r_b=..., lr=..., baseline=...``)
    for an :func:`~pgviz.sims.ab.ab_sweep`.
    """
    if index is None:
        index = ab_index(ab, **values)
    p = as_numpy(ab["p_b"][(slice(None),) + tuple(index)]).T            # [n_runs, T]
    exact = as_numpy(ab["p_b_exact"][(slice(None),) + tuple(index)])
    steps = list(range(p.shape[1]))
    ax = fig.add_subplot()
    runs(steps, p, ax=ax, color=POLICY, n_shown=n_shown, label=f"mean of {p.shape[0]} runs",
               xlabel="step", ylabel="P(B)", ylim=(-0.02, 1.02))
    ax.plot(steps, exact, "--", color="black", linewidth=1.2, label="exact-gradient path")
    ax.axhline(0.5, color=MUTED, linewidth=0.6)
    ax.legend(frameon=False, fontsize=8, loc="lower right")
    if values:
        ax.set_title(f"$R_A = {values['r_a']:g}$, $R_B = {values['r_b']:g}$, lr $= {values['lr']:g}$, "
                     f"$b = {values['baseline']:g}$; final P(B) < 0.1 in {float((p[:, -1] < 0.1).mean()):.0%} of runs",
                     fontsize=10)
    return ax
