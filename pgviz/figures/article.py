"""The article's figures for the horse image (What does it do?, Introduction): the policy as
bars (four labels, and the article's ten-label view), the baseline against the reward, the
gradient on the log-policy and on the logits, and the composites the chapters show.

Defaults are the article's numbers (:data:`pgviz.ARTICLE`: horse .6, dog .3,
airplane .05, cat .05; baseline 0.175).  :func:`set_probability` moves one class's
probability while keeping the others in proportion (for probability sliders).
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from ..data import CIFAR10_CLASSES
from ..estimator import ARTICLE
from ..exact import log_policy_grad, logit_grad
from .charts import bar_chart, image
from .style import BASELINE, GRADIENT, MUTED, POLICY, REWARD, as_numpy, ensure_axes, ensure_figure, tidy

__all__ = ["policy_bars", "ten_class_probs", "policy_bars_ten", "policy_views", "baseline_vs_reward",
           "grad_log_policy_bars", "logit_grad_bars", "horse_and_policy", "article_pair", "spread_panels",
           "set_probability"]


def _article(probs, labels, baseline, true_label):
    probs = list(ARTICLE["probs"]) if probs is None else list(as_numpy(probs))
    labels = list(ARTICLE["labels"]) if labels is None else list(labels)
    baseline = ARTICLE["baseline"] if baseline is None else float(baseline)
    true_label = ARTICLE["true_label"] if true_label is None else true_label
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
    out = np.zeros(len(CIFAR10_CLASSES))
    for label, p in zip(labels, probs):
        if label not in CIFAR10_CLASSES:
            raise ValueError(f"{label!r} is not a CIFAR-10 label")
        out[CIFAR10_CLASSES.index(label)] = p
    return out


def policy_bars_ten(probs=None, labels=None, *, ax=None, sampled: Optional[str] = None,
                    title: str = "Policy, all ten labels", color: str = POLICY):
    """The article's own view of the policy: all ten CIFAR-10 labels in the data set's order,
    the ones without probability at 0 (:func:`ten_class_probs`)."""
    vals = ten_class_probs(probs, labels)
    classes = list(CIFAR10_CLASSES)
    ax = bar_chart(vals, classes, ax=ensure_axes(ax, (6, 3.2)), color=color, title=title, ylim=(0, 1),
                   fmt="{:.2f}", rotate=45, highlight=classes.index(sampled) if sampled is not None else None)
    return ax


def policy_views(probs=None, labels=None, *, fig=None):
    """The policy two ways, side by side: the four labels that carry probability (this book's
    :func:`policy_bars`) and all ten CIFAR-10 labels in order (the article's chart)."""
    fig = ensure_figure(fig, (8.5, 3.2))
    gs = fig.add_gridspec(1, 2, width_ratios=[4, 10])
    policy_bars(probs, labels, ax=fig.add_subplot(gs[0]), title="Four labels")
    policy_bars_ten(probs, labels, ax=fig.add_subplot(gs[1]),
                    title="All ten CIFAR-10 labels, in order")
    return fig


def baseline_vs_reward(baseline: Optional[float] = None, reward: float = 1.0, *, ax=None,
                       title: Optional[str] = None):
    """Two bars: the predicted baseline (blue) and the reward received (green)."""
    baseline = ARTICLE["baseline"] if baseline is None else float(baseline)
    ax = bar_chart([baseline, reward], ["Baseline", "Reward"], ax=ax, color=[BASELINE, REWARD],
                   title=title, ylim=(0, 1), fmt="{:.3g}")
    return ax


def grad_log_policy_bars(grad, labels=None, *, ax=None, title: str = "Grad log-policy",
                         ylim: Tuple[float, float] = (-1, 1)):
    """The gradient of the loss with respect to log-policy (orange): ``(V - R)`` at the
    sampled action, zero elsewhere.  Negative = "make this action more likely"."""
    labels = list(ARTICLE["labels"]) if labels is None else list(labels)
    return bar_chart(grad, labels, ax=ax, color=GRADIENT, title=title, ylim=ylim, fmt="{:+.3g}")


def logit_grad_bars(grad, labels=None, *, ax=None, title: str = "Grad logits",
                    ylim: Tuple[float, float] = (-1, 1)):
    """The gradient of the loss with respect to the logits (orange), i.e. what
    log-softmax spreads to every class: ``(V - R)(onehot(a) - pi)``."""
    labels = list(ARTICLE["labels"]) if labels is None else list(labels)
    return bar_chart(grad, labels, ax=ax, color=GRADIENT, title=title, ylim=ylim, fmt="{:+.3f}")


def horse_and_policy(img, probs=None, labels=None, *, fig=None, title: str = "Policy"):
    """The article's first pair: the input image and the policy the network outputs."""
    fig = ensure_figure(fig, (7.5, 2.8))
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
    grad = log_policy_grad(probs, labels.index(action), reward, baseline)
    fig = ensure_figure(fig, (7.5, 2.8))
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
    g_logp = log_policy_grad(probs, a, reward, baseline)
    g_z = logit_grad(probs, a, reward, baseline)
    p = np.asarray(probs, dtype=float)
    z = np.log(np.clip(p, 1e-12, None)) - lr * g_z.numpy()
    after = np.exp(z - z.max())
    after /= after.sum()
    fig = ensure_figure(fig, (8.5, 3.2))
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
    tidy(axs[2])
    return fig


def set_probability(probs, index: int, p: float) -> np.ndarray:
    """Set ``probs[index] = p`` and rescale the other entries so the vector still sums
    to one, keeping their ratios (for a "probability of the true class" slider)."""
    q = np.asarray(as_numpy(probs), dtype=float).copy()
    if not 0.0 <= p <= 1.0:
        raise ValueError("p must be in [0, 1]")
    rest = q.sum() - q[index]
    others = np.arange(len(q)) != index
    q[others] = (q[others] / rest * (1.0 - p)) if rest > 0 else (1.0 - p) / others.sum()
    q[index] = p
    return q
