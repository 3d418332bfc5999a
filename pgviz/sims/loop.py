"""The training-loop simulator: many bandit runs of the single-sample estimator at once.

Gradient ascent on ``G + lambda H`` with one sampled action per step (eq:update), vectorised
over runs and over swept settings; the collapse stories of *Policy regularisation*
(:mod:`pgviz.sims.collapse`) and the A/B game of *Averaging over time* (:mod:`pgviz.sims.ab`)
run on it.
"""
from __future__ import annotations

from typing import Union

import torch
import torch.nn.functional as F

from ..exact import DTYPE, entropy_gradient, exact_gradient
from ._common import TensorLike, _t, one_thread
from ._common import generator as seeded_generator

__all__ = ["simulate"]


def simulate(logits0: TensorLike, rewards: TensorLike, *, lr: TensorLike, steps: int,
             baseline: Union[TensorLike, str] = 0.0, entropy_weight: TensorLike = 0.0,
             n_runs: int = 1, seed: int = 0, exact: bool = False, record_every: int = 1) -> torch.Tensor:
    """Train a bandit policy with the single-sample estimator, many runs at once (eq:update).

    Each step, every run samples one action ``a ~ softmax(theta)`` and moves its logits
    ``theta <- theta + lr * ((R(a) - b)(onehot(a) - pi) + entropy_weight * grad H)``
    (eq:single-sample, eq:entropy-grad): gradient *ascent* on ``G + entropy_weight * H``.

    ``lr``, ``baseline`` and ``entropy_weight`` may be tensors; they broadcast together with
    ``logits0.shape[:-1]`` and ``rewards.shape[:-1]`` to a *settings* shape ``S`` that is
    simulated in one go.
    ``baseline="value"`` uses the current policy's exact value ``V = sum_a pi_a R_a`` (a
    perfectly learned baseline).  ``exact=True`` replaces the sample by the exact expected
    gradient (:func:`pgviz.exact.exact_gradient`): the path the estimates average to
    (``n_runs`` is then 1).

    Returns the policies ``pi`` recorded every ``record_every`` steps (step 0 included):
    shape ``[steps // record_every + 1, *S, n_runs, K]``.
    """
    with one_thread():
        return _simulate(logits0, rewards, lr=lr, steps=steps, baseline=baseline,
                         entropy_weight=entropy_weight, n_runs=n_runs, seed=seed, exact=exact,
                         record_every=record_every)


def _simulate(logits0, rewards, *, lr, steps, baseline, entropy_weight, n_runs, seed, exact, record_every):
    logits0, rewards = _t(logits0), _t(rewards)
    k = logits0.shape[-1]
    lr_t, ent_t = _t(lr), _t(entropy_weight)
    value_baseline = isinstance(baseline, str)
    if value_baseline and baseline != "value":
        raise ValueError("baseline must be a number, a tensor or 'value'")
    b_t = torch.zeros((), dtype=DTYPE) if value_baseline else _t(baseline)
    settings = torch.broadcast_shapes(logits0.shape[:-1], rewards.shape[:-1], lr_t.shape, ent_t.shape,
                                      b_t.shape)
    if exact:
        n_runs = 1
    theta = logits0.expand(*settings, k)[..., None, :].expand(*settings, n_runs, k).clone()
    rewards = rewards.expand(*settings, k)[..., None, :].expand(*settings, n_runs, k)
    lr_t = lr_t.expand(settings)[..., None, None]
    ent_t = ent_t.expand(settings)[..., None, None]
    b_t = b_t.expand(settings)[..., None]
    gen = seeded_generator(seed)
    history = [torch.softmax(theta, -1)]
    for step in range(1, steps + 1):
        pi = torch.softmax(theta, -1)
        if exact:
            grad = exact_gradient(theta, rewards)
        else:
            flat = pi.reshape(-1, k)
            actions = torch.multinomial(flat, 1, generator=gen).reshape(pi.shape[:-1])
            onehot = F.one_hot(actions, k).to(DTYPE)
            b = (pi * rewards).sum(-1) if value_baseline else b_t
            r = rewards.gather(-1, actions[..., None])[..., 0]
            grad = (r - b)[..., None] * (onehot - pi)
        theta = theta + lr_t * (grad + ent_t * entropy_gradient(theta))
        if step % record_every == 0:
            history.append(torch.softmax(theta, -1))
    return torch.stack(history)
