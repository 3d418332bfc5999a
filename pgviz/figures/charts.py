"""Generic charts the chapters build on: bars with their values, lines, many runs with their
spread, histograms, running means, convergence on log-log axes and images."""
from __future__ import annotations

from typing import Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from .style import GRADIENT, MUTED, POLICY, REWARD, as_numpy, ensure_axes, set_labels, tidy

__all__ = ["bar_chart", "curves", "runs", "histogram", "running_mean", "convergence", "image"]


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
    ax = ensure_axes(ax)
    v = as_numpy(values).reshape(-1)
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
    return _finish(ax, ylabel=ylabel, title=title)


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
    ax = ensure_axes(ax)
    x = as_numpy(x)
    for i, (label, y) in enumerate(ys.items()):
        ax.plot(
            x, as_numpy(y), label=label, marker=marker,
            color=(colors or {}).get(label, f"C{i}"),
            linestyle=(styles or {}).get(label, "-"),
        )
    return _finish(ax, xlabel=xlabel, ylabel=ylabel, title=title, ylim=ylim, logx=logx, logy=logy,
                   legend=legend and len(ys) > 1)


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
    ax = ensure_axes(ax)
    x = as_numpy(x)
    t = as_numpy(trajectories)
    if t.ndim == 1:
        t = t[None]
    for row in t[:n_shown]:
        ax.plot(x, row, color=color, alpha=0.18, linewidth=0.8)
    lo, hi = np.quantile(t, band[0], axis=0), np.quantile(t, band[1], axis=0)
    ax.fill_between(x, lo, hi, color=color, alpha=0.15, linewidth=0,
                    label=f"{int(band[0] * 100)}-{int(band[1] * 100)}% of runs")
    ax.plot(x, t.mean(0), color=color, linewidth=2.2, label=label)
    return _finish(ax, xlabel=xlabel, ylabel=ylabel, title=title, ylim=ylim, legend=True)


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
    ax = ensure_axes(ax)
    ax.hist(as_numpy(samples).reshape(-1), bins=bins, color=color, alpha=0.8)
    for i, (label, x) in enumerate((mark or {}).items()):
        ax.axvline(float(x), color="black", linestyle=["-", "--", ":"][i % 3], linewidth=1.2, label=label)
    return _finish(ax, xlabel=xlabel, title=title, legend=bool(mark))


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
    ax = ensure_axes(ax)
    v = as_numpy(samples).reshape(-1)
    n = np.arange(1, len(v) + 1)
    ax.plot(n, np.cumsum(v) / n, color=color, label=label)
    if expected is not None:
        ax.axhline(expected, color="black", linestyle="--", linewidth=1.2, label=f"expected value {expected:g}")
        if sd is not None:
            half = sd / np.sqrt(n)
            ax.plot(n, expected + half, color=MUTED, linestyle=":", label="± one standard error")
            ax.plot(n, expected - half, color=MUTED, linestyle=":")
    return _finish(ax, xlabel=xlabel, ylabel=ylabel, ylim=ylim, logx=logx, legend=True)


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
    ax = ensure_axes(ax)
    n = as_numpy(ns).reshape(-1)
    e = as_numpy(errors).reshape(-1)
    c = float(np.exp(np.mean(np.log(e) + 0.5 * np.log(n))))
    ax.plot(n, e, "o-", color=color, label=label)
    ax.plot(n, c / np.sqrt(n), "--", color=MUTED, label=f"{c:.3g} / sqrt(n), fitted")
    return _finish(ax, xlabel=xlabel, ylabel=ylabel, title=title, logx=True, logy=True, legend=True)


def _finish(ax, *, xlabel: Optional[str] = None, ylabel: Optional[str] = None,
            title: Optional[str] = None, ylim: Optional[Tuple[float, float]] = None,
            logx: bool = False, logy: bool = False, legend: bool = False):
    """What every chart ends with: log scales, the y range, labels, a frameless legend, tidy
    spines.  Returns the Axes."""
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    if ylim is not None:
        ax.set_ylim(*ylim)
    set_labels(ax, xlabel, ylabel, title)
    if legend:
        ax.legend(frameon=False, fontsize=9)
    tidy(ax)
    return ax


def image(img, *, ax=None, title: Optional[str] = None):
    """Show an image: ``HWC`` uint8/float array, or a ``CHW`` tensor/array."""
    ax = ensure_axes(ax, figsize=(2.6, 2.6))
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
