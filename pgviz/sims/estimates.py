"""Monte Carlo against the exact gradient, and the variance of the estimator.

The simulations of *The policy gradient* (how the error of a mean of ``n`` single-sample
estimates shrinks, eq:mc-mean) and of *Baselines* (the estimator's variance as the policy
grows confident, measured against the exact eq:variance, and the variance as a function of
the baseline).  Every function returns numbers; :mod:`pgviz.figures.estimates` draws them.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch

from ..exact import (DTYPE, exact_gradient, exact_variance, optimal_baseline, score_function_estimates,
                     variance_terms)
from ._common import TensorLike, _t, one_thread
from ._common import generator as seeded_generator
from .policies import confident_policy, correct_rewards

__all__ = ["action_counts", "mean_of_estimates_from_counts", "mc_error_scaling", "network_mc_error_scaling", "loglog_slope",
           "measured_variance", "variance_study", "value_baseline_crossover", "baseline_slice"]


# ----------------------------------------------------------------------------
# Monte Carlo against the exact gradient (The policy gradient)
# ----------------------------------------------------------------------------
def action_counts(probs: torch.Tensor, n: int, repeats: int,
                  generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """How often each action comes up in ``n`` draws ``a ~ pi``, for ``repeats`` independent batches.

    Exactly multinomial(n, pi), drawn as a chain of conditional binomials, so the cost does
    not grow with ``n`` (10^6 samples cost the same as 10).  Shape ``[repeats, K]``.
    """
    probs = _t(probs)
    remaining = torch.full((repeats,), float(n), dtype=DTYPE)
    left = torch.ones((), dtype=DTYPE)
    counts = []
    for k in range(probs.shape[-1] - 1):
        q = torch.clamp(probs[k] / left, 0.0, 1.0) if left > 0 else torch.zeros((), dtype=DTYPE)
        c = torch.binomial(remaining, q.expand(repeats), generator=generator)
        counts.append(c)
        remaining = remaining - c
        left = left - probs[k]
    counts.append(remaining)
    return torch.stack(counts, -1)


def mean_of_estimates_from_counts(logits: torch.Tensor, rewards: torch.Tensor, counts: torch.Tensor,
                                  baseline: TensorLike = 0.0) -> torch.Tensor:
    """The mean of ``n`` single-sample estimates (eq:mc-mean), from how often each action came up.

    ``(1/n) sum_i (R(a_i) - b)(onehot(a_i) - pi) = sum_a (c_a / n)(R(a) - b)(onehot(a) - pi)``:
    the average depends on the sampled actions only through their counts ``c``.
    """
    pi = torch.softmax(_t(logits), -1)
    counts = _t(counts)
    freq = counts / counts.sum(-1, keepdim=True)
    weight = freq * (_t(rewards) - _t(baseline))                  # [repeats, K]
    return weight - weight.sum(-1, keepdim=True) * pi             # sum_a w_a (e_a - pi)


def mc_error_scaling(logits: torch.Tensor, rewards: torch.Tensor,
                     ns: Sequence[int] = (1, 10, 100, 1_000, 10_000, 100_000),
                     repeats: int = 400, baseline: float = 0.0, seed: int = 0) -> dict:
    """Error of the Monte Carlo gradient (eq:mc-mean) against the exact one, for growing ``n``.

    For each ``n``: ``repeats`` independent means of ``n`` single-sample estimates
    (eq:single-sample), their Euclidean distance to :func:`pgviz.exact.exact_gradient`,
    and the root mean square of that distance.  Theory: ``rms_error = sqrt(Var / n)`` with
    ``Var`` the trace from :func:`pgviz.exact.exact_variance`, a line of slope -1/2 on
    log-log axes.

    Returns a dict of tensors: ``n``, ``rms_error``, ``predicted``, ``errors`` ([len(ns),
    repeats]), ``exact`` (the exact gradient), ``estimates`` (the means, [len(ns), repeats, K])
    and ``slope`` (least-squares slope of log rms error on log n).
    """
    logits, rewards = _t(logits), _t(rewards)
    gen = seeded_generator(seed)
    exact = exact_gradient(logits, rewards)
    var = exact_variance(logits, rewards, baseline)
    pi = torch.softmax(logits, -1)
    errors, means = [], []
    for n in ns:
        counts = action_counts(pi, int(n), repeats, gen)
        m = mean_of_estimates_from_counts(logits, rewards, counts, baseline)
        means.append(m)
        errors.append((m - exact).norm(dim=-1))
    errors = torch.stack(errors)
    n_t = _t(list(ns))
    rms = errors.pow(2).mean(-1).sqrt()
    return {
        "n": n_t,
        "rms_error": rms,
        "predicted": (var / n_t).sqrt(),
        "errors": errors,
        "estimates": torch.stack(means),
        "exact": exact,
        "variance": var,
        "slope": loglog_slope(n_t, rms),
    }


def network_mc_error_scaling(out: torch.Tensor, params: Sequence[torch.Tensor], labels: torch.Tensor,
                             ns: Sequence[int] = (1, 3, 10, 30, 100, 300), repeats: int = 50,
                             seed: int = 2) -> dict:
    """The Monte Carlo error of *A PyTorch implementation*, on a network's parameter gradient.

    ``out`` ``[B, A + 1]`` are the network's outputs (``A`` logits and the baseline, still
    attached to the graph of ``params``), ``labels`` ``[B]``, the 0/1 reward.  The exact
    gradient is autograd through the expected reward; its variance is eq:impl-variance,
    ``sum_i pi_i(y_i) (1 - pi_i(y_i)) |v_i|^2`` with ``v_i`` image ``i``'s cross-entropy
    direction ``(onehot(y_i) - pi_i) / B`` pushed to the parameters (so that
    ``sum_i pi_i(y_i) v_i`` is the exact gradient, returned as ``exact_from_v``).  The
    estimates are ``repeats`` independent means of ``n`` one-sample estimates of the batch
    (:func:`pgviz.estimator.pg_loss`, no baseline), drawn at the outputs and pushed to the
    parameters; theory ``rms_error = sqrt(Var / n)``.

    Returns the keys of :func:`mc_error_scaling` (float32 tensors: ``n``, ``rms_error``,
    ``predicted``, ``errors`` [len(ns), repeats], ``exact``, ``variance``, ``slope`` from
    :func:`loglog_slope`) and ``exact_from_v``; ``estimates`` is left out (parameter vectors).
    """
    from .. import estimator
    import torch.nn.functional as F

    params = list(params)

    def to_params(grad_at_outputs):
        g = torch.autograd.grad(out, params, grad_at_outputs, retain_graph=True)
        return torch.cat([t.flatten() for t in g])

    with torch.enable_grad():
        G = estimator.expected_reward(out, labels)
        exact = to_params(torch.autograd.grad(G, out, retain_graph=True)[0])
    b, n_act = out.shape[0], out.shape[1] - 1
    pi = estimator.split_outputs(out)[0].exp().detach()
    p_y = pi[torch.arange(b), labels]
    v = torch.stack([to_params(torch.cat([(F.one_hot(labels, n_act) - pi) * (torch.arange(b) == i)[:, None] / b,
                                          torch.zeros(b, 1)], 1)) for i in range(b)])  # [B, parameters]
    variance = (p_y * (1 - p_y) * v.pow(2).sum(1)).sum()
    gen = torch.Generator().manual_seed(seed)
    n_max = max(ns)
    k = repeats * n_max  # draws in all: the batch repeated k times
    big = out.detach().repeat(k, 1).requires_grad_()
    res = estimator.pg_loss(big, labels.repeat(k), entropy_weight=0.0, use_baseline=False, generator=gen)
    draws = (-torch.autograd.grad(res.loss, big)[0] * k).view(repeats, n_max, b, -1)  # ascent on G
    errors = torch.tensor([[float((to_params(draws[r, :n].mean(0)) - exact).norm()) for r in range(repeats)]
                           for n in ns])
    n_t = torch.tensor(list(ns))
    rms = errors.pow(2).mean(1).sqrt()
    return {"n": n_t, "rms_error": rms, "predicted": (variance.detach() / n_t).sqrt(), "errors": errors,
            "exact": exact.detach(), "exact_from_v": (p_y @ v).detach(), "variance": variance.detach(),
            "slope": loglog_slope(n_t, rms)}


def loglog_slope(x: TensorLike, y: TensorLike) -> float:
    """Least-squares slope of ``log y`` against ``log x`` (-1/2 for a ``1/sqrt(n)`` law)."""
    lx, ly = _t(x).log(), _t(y).log()
    lx, ly = lx - lx.mean(), ly - ly.mean()
    return float((lx * ly).sum() / (lx * lx).sum())


# ----------------------------------------------------------------------------
# The variance of the estimator (Baselines)
# ----------------------------------------------------------------------------
def measured_variance(logits: torch.Tensor, rewards: torch.Tensor, baseline: TensorLike = 0.0,
                      n_draws: int = 20_000, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Trace of the *sample* covariance of ``n_draws`` single-sample estimates (eq:single-sample).

    The measured counterpart of eq:variance (:func:`pgviz.exact.exact_variance`): draw
    the estimates with :func:`pgviz.exact.score_function_estimates`, take each
    coordinate's unbiased sample variance, sum over coordinates.
    """
    with one_thread():
        g = score_function_estimates(_t(logits), _t(rewards), n_draws, baseline=_t(baseline),
                                               generator=generator)
        return g.var(dim=0, unbiased=True).sum()


