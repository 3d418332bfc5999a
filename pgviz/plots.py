"""Figures for the book, in the article's colours.

Colours: blue for the policy and the baseline, green for the reward, orange for
gradients (:data:`COLORS`).  Every function draws into an ``ax`` (or ``fig``) it
is given, or creates a new figure when none is given, and returns what it drew
into.  Nothing here keeps global state or changes matplotlib's rcParams, so the
functions are safe to call from :func:`pgviz.widgets.interactive` draw
callbacks::

    from pgviz import plots, widgets
    widgets.interactive(
        lambda fig, action, baseline: plots.article_pair(action, baseline=baseline, fig=fig),
        {"action": ["horse", "dog"], "baseline": [0.0, 0.175, 0.5]},
    )

Groups:

* generic helpers other chapters use: :func:`bar_chart`, :func:`curves`,
  :func:`runs`, :func:`histogram`, :func:`running_mean`, :func:`convergence`,
  :func:`image`;
* the article's "What does it do?" figures: :func:`policy_bars` (and the
  article's ten-label view, :func:`policy_bars_ten`, :func:`policy_views`),
  :func:`baseline_vs_reward`, :func:`grad_log_policy_bars`,
  :func:`logit_grad_bars`, and the composites :func:`horse_and_policy`,
  :func:`article_pair`, :func:`spread_panels`;
* :func:`set_probability`, which moves one class's probability while keeping
  the others in proportion (for probability sliders);
* the toy simulations' figures, ``draw_*`` (one per :mod:`pgviz.bandit`
  experiment: :func:`draw_mc_errors`, :func:`draw_mc_estimate`,
  :func:`draw_variance_study`, :func:`draw_baseline_slider`,
  :func:`draw_collapse_runs`, :func:`draw_collapse_summary`,
  :func:`draw_dog_horse_runs`, :func:`draw_dog_horse_summary`,
  :func:`draw_ab_steps`, :func:`draw_ab_runs`);
* :func:`table`, the chapters' small HTML results tables.
"""
from __future__ import annotations

from typing import Dict, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from . import bandit, estimator

__all__ = [
    "COLORS", "POLICY", "BASELINE", "REWARD", "GRADIENT", "MUTED",
    "new_axes", "bar_chart", "curves", "runs", "histogram", "running_mean", "convergence", "image",
    "policy_bars", "ten_class_probs", "policy_bars_ten", "policy_views",
    "baseline_vs_reward", "grad_log_policy_bars", "logit_grad_bars",
    "horse_and_policy", "article_pair", "spread_panels", "set_probability",
    "DOG_COLOR", "draw_mc_errors", "draw_mc_estimate", "draw_variance_study", "draw_baseline_slider",
    "draw_collapse_runs", "draw_collapse_summary", "HORSE_COLOR", "draw_dog_horse_runs",
    "draw_dog_horse_summary", "draw_ab_steps", "draw_ab_runs",
    "Table", "table",
]

#: The article's palette.
POLICY = "#1f77b4"  # blue
BASELINE = POLICY  # blue, like the policy: both are outputs of the network
REWARD = "#2ca02c"  # green
GRADIENT = "#ff7f0e"  # orange
MUTED = "#9a9a9a"  # grey, for context (e.g. the policy before a step)
COLORS: Dict[str, str] = {
    "policy": POLICY, "baseline": BASELINE, "reward": REWARD,
    "gradient": GRADIENT, "muted": MUTED,
}


