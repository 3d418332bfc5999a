"""A/B, averaging over time (the chapter *Averaging over time*): two actions, rewards
``r_a < r_b``, and the single-sample steps that go the wrong way half of the time but the
right way on average (eq:ab-expected).  :mod:`pgviz.figures.ab` draws these numbers.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch

from ..exact import DTYPE
from ._common import TensorLike, _t
from .loop import simulate

__all__ = ["ab_steps", "ab_runs", "ab_sweep", "ab_index"]


def ab_steps(r_a: TensorLike = 50.0, r_b: TensorLike = 100.0, p_b: TensorLike = 0.5,
             lr: TensorLike = 1.0, baseline: TensorLike = 0.0) -> dict:
    """The two possible single-sample steps on the logits ``(theta_A, theta_B)`` and their mean.

    With ``pi = (1 - p_b, p_b)``: after sampling A the step is ``lr (r_a - b)(onehot(A) - pi)``,
    after B ``lr (r_b - b)(onehot(B) - pi)`` (eq:single-sample); their ``pi``-weighted mean is
    ``lr p_b (1 - p_b)(r_b - r_a) (-1, +1)`` (eq:ab-expected), which does not depend on ``b``.

    Returns a dict of tensors: ``step_a``, ``step_b``, ``expected`` (each ``[..., 2]`` logit
    changes), ``prob_a``/``prob_b`` (how likely each step is), and ``p_b_after_a``,
    ``p_b_after_b`` (P(B) after taking that step).
    """
    r_a, r_b, p_b, lr, b = (_t(x) for x in (r_a, r_b, p_b, lr, baseline))
    pi = torch.stack(torch.broadcast_tensors(1.0 - p_b, p_b), -1)
    e_a = torch.tensor([1.0, 0.0], dtype=DTYPE)
    e_b = torch.tensor([0.0, 1.0], dtype=DTYPE)
    step_a = (lr * (r_a - b))[..., None] * (e_a - pi)
    step_b = (lr * (r_b - b))[..., None] * (e_b - pi)
    expected = (1.0 - p_b)[..., None] * step_a + p_b[..., None] * step_b
    theta = pi.log()
    return {
        "step_a": step_a, "step_b": step_b, "expected": expected,
        "prob_a": 1.0 - p_b, "prob_b": p_b,
        "p_b_after_a": torch.softmax(theta + step_a, -1)[..., 1],
        "p_b_after_b": torch.softmax(theta + step_b, -1)[..., 1],
    }


def ab_runs(r_a: TensorLike = 50.0, r_b: TensorLike = 100.0, *, lr: TensorLike = 0.01,
            baseline: TensorLike = 0.0, steps: int = 100, n_runs: int = 200, p_b0: float = 0.5,
            seed: int = 0) -> dict:
    """Many A/B training runs (eq:update with ``K = 2``, no entropy bonus): P(B) over steps.

    ``r_a``, ``r_b``, ``lr`` and ``baseline`` broadcast to a settings shape ``S`` and are all
    simulated in one batch.  Returns ``p_b`` ``[steps + 1, *S, n_runs]`` (sampled runs) and
    ``p_b_exact`` ``[steps + 1, *S]`` (the exact-gradient path the runs scatter around).
    """
    rewards = torch.stack(torch.broadcast_tensors(_t(r_a), _t(r_b)), -1)
    logits0 = torch.tensor([math.log(1.0 - p_b0), math.log(p_b0)], dtype=DTYPE)
    hist = simulate(logits0, rewards, lr=lr, steps=steps, baseline=baseline, n_runs=n_runs, seed=seed)
    exact = simulate(logits0, rewards, lr=lr, steps=steps, baseline=baseline, exact=True)  # b broadcasts only
    return {"p_b": hist[..., 1], "p_b_exact": exact[..., 0, 1]}


def ab_sweep(r_a: Sequence[float] = (25.0, 50.0, 75.0), r_b: Sequence[float] = (100.0, 150.0),
             lr: Sequence[float] = (0.003, 0.01), baseline: Sequence[float] = (0.0, 50.0, 75.0), *,
             steps: int = 100, n_runs: int = 200, seed: int = 0) -> dict:
    """:func:`ab_runs` on the full grid ``r_a x r_b x lr x baseline`` (one batch, for a slider figure).

    Returns :func:`ab_runs`' dict (settings shape ``[len(r_a), len(r_b), len(lr), len(baseline)]``)
    plus ``grid``: the four value lists, so :func:`pgviz.figures.ab.draw_ab_runs` can look a setting up by value.
    """
    grid = {"r_a": list(r_a), "r_b": list(r_b), "lr": list(lr), "baseline": list(baseline)}
    out = ab_runs(_t(grid["r_a"])[:, None, None, None], _t(grid["r_b"])[:, None, None],
                  lr=_t(grid["lr"])[:, None], baseline=_t(grid["baseline"]), steps=steps,
                  n_runs=n_runs, seed=seed)
    out["grid"] = grid
    return out


def ab_index(sweep: dict, **values: float) -> tuple:
    """The settings index of ``r_a=..., r_b=..., lr=..., baseline=...`` in an :func:`ab_sweep`."""
    def find(name):
        vals = sweep["grid"][name]
        return min(range(len(vals)), key=lambda j: abs(vals[j] - values[name]))
    return tuple(find(n) for n in ("r_a", "r_b", "lr", "baseline"))