def variance_study(p_correct: TensorLike, n_actions: int = 10, n_draws: int = 20_000,
                   seed: int = 0) -> dict:
    """Variance of the single-sample estimator as the policy grows confident (Baselines).

    For each ``pi_y`` in ``p_correct`` (policy :func:`confident_policy`, 0/1 reward) and
    three baselines — none (``b = 0``), the value ``V = pi_y`` (what a perfectly learned
    baseline predicts) and the variance-optimal ``b*`` (:func:`pgviz.exact.optimal_baseline`)
    — the exact trace (eq:variance) and the measured one (:func:`measured_variance`).

    Returns a dict: ``p``, ``b_opt`` and, for ``name`` in ``("none", "value", "optimal")``,
    ``exact_<name>`` and ``measured_<name>`` (tensors over ``p``).
    """
    p = _t(p_correct).reshape(-1)
    rewards = correct_rewards(n_actions)
    gen = seeded_generator(seed)
    out = {"p": p, "b_opt": torch.empty_like(p)}
    for name in ("none", "value", "optimal"):
        out[f"exact_{name}"] = torch.empty_like(p)
        out[f"measured_{name}"] = torch.empty_like(p)
    for i, pi_y in enumerate(p.tolist()):
        logits = confident_policy(pi_y, n_actions)
        b_opt = optimal_baseline(logits, rewards)
        out["b_opt"][i] = b_opt
        for name, b in (("none", 0.0), ("value", pi_y), ("optimal", float(b_opt))):
            out[f"exact_{name}"][i] = exact_variance(logits, rewards, b)
            out[f"measured_{name}"][i] = measured_variance(logits, rewards, b, n_draws, gen)
    return out