# ----------------------------------------------------------------------------
# plumbing
# ----------------------------------------------------------------------------
def new_axes(figsize: Tuple[float, float] = (5, 3.2)):
    """A new figure with one Axes (through pyplot, so notebooks show it)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def _axes(ax, figsize=(5, 3.2)):
    return new_axes(figsize) if ax is None else ax


def _figure(fig, figsize):
    if fig is not None:
        return fig
    import matplotlib.pyplot as plt

    return plt.figure(figsize=figsize, layout="constrained")


def _labels(ax, xlabel=None, ylabel=None, title=None) -> None:
    """Set whichever of the axis labels and the title are given."""
    if xlabel:
        ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)


def _numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=float)


def _outcome_bars(ax, fractions, colors, names, title) -> None:
    """Bars of the share of runs ending in each outcome, labelled in percent (collapse figures)."""
    bars = ax.bar(range(len(fractions)), fractions, color=colors, width=0.6)
    ax.bar_label(bars, labels=[f"{v:.0%}" for v in fractions], fontsize=9)
    ax.set_xticks(range(len(names)), names)
    ax.set_ylim(0, 1.12)
    ax.set_title(title, fontsize=10)
    _tidy(ax)


def _tidy(ax) -> None:
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)


# ----------------------------------------------------------------------------
# generic helpers
# ----------------------------------------------------------------------------
def bar_chart(
    values,
    labels: Optional[Sequence[str]] = None,
    *,
    ax=None,
    color: Union[str, Sequence[str]] = POLICY,
    title: Optional[str] = None,
    ylabel: Optional[str] = None,
    ylim: Optional[Tuple[float, float]] = None,
    annotate: bool = True,
    fmt: str = "{:.3g}",
    highlight: Optional[int] = None,
    rotate: float = 0,
):
    """Vertical bars with their values written on them.

    ``highlight`` outlines one bar (e.g. the sampled action).  Negative values
    hang below a zero line.  Returns the Axes.
    """
    ax = _axes(ax)
    v = _numpy(values).reshape(-1)
    labels = list(labels) if labels is not None else [str(i) for i in range(len(v))]
    x = np.arange(len(v))
    bars = ax.bar(x, v, color=color, width=0.7)
    if highlight is not None:
        bars[highlight].set_edgecolor("black")
        bars[highlight].set_linewidth(2.0)
    ax.set_xticks(x, labels, rotation=rotate, ha="right" if rotate else "center")
    if (v < 0).any():
        ax.axhline(0, color="black", linewidth=0.8)
    if ylim is not None:
        ax.set_ylim(*ylim)
    if annotate:
        ax.bar_label(bars, labels=["0" if t == 0 else fmt.format(t) for t in v], padding=2, fontsize=9)
        lo, hi = ax.get_ylim()  # leave room for the labels
        pad = 0.1 * (hi - lo)
        ax.set_ylim(lo - pad if lo < 0 else lo, hi + pad if hi > 0 else hi)
    if title:
        ax.set_title(title)
    if ylabel:
        ax.set_ylabel(ylabel)
    _tidy(ax)
    return ax


def curves(
    x,
    ys: Mapping[str, Sequence[float]],
    *,
    ax=None,
    xlabel: Optional[str] = None,
    ylabel: Optional[str] = None,
    title: Optional[str] = None,
    logx: bool = False,
    logy: bool = False,
    colors: Optional[Mapping[str, str]] = None,
    styles: Optional[Mapping[str, str]] = None,
    marker: Optional[str] = None,
    legend: bool = True,
    ylim: Optional[Tuple[float, float]] = None,
):
    """One line per entry of ``ys`` (label -> y values) against ``x``.

    ``colors`` / ``styles`` map labels to a colour / line style.  Returns the Axes.
    """
    ax = _axes(ax)
    x = _numpy(x)
    for i, (label, y) in enumerate(ys.items()):
        ax.plot(
            x, _numpy(y), label=label, marker=marker,
            color=(colors or {}).get(label, f"C{i}"),
            linestyle=(styles or {}).get(label, "-"),
        )
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    if ylim is not None:
        ax.set_ylim(*ylim)
    _labels(ax, xlabel, ylabel, title)
    if legend and len(ys) > 1:
        ax.legend(frameon=False, fontsize=9)
    _tidy(ax)
    return ax


def runs(
    x,
    trajectories,
    *,
    ax=None,
    color: str = POLICY,
    n_shown: int = 30,
    label: Optional[str] = "mean over runs",
    band: Tuple[float, float] = (0.1, 0.9),
    xlabel: Optional[str] = None,
    ylabel: Optional[str] = None,
    title: Optional[str] = None,
    ylim: Optional[Tuple[float, float]] = None,
):
    """Many simulated runs: ``trajectories`` is ``[n_runs, len(x)]``.

    Draws ``n_shown`` runs as thin lines, the quantile ``band`` shaded and the
    mean as a thick line.  Returns the Axes.
    """
    ax = _axes(ax)
    x = _numpy(x)
    t = _numpy(trajectories)
    if t.ndim == 1:
        t = t[None]
    for row in t[:n_shown]:
        ax.plot(x, row, color=color, alpha=0.18, linewidth=0.8)
    lo, hi = np.quantile(t, band[0], axis=0), np.quantile(t, band[1], axis=0)
    ax.fill_between(x, lo, hi, color=color, alpha=0.15, linewidth=0,
                    label=f"{int(band[0] * 100)}-{int(band[1] * 100)}% of runs")
    ax.plot(x, t.mean(0), color=color, linewidth=2.2, label=label)
    if ylim is not None:
        ax.set_ylim(*ylim)
    _labels(ax, xlabel, ylabel, title)
    ax.legend(frameon=False, fontsize=9)
    _tidy(ax)
    return ax


def histogram(
    samples,
    *,
    ax=None,
    bins: Union[int, Sequence[float]] = 30,
    color: str = GRADIENT,
    mark: Optional[Mapping[str, float]] = None,
    xlabel: Optional[str] = None,
    title: Optional[str] = None,
):
    """A histogram of ``samples``; ``mark`` (label -> x) adds labelled vertical lines."""
    ax = _axes(ax)
    ax.hist(_numpy(samples).reshape(-1), bins=bins, color=color, alpha=0.8)
    for i, (label, x) in enumerate((mark or {}).items()):
        ax.axvline(float(x), color="black", linestyle=["-", "--", ":"][i % 3], linewidth=1.2, label=label)
    if mark:
        ax.legend(frameon=False, fontsize=9)
    if xlabel:
        ax.set_xlabel(xlabel)
    if title:
        ax.set_title(title)
    _tidy(ax)
    return ax


def running_mean(
    samples,
    *,
    ax=None,
    expected: Optional[float] = None,
    sd: Optional[float] = None,
    color: str = REWARD,
    label: str = "running average",
    xlabel: str = "number of samples n",
    ylabel: Optional[str] = None,
    ylim: Optional[Tuple[float, float]] = None,
    logx: bool = True,
):
    """The running average of ``samples`` against the number of samples, with the
    value it converges to (``expected``, dashed) and, given the standard deviation
    ``sd`` of one sample, the band ``expected +- sd / sqrt(n)`` (dotted)."""
    ax = _axes(ax)
    v = _numpy(samples).reshape(-1)
    n = np.arange(1, len(v) + 1)
    ax.plot(n, np.cumsum(v) / n, color=color, label=label)
    if expected is not None:
        ax.axhline(expected, color="black", linestyle="--", linewidth=1.2, label=f"expected value {expected:g}")
        if sd is not None:
            half = sd / np.sqrt(n)
            ax.plot(n, expected + half, color=MUTED, linestyle=":", label="± one standard error")
            ax.plot(n, expected - half, color=MUTED, linestyle=":")
    if logx:
        ax.set_xscale("log")
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    ax.legend(frameon=False, fontsize=9)
    _tidy(ax)
    return ax


def convergence(
    ns,
    errors,
    *,
    ax=None,
    color: str = GRADIENT,
    label: str = "error",
    xlabel: str = "number of samples n",
    ylabel: str = "error",
    title: Optional[str] = None,
):
    """Errors against sample counts on log-log axes, with the line ``c / sqrt(n)``
    (``c`` fitted to the points in log space) for comparison.  Returns the Axes."""
    ax = _axes(ax)
    n = _numpy(ns).reshape(-1)
    e = _numpy(errors).reshape(-1)
    c = float(np.exp(np.mean(np.log(e) + 0.5 * np.log(n))))
    ax.plot(n, e, "o-", color=color, label=label)
    ax.plot(n, c / np.sqrt(n), "--", color=MUTED, label=f"{c:.3g} / sqrt(n), fitted")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(frameon=False, fontsize=9)
    _tidy(ax)
    return ax


def image(img, *, ax=None, title: Optional[str] = None):
    """Show an image: ``HWC`` uint8/float array, or a ``CHW`` tensor/array."""
    ax = _axes(ax, figsize=(2.6, 2.6))
    a = img.detach().cpu().numpy() if hasattr(img, "detach") else np.asarray(img)
    if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[-1] not in (1, 3):
        a = np.moveaxis(a, 0, -1)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    ax.imshow(a, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    return ax


# ----------------------------------------------------------------------------
# the article's figures
# ----------------------------------------------------------------------------
def _article(probs, labels, baseline, true_label):
    probs = list(estimator.ARTICLE["probs"]) if probs is None else list(_numpy(probs))
    labels = list(estimator.ARTICLE["labels"]) if labels is None else list(labels)
    baseline = estimator.ARTICLE["baseline"] if baseline is None else float(baseline)
    true_label = estimator.ARTICLE["true_label"] if true_label is None else true_label
    if len(probs) != len(labels):
        raise ValueError("probs and labels must have the same length")
    return probs, labels, baseline, true_label


def policy_bars(probs=None, labels=None, *, ax=None, sampled: Optional[str] = None,
                title: str = "Policy", color: str = POLICY):
    """The policy as bars (the article's first figure); ``sampled`` outlines one label.

    Defaults: the article's numbers (horse .6, dog .3, airplane .05, cat .05).
    """
    probs, labels, _, _ = _article(probs, labels, None, None)
    ax = bar_chart(probs, labels, ax=ax, color=color, title=title, ylim=(0, 1), fmt="{:.2f}",
                   highlight=labels.index(sampled) if sampled is not None else None)
    return ax


def ten_class_probs(probs=None, labels=None) -> np.ndarray:
    """The policy over all ten CIFAR-10 labels, in the data set's order (airplane, automobile,
    bird, cat, deer, dog, frog, horse, ship, truck); labels not given get 0.

    Defaults: the article's numbers, horse .6, dog .3, airplane .05, cat .05.
    """
    probs, labels, _, _ = _article(probs, labels, None, None)
    out = np.zeros(len(bandit.CIFAR10_CLASSES))
    for label, p in zip(labels, probs):
        if label not in bandit.CIFAR10_CLASSES:
            raise ValueError(f"{label!r} is not a CIFAR-10 label")
        out[bandit.CIFAR10_CLASSES.index(label)] = p
    return out


def policy_bars_ten(probs=None, labels=None, *, ax=None, sampled: Optional[str] = None,
                    title: str = "Policy, all ten labels", color: str = POLICY):
    """The article's own view of the policy: all ten CIFAR-10 labels in the data set's order,
    the ones without probability at 0 (:func:`ten_class_probs`)."""
    vals = ten_class_probs(probs, labels)
    classes = list(bandit.CIFAR10_CLASSES)
    ax = bar_chart(vals, classes, ax=_axes(ax, (6, 3.2)), color=color, title=title, ylim=(0, 1),
                   fmt="{:.2f}", rotate=45, highlight=classes.index(sampled) if sampled is not None else None)
    return ax


def policy_views(probs=None, labels=None, *, fig=None):
    """The policy two ways, side by side: the four labels that carry probability (this book's
    :func:`policy_bars`) and all ten CIFAR-10 labels in order (the article's chart)."""
    fig = _figure(fig, (8.5, 3.2))
    gs = fig.add_gridspec(1, 2, width_ratios=[4, 10])
    policy_bars(probs, labels, ax=fig.add_subplot(gs[0]), title="Four labels")
    policy_bars_ten(probs, labels, ax=fig.add_subplot(gs[1]),
                    title="All ten CIFAR-10 labels, in order")
    return fig


def baseline_vs_reward(baseline: Optional[float] = None, reward: float = 1.0, *, ax=None,
                       title: Optional[str] = None):
    """Two bars: the predicted baseline (blue) and the reward received (green)."""
    baseline = estimator.ARTICLE["baseline"] if baseline is None else float(baseline)
    ax = bar_chart([baseline, reward], ["Baseline", "Reward"], ax=ax, color=[BASELINE, REWARD],
                   title=title, ylim=(0, 1), fmt="{:.3g}")
    return ax


def grad_log_policy_bars(grad, labels=None, *, ax=None, title: str = "Grad log-policy",
                         ylim: Tuple[float, float] = (-1, 1)):
    """The gradient of the loss with respect to log-policy (orange): ``(V - R)`` at the
    sampled action, zero elsewhere.  Negative = "make this action more likely"."""
    labels = list(estimator.ARTICLE["labels"]) if labels is None else list(labels)
    return bar_chart(grad, labels, ax=ax, color=GRADIENT, title=title, ylim=ylim, fmt="{:+.3g}")


def logit_grad_bars(grad, labels=None, *, ax=None, title: str = "Grad logits",
                    ylim: Tuple[float, float] = (-1, 1)):
    """The gradient of the loss with respect to the logits (orange), i.e. what
    log-softmax spreads to every class: ``(V - R)(onehot(a) - pi)``."""
    labels = list(estimator.ARTICLE["labels"]) if labels is None else list(labels)
    return bar_chart(grad, labels, ax=ax, color=GRADIENT, title=title, ylim=ylim, fmt="{:+.3f}")


def horse_and_policy(img, probs=None, labels=None, *, fig=None, title: str = "Policy"):
    """The article's first pair: the input image and the policy the network outputs."""
    fig = _figure(fig, (7.5, 2.8))
    gs = fig.add_gridspec(1, 2, width_ratios=[1, 2])
    image(img, ax=fig.add_subplot(gs[0]), title="Input")
    policy_bars(probs, labels, ax=fig.add_subplot(gs[1]), title=title)
    return fig


def article_pair(action: str = "horse", *, probs=None, labels=None, baseline=None,
                 true_label=None, fig=None):
    """One of the article's figure pairs: after sampling ``action`` for an image of
    ``true_label``, the baseline against the reward, and the gradient on log-policy.

    With the article's numbers: ``action="horse"`` gives -0.825 on horse,
    ``action="dog"`` gives +0.175 on dog.
    """
    probs, labels, baseline, true_label = _article(probs, labels, baseline, true_label)
    reward = 1.0 if action == true_label else 0.0
    grad = estimator.log_policy_grad(probs, labels.index(action), reward, baseline)
    fig = _figure(fig, (7.5, 2.8))
    gs = fig.add_gridspec(1, 2, width_ratios=[1, 2])
    baseline_vs_reward(baseline, reward, ax=fig.add_subplot(gs[0]),
                       title=f'Sampled "{action}"')
    grad_log_policy_bars(grad, labels, ax=fig.add_subplot(gs[1]))
    return fig


def spread_panels(action: str = "horse", *, probs=None, labels=None, baseline=None,
                  true_label=None, lr: float = 1.0, fig=None):
    """How log-softmax spreads the gradient: three panels for one sampled ``action``.

    1. Grad log-policy (only the sampled action is non-zero);
    2. Grad logits ``(V - R)(onehot(a) - pi)``: every other class gets a share,
       in proportion to its probability, with the opposite sign;
    3. the policy before (grey) and after (blue) one gradient-descent step of size
       ``lr`` on the logits.
    """
    probs, labels, baseline, true_label = _article(probs, labels, baseline, true_label)
    reward = 1.0 if action == true_label else 0.0
    a = labels.index(action)
    g_logp = estimator.log_policy_grad(probs, a, reward, baseline)
    g_z = estimator.logit_grad(probs, a, reward, baseline)
    p = np.asarray(probs, dtype=float)
    z = np.log(np.clip(p, 1e-12, None)) - lr * g_z.numpy()
    after = np.exp(z - z.max())
    after /= after.sum()
    fig = _figure(fig, (8.5, 3.2))
    axs = fig.subplots(1, 3)
    grad_log_policy_bars(g_logp, labels, ax=axs[0], title=f'Grad log-policy (R = {reward:g})')
    lim = max(1.0, float(np.abs(g_z.numpy()).max()) * 1.1)
    logit_grad_bars(g_z, labels, ax=axs[1], ylim=(-lim, lim), title="Grad logits")
    x = np.arange(len(labels))
    axs[2].bar(x - 0.2, p, width=0.4, color=MUTED, label="before")
    bars = axs[2].bar(x + 0.2, after, width=0.4, color=POLICY, label="after one step")
    bars[a].set_edgecolor("black")
    bars[a].set_linewidth(1.5)
    axs[2].set_xticks(x, labels)
    axs[2].set_ylim(0, 1.15)
    axs[2].set_title("Policy")
    axs[2].legend(frameon=False, fontsize=8, loc="upper right")
    _tidy(axs[2])
    return fig


def set_probability(probs, index: int, p: float) -> np.ndarray:
    """Set ``probs[index] = p`` and rescale the other entries so the vector still sums
    to one, keeping their ratios (for a "probability of the true class" slider)."""
    q = np.asarray(_numpy(probs), dtype=float).copy()
    if not 0.0 <= p <= 1.0:
        raise ValueError("p must be in [0, 1]")
    rest = q.sum() - q[index]
    others = np.arange(len(q)) != index
    q[others] = (q[others] / rest * (1.0 - p)) if rest > 0 else (1.0 - p) / others.sum()
    q[index] = p
    return q


# ----------------------------------------------------------------------------
# the toy simulations' figures (pgviz.bandit computes, these draw; draw(fig, ...)
# for pgviz.widgets.interactive)
# ----------------------------------------------------------------------------
DOG_COLOR = "#8c564b"  # brown: the tempting wrong answer in book/04


def draw_mc_errors(ax, result: dict, n_points: int = 40):
    """book/02: Monte Carlo error against ``n`` on log-log axes (:func:`~pgviz.bandit.mc_error_scaling`).

    Faint dots: single repeats; line: root-mean-square error; dashed: ``sqrt(Var / n)``
    (eq:mc-mean); dotted grey: a slope -1/2 reference through the first point.
    """
    n, rms, pred = _numpy(result["n"]), _numpy(result["rms_error"]), _numpy(result["predicted"])
    errs = _numpy(result["errors"])[:, :n_points]
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
    _tidy(ax)
    return ax


def draw_mc_estimate(fig, result: dict, n: int, labels: Sequence[str] = bandit.CIFAR10_CLASSES, shown: int = 3):
    """book/02 slider: the exact gradient (bars) and ``shown`` Monte Carlo means from ``n`` samples."""
    ax = fig.add_subplot()
    i = [int(v) for v in _numpy(result["n"])].index(int(n))
    exact = _numpy(result["exact"])
    est = _numpy(result["estimates"][i, :shown])
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
    ax.legend(frameon=False, fontsize=8, loc="upper left")
    _tidy(ax)
    return ax


def draw_variance_study(ax, study: dict, crossover: Optional[float] = None):
    """book/03: exact (lines) and measured (dots) variance against ``pi_y`` for three baselines."""
    p = _numpy(study["p"])
    styles = {"none": (MUTED, "no baseline ($b = 0$)"),
              "value": (BASELINE, r"value baseline $b = V = \pi_y$"),
              "optimal": (GRADIENT, r"optimal baseline $b^*$")}
    for name, (color, label) in styles.items():
        ax.plot(p, _numpy(study[f"exact_{name}"]), color=color, linewidth=2, label=label + " (exact)")
        ax.plot(p, _numpy(study[f"measured_{name}"]), "o", color=color, markersize=4, markerfacecolor="white")
    ax.plot([], [], "o", color="black", markerfacecolor="white", markersize=4, label="measured (redraws)")
    if crossover is not None:
        ax.axvline(crossover, color="black", linestyle=":", linewidth=1)
        ax.text(crossover, ax.get_ylim()[1] * 0.98, f" $\\pi_y = {crossover:.2f}$", va="top", fontsize=9)
    ax.set_xlabel(r"probability of the correct label $\pi_y$")
    ax.set_ylabel("variance (trace of covariance)")
    ax.legend(frameon=False, fontsize=8)
    _tidy(ax)
    return ax


def draw_baseline_slider(fig, b: float, p: float, n_actions: int = 10, n_draws: int = 4000, seed: int = 0):
    """book/03 slider: the variance as a function of the baseline (a parabola) at ``pi_y = p``.

    Left: exact curve (eq:variance), its minimum ``b*``, the value ``V = pi_y``, and the chosen
    ``b`` with a measured point.  Right: each kind of draw's share of the second moment
    (:func:`~pgviz.bandit.variance_terms`) at the chosen ``b``: the correct label vs the nine wrong ones.
    """
    logits, rewards = bandit.confident_policy(p, n_actions), bandit.correct_rewards(n_actions)
    bs = torch.linspace(-0.2, 1.2, 141, dtype=bandit.DTYPE)
    curve = estimator.exact_variance(logits, rewards, bs)
    b_opt = float(estimator.optimal_baseline(logits, rewards))
    v_at = lambda x: float(estimator.exact_variance(logits, rewards, x))  # noqa: E731
    measured = float(bandit.measured_variance(logits, rewards, b, n_draws, bandit._generator(seed)))
    ax, ax2 = fig.subplots(1, 2, width_ratios=[2, 1])
    ax.plot(_numpy(bs), _numpy(curve), color=GRADIENT, linewidth=2, label="exact variance")
    ax.plot([b_opt], [v_at(b_opt)], "*", color="black", markersize=12, label=f"minimum $b^* = {b_opt:.3f}$")
    ax.plot([p], [v_at(p)], "s", color=BASELINE, markersize=7, label=rf"value $V = \pi_y = {p:g}$")
    ax.plot([0.0], [v_at(0.0)], "D", color=MUTED, markersize=6, label="no baseline")
    ax.axvline(b, color="black", linewidth=0.8, linestyle="--")
    ax.plot([b], [measured], "o", color="black", markerfacecolor="white", markersize=7,
            label=f"measured at $b = {b:g}$: {measured:.3f}")
    ax.set_xlabel("baseline $b$")
    ax.set_ylabel("variance (trace of covariance)")
    ax.set_ylim(0, float(curve.max()) * 1.05)
    ax.set_title(rf"$\pi_y = {p:g}$: variance is a parabola in $b$")
    ax.legend(frameon=False, fontsize=8, loc="upper left")
    _tidy(ax)
    terms = bandit.variance_terms(logits, rewards, b)
    correct = int(rewards.argmax())
    shares = np.array([float(terms[correct]), float(terms.sum() - terms[correct])])
    ax2.bar([0, 1], shares, color=[REWARD, MUTED], width=0.6)
    ax2.set_xticks([0, 1], ["correct label\n(R = 1)", "9 wrong labels\n(R = 0)"])
    ax2.set_title("who makes the noise:\n" + r"$\pi_a (R_a - b)^2 \|e_a - \pi\|^2$ summed by kind", fontsize=9)
    # the same scale for every b at this pi_y: the largest share over b in [0, 1]
    ends = [bandit.variance_terms(logits, rewards, x) for x in (0.0, 1.0)]
    top = max(max(float(t[correct]), float(t.sum() - t[correct])) for t in ends)
    ax2.set_ylim(0, top * 1.15)
    for i, s in enumerate(shares):
        ax2.text(i, s, f"{s:.3f}", ha="center", va="bottom", fontsize=9)
    _tidy(ax2)
    return fig


def draw_collapse_runs(fig, sweep: dict, entropy_weight: float, n_shown: int = 30):
    """book/04 slider, this book's partial-credit variant: ``P(horse)`` and ``P(dog)`` over
    training for one entropy weight (:func:`~pgviz.bandit.collapse_sweep`).

    Left: runs (thin), their mean (thick) and the exact-gradient path (dashed).  Right: the
    fraction of runs that locked onto "dog", found "horse" or stayed spread out.
    """
    lam = _numpy(sweep["entropy_weights"]).tolist()
    i = min(range(len(lam)), key=lambda j: abs(lam[j] - entropy_weight))
    steps = _numpy(sweep["steps"])
    hist = sweep["history"][:, i]                                    # [T, n_seeds, K]
    ax, ax2 = fig.subplots(1, 2, width_ratios=[2.2, 1])
    for label, idx, color in (("dog", bandit.DOG, DOG_COLOR), ("horse", bandit.HORSE, POLICY)):
        traj = _numpy(hist[..., idx]).T                                  # [n_seeds, T]
        for row in traj[:n_shown]:
            ax.plot(steps, row, color=color, alpha=0.15, linewidth=0.7)
        ax.plot(steps, traj.mean(0), color=color, linewidth=2.4, label=f"P({label}), mean of {traj.shape[0]} runs")
        ax.plot(steps, _numpy(sweep["exact_history"][:, i, idx]), "--", color=color, linewidth=1.3,
                label=f"P({label}), exact-gradient path")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("step")
    ax.set_ylabel("probability")
    ax.set_title(f"entropy weight $\\lambda = {entropy_weight:g}$")
    ax.legend(frameon=False, fontsize=7, loc="center right")
    _tidy(ax)
    _outcome_bars(ax2, [float(sweep[k][i]) for k in ("locked", "found", "spread")],
                  [DOG_COLOR, POLICY, MUTED], ["locked on\ndog", "found\nhorse", "still\nspread"],
                  f"after {int(steps[-1])} steps")
    return fig


def draw_collapse_summary(ax, sweep: dict):
    """book/04, the partial-credit variant: outcome fractions against the entropy weight, with
    the mean final ``P(horse)``
    and the regularised optimum ``softmax(R / lambda)`` (eq:regularised-optimum)."""
    lam = _numpy(sweep["entropy_weights"])
    x = np.arange(len(lam))
    for key, color, label in (("locked", DOG_COLOR, "runs locked on dog"), ("found", POLICY, "runs that found horse"),
                              ("spread", MUTED, "runs still spread out")):
        ax.plot(x, _numpy(sweep[key]), "o-", color=color, linewidth=2, label=label)
    ax.plot(x, _numpy(sweep["mean_final"][:, bandit.HORSE]), "s--", color=REWARD, linewidth=1.2,
            label="mean final P(horse)")
    ax.plot(x, _numpy(sweep["optimum"][:, bandit.HORSE]), "x:", color="black", linewidth=1,
            label=r"P(horse) in $\mathrm{softmax}(R/\lambda)$")
    ax.set_xticks(x, [f"{v:g}" for v in lam])
    ax.set_xlabel(r"entropy weight $\lambda$")
    ax.set_ylabel("fraction of runs / probability")
    ax.set_ylim(-0.03, 1.05)
    ax.legend(frameon=False, fontsize=8, loc="center left")
    _tidy(ax)
    return ax


HORSE_COLOR = POLICY  # the right answer on a horse image: the policy's blue


def _nearest(values, value) -> int:
    values = list(values)
    return min(range(len(values)), key=lambda j: abs(values[j] - value))


def draw_dog_horse_runs(fig, sim: dict, entropy_weight: float, exact: Optional[dict] = None,
                        n_shown: int = 30):
    """book/04 slider, the article's story: P(horse | horse image) over training for one
    entropy weight (:func:`~pgviz.bandit.dog_horse_simulate`).

    Left: single runs (thin), their mean (thick), P(dog | horse image) (brown, mean), the
    step from which the feature tells dogs from horses (dotted) and, if ``exact`` (a run with
    ``exact=True``) is given, the exact-gradient path (dashed).  Right: the fraction of runs
    that never learned to say "horse" for a horse image (P < 0.1 at the end), learned it
    (P > 0.9) or sit in between.
    """
    lam = _numpy(sim["entropy_weights"]).tolist()
    i = _nearest(lam, entropy_weight)
    steps = _numpy(sim["steps"])
    hh = _numpy(sim["p_horse_horse"][:, i]).T                       # [n_runs, T]
    dh = _numpy(sim["p_dog_horse"][:, i]).T
    ax, ax2 = fig.subplots(1, 2, width_ratios=[2.2, 1])
    for row in hh[:n_shown]:
        ax.plot(steps, row, color=HORSE_COLOR, alpha=0.15, linewidth=0.7)
    ax.plot(steps, hh.mean(0), color=HORSE_COLOR, linewidth=2.4,
            label=f"P(horse | horse image), mean of {hh.shape[0]} runs")
    ax.plot(steps, dh.mean(0), color=DOG_COLOR, linewidth=2.0, label="P(dog | horse image), mean")
    if exact is not None:
        j = _nearest(_numpy(exact["entropy_weights"]).tolist(), entropy_weight)
        ax.plot(_numpy(exact["steps"]), _numpy(exact["p_horse_horse"][:, j, 0]), "--", color="black",
                linewidth=1.3, label="P(horse | horse image), exact gradient")
    ax.axvline(sim["feature_step"], color=MUTED, linestyle=":", linewidth=1.5)
    ax.text(sim["feature_step"], 1.04, " feature learned", color="#555555", fontsize=8, va="bottom")
    ax.set_ylim(-0.02, 1.1)
    ax.set_xlabel("step (one image per step)")
    ax.set_ylabel("probability")
    ax.set_title(f"entropy weight $\\lambda = {lam[i]:g}$", loc="left")
    ax.legend(frameon=False, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
    _tidy(ax)
    _outcome_bars(ax2, [float(sim[k][i]) for k in ("collapsed", "learned", "between")],
                  [DOG_COLOR, HORSE_COLOR, MUTED], ["never says\nhorse", "learned\nhorse", "in\nbetween"],
                  f"horse images, after {int(steps[-1]):,} steps")
    return fig


def draw_dog_horse_summary(ax, sim: dict, exact: Optional[dict] = None):
    """book/04, the article's story: outcome fractions against the entropy weight, with the
    mean final P(horse | horse image), its exact-gradient value (if ``exact`` is given) and
    the regularised optimum ``softmax(R / lambda)`` (eq:regularised-optimum)."""
    ax = _axes(ax, (7.5, 4))
    lam = _numpy(sim["entropy_weights"])
    x = np.arange(len(lam))
    for key, color, label in (("collapsed", DOG_COLOR, "runs that never say horse (P < 0.1)"),
                              ("learned", HORSE_COLOR, "runs that learned horse (P > 0.9)")):
        ax.plot(x, _numpy(sim[key]), "o-", color=color, linewidth=2, label=label)
    ax.plot(x, _numpy(sim["p_horse_horse"][-1]).mean(-1), "s--", color=REWARD, linewidth=1.2,
            label="mean final P(horse | horse image)")
    if exact is not None:
        ax.plot(x, _numpy(exact["p_horse_horse"][-1, :, 0]), "^:", color="black", linewidth=1,
                markerfacecolor="white", label="exact-gradient path, final")
    ax.plot(x, _numpy(bandit.dog_horse_optimum(torch.as_tensor(lam))), "x", color="black",
            markersize=8, label=r"optimum $\mathrm{softmax}(R/\lambda)$")
    ax.set_xticks(x, [f"{v:g}" for v in lam])
    ax.set_xlabel(r"entropy weight $\lambda$")
    ax.set_ylabel("fraction of runs / probability")
    ax.set_ylim(-0.03, 1.05)
    ax.legend(frameon=False, fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    _tidy(ax)
    return ax


def draw_ab_steps(fig, r_a: float, r_b: float, baseline: float, lr: float = 0.01):
    """book/07 slider: the two possible single-sample steps from 50/50 and their expectation
    (eq:ab-expected), as changes of the logit gap ``theta_B - theta_A`` and of ``P(B)``."""
    s = bandit.ab_steps(r_a, r_b, 0.5, lr, baseline)
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
    _tidy(ax)
    pb = [0.5, float(s["p_b_after_a"]), float(s["p_b_after_b"])]
    bars2 = ax2.bar([0, 1, 2], pb, color=[MUTED, POLICY, POLICY], width=0.6)
    ax2.bar_label(bars2, labels=[f"{v:.3f}" for v in pb], fontsize=9)
    ax2.set_xticks([0, 1, 2], ["before", "after an\nA step", "after a\nB step"])
    ax2.set_ylim(0, 1.1)
    ax2.set_ylabel("P(B)")
    ax2.set_title("the policy after one step", fontsize=10)
    _tidy(ax2)
    return fig


def draw_ab_runs(fig, ab: dict, index: Optional[tuple] = None, n_shown: int = 30, **values: float):
    """book/07 slider: P(B) over steps for many runs at one setting of :func:`~pgviz.bandit.ab_runs`.

    Give the setting as an ``index`` tuple, or by value (``r_a=..., r_b=..., lr=..., baseline=...``)
    for an :func:`~pgviz.bandit.ab_sweep`.
    """
    if index is None:
        index = bandit.ab_index(ab, **values)
    p = _numpy(ab["p_b"][(slice(None),) + tuple(index)]).T            # [n_runs, T]
    exact = _numpy(ab["p_b_exact"][(slice(None),) + tuple(index)])
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


# ----------------------------------------------------------------------------
# tables (HTML in the book: its Markdown outputs are CommonMark, which has no tables)
# ----------------------------------------------------------------------------
class Table:
    """A small results table: HTML in notebooks and the book, Markdown and plain text otherwise."""

    def __init__(self, columns: Sequence[str], rows: Sequence[Sequence[str]]):
        self.columns, self.rows = list(columns), [list(r) for r in rows]

    def _repr_html_(self) -> str:
        import html

        esc = lambda x: html.escape(str(x))  # noqa: E731
        pad = 'style="padding:0.15em 0.5em"'
        cell = 'style="padding:0.15em 0.5em;white-space:nowrap"'  # "74.3 ± 1.2 %" on one line
        head = "".join(f"<th {pad}>{esc(c)}</th>" for c in self.columns)
        body = "".join("<tr>" + "".join(f"<td {cell}>{esc(v)}</td>" for v in r) + "</tr>"
                       for r in self.rows)
        return (f'<table class="table pgviz-table" style="text-align:right">'
                f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")

    def _repr_markdown_(self) -> str:
        lines = ["| " + " | ".join(self.columns) + " |", "|" + "|".join(["---:"] * len(self.columns)) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in self.rows]
        return "\n".join(lines)

    def __repr__(self) -> str:
        widths = [max(len(str(c)), *(len(r[i]) for r in self.rows)) for i, c in enumerate(self.columns)]
        fmt = lambda r: "  ".join(str(v).rjust(w) for v, w in zip(r, widths))  # noqa: E731
        return "\n".join([fmt(self.columns)] + [fmt(r) for r in self.rows])


def table(columns: Sequence[str], rows: Sequence[Sequence], fmt="{:.4g}") -> Table:
    """A small results table for a chapter (:class:`Table`: an HTML table in the book).

    Numbers (and 0-d tensors) are formatted with ``fmt``, or with a per-column format when
    ``fmt`` is a sequence; strings pass through.
    """
    fmts = [fmt] * len(columns) if isinstance(fmt, str) else list(fmt)

    def cell(v, f):
        if hasattr(v, "item"):
            v = v.item()
        if isinstance(v, str):
            return v
        if isinstance(v, float):
            v = v + 0.0  # no "-0.000"
        return f.format(v)

    return Table(columns, [[cell(v, f) for v, f in zip(r, fmts)] for r in rows])


# ----------------------------------------------------------------------------
# the gap chapter (book/09_the_gap): numbers from pgviz.gap and pgviz.results
# ----------------------------------------------------------------------------
#: One colour per setting / estimator of the gap chapter, the same in every figure.
GAP_COLORS: Dict[str, str] = {
    "xent": "#000000", "pg-exact": "#8c564b", "pg": POLICY, "pg-no-baseline": MUTED,
    "rloo-2": "#c5b0d5", "rloo-4": "#9467bd", "rloo-8": "#5b2c86",
    "grpo-4": "#e377c2", "value": "#17becf",
    "no-baseline": MUTED, "learned-V": POLICY, "optimal-constant": REWARD,
}


def gap_directions(probs, label: int, *, fig=None, names: Optional[Sequence[str]] = None):
    """One image's logit directions side by side (eq:gap-xent, eq:gap-exact): cross-
    entropy's ``onehot(y) - pi`` and the exact policy gradient ``pi_y (onehot(y) - pi)``,
    the same arrow shrunk by ``pi_y``."""
    fig = _figure(fig, (7, 2.6))
    p = _numpy(probs)
    onehot = np.eye(len(p))[label]
    xent = onehot - p
    exact = p[label] * xent
    names = list(names) if names is not None else [str(i) for i in range(len(p))]
    axes = fig.subplots(1, 2, sharey=True)
    for ax, g, title, color in ((axes[0], xent, "cross-entropy: onehot(y) - pi", "black"),
                                (axes[1], exact, f"exact policy gradient: pi_y x that (pi_y = {p[label]:.2f})",
                                 GAP_COLORS["pg-exact"])):
        ax.bar(range(len(p)), g, color=color)
        ax.axhline(0, color="black", linewidth=0.6)
        ax.set_xticks(range(len(p)), names, rotation=60, fontsize=7)
        ax.set_title(title, fontsize=9)
        _tidy(ax)
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
    fig = _figure(fig, (10, 3.6))
    ax_e, ax_q = fig.subplots(1, 2, sharey=True)
    for i, name in enumerate(order or sorted(runs)):
        if name not in runs or not runs[name]:
            continue
        ep, img, ys = _gap_curve(runs[name], key)
        color = GAP_COLORS.get(name, f"C{i}")
        label = f"{name} ({len(ys)} seeds)"
        for ax, x in ((ax_e, ep), (ax_q, None)):
            if x is None:
                q = queries_per_image.get(name)
                if q is None:
                    continue
                x = img * q
            ax.plot(x, np.nanmean(ys, 0), color=color, linewidth=2, label=label)
            ax.fill_between(x, np.nanmin(ys, 0), np.nanmax(ys, 0), color=color, alpha=0.15, linewidth=0)
    ax_e.set_xlabel("epoch (same images for every setting)")
    ax_q.set_xlabel("reward queries (images x rewards per image)")
    ax_q.set_xscale("log")
    ax_e.set_ylabel("test accuracy")
    ax_e.legend(frameon=False, fontsize=8)
    for ax in (ax_e, ax_q):
        _tidy(ax)
    return fig


def gap_noise(probes: Sequence[dict], epoch: int, *, fig=None, order: Optional[Sequence[str]] = None):
    """The gradient-noise probe across training (rows from :func:`pgviz.gap.read_probes`):
    left, the trace of the covariance of each estimator's parameter gradient against the
    epoch (log scale), with the chosen ``epoch`` marked; right, at that epoch, the mean cosine
    of one estimate with the exact expected gradient."""
    fig = _figure(fig, (10, 3.6))
    ax_t, ax_c = fig.subplots(1, 2)
    rows = sorted(probes, key=lambda r: r["epoch"])
    epochs = [r["epoch"] for r in rows]
    names = list(order or rows[0]["estimators"])
    for i, n in enumerate(names):
        color = GAP_COLORS.get(n, f"C{i}")
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
    ax_c.barh(range(len(names)), cos, color=[GAP_COLORS.get(n, f"C{i}") for i, n in enumerate(names)])
    for i, c in enumerate(cos):
        ax_c.annotate(f"{c:.2f}", (max(c, 0), i), xytext=(3, 0), textcoords="offset points",
                      va="center", fontsize=8)
    ax_c.set_yticks(range(len(names)), names, fontsize=8)
    ax_c.invert_yaxis()
    ax_c.set_xlim(0, 1.05)
    ax_c.set_xlabel("mean cosine with the exact gradient")
    ax_c.set_title(f"epoch {epoch}: test-batch reward {row['expected_reward']:.2f}", fontsize=10)
    for ax in (ax_t, ax_c):
        _tidy(ax)
    return fig
