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

Three groups:

* generic helpers other chapters use: :func:`bar_chart`, :func:`curves`,
  :func:`runs`, :func:`histogram`, :func:`running_mean`, :func:`convergence`,
  :func:`image`;
* the article's "What does it do?" figures: :func:`policy_bars`,
  :func:`baseline_vs_reward`, :func:`grad_log_policy_bars`,
  :func:`logit_grad_bars`, and the composites :func:`horse_and_policy`,
  :func:`article_pair`, :func:`spread_panels`;
* :func:`set_probability`, which moves one class's probability while keeping
  the others in proportion (for probability sliders).
"""
from __future__ import annotations

from typing import Dict, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from . import estimator

__all__ = [
    "COLORS", "POLICY", "BASELINE", "REWARD", "GRADIENT", "MUTED",
    "new_axes", "bar_chart", "curves", "runs", "histogram", "running_mean", "convergence", "image",
    "policy_bars", "baseline_vs_reward", "grad_log_policy_bars", "logit_grad_bars",
    "horse_and_policy", "article_pair", "spread_panels", "set_probability", "Table", "table",
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