def value_baseline_crossover(n_actions: int = 10, tol: float = 1e-10) -> float:
    """The ``pi_y`` above which the value baseline ``V = pi_y`` has *more* variance than none.

    Found by bisection on ``exact_variance(b = pi_y) - exact_variance(b = 0)`` (0/1 reward,
    :func:`confident_policy`).
    """
    rewards = correct_rewards(n_actions)

    def diff(p: float) -> float:
        logits = confident_policy(p, n_actions)
        return float(exact_variance(logits, rewards, p) - exact_variance(logits, rewards, 0.0))

    lo, hi = 1.0 / n_actions, 1.0 - 1e-9
    if diff(lo) >= 0 or diff(hi) <= 0:
        raise RuntimeError("no crossover in (1/K, 1)")
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if diff(mid) < 0 else (lo, mid)
    return 0.5 * (lo + hi)




def baseline_slice(b: float, p: float, n_actions: int = 10, n_draws: int = 4000, seed: int = 0) -> dict:
    """The variance as a function of the baseline at ``pi_y = p`` (Baselines; a parabola, eq:variance).

    For the policy :func:`~pgviz.sims.policies.confident_policy` with the 0/1 reward: the exact
    curve over ``b`` in [-0.2, 1.2], its minimum ``b*`` (eq:optimal-baseline), the exact
    variance at ``b*``, at the value ``V = pi_y`` and at no baseline, the variance measured
    from ``n_draws`` draws at the chosen ``b`` (:func:`measured_variance`), and each kind of
    draw's share of the second moment at ``b`` (:func:`pgviz.exact.variance_terms`): the
    correct label against the ``K - 1`` wrong ones, with the largest share over ``b`` in [0, 1]
    (a fixed scale for a slider over ``b``).

    Returns a dict: ``b``, ``p``, ``n_actions``, ``bs`` and ``curve`` [141], ``b_opt``,
    ``var_opt``, ``var_value``, ``var_none``, ``measured``, ``shares`` ([correct, wrong]) and
    ``share_top`` (floats except the tensors ``bs``, ``curve`` and ``shares``).
    """
    logits, rewards = confident_policy(p, n_actions), correct_rewards(n_actions)
    bs = torch.linspace(-0.2, 1.2, 141, dtype=DTYPE)
    curve = exact_variance(logits, rewards, bs)
    b_opt = float(optimal_baseline(logits, rewards))
    v_at = lambda x: float(exact_variance(logits, rewards, x))  # noqa: E731
    measured = float(measured_variance(logits, rewards, b, n_draws, seeded_generator(seed)))
    correct = int(rewards.argmax())

    def shares(x):
        terms = variance_terms(logits, rewards, x)
        return torch.stack([terms[correct], terms.sum() - terms[correct]])

    ends = [shares(x) for x in (0.0, 1.0)]
    return {"b": b, "p": p, "n_actions": n_actions, "bs": bs, "curve": curve, "b_opt": b_opt,
            "var_opt": v_at(b_opt), "var_value": v_at(p), "var_none": v_at(0.0), "measured": measured,
            "shares": shares(b), "share_top": max(float(t.max()) for t in ends)}
