"""The training objectives: one batch of network outputs in, ``(loss, stats)`` out.

The trainer (:mod:`pgviz.training`) calls :func:`objective_step` once per batch and
backpropagates the loss; everything an objective means lives here, next to the
estimator it uses (:mod:`pgviz.estimator`).

``pg``              the article's estimator: one sampled label per image, reward 1 if
                    right, a learned sigmoid baseline trained with BCE, entropy bonus
                    (:func:`pgviz.estimator.pg_loss`, the single-backward surrogate);
``pg-no-baseline``  the same with ``b = 0``;
``xent``            softmax cross-entropy, the supervised comparison.
"""
from __future__ import annotations

from typing import Optional

import torch

from . import estimator

__all__ = ["OBJECTIVES", "STAT_NAMES", "objective_step"]

OBJECTIVES = ("pg", "pg-no-baseline", "xent")
# Per-step statistics, in this order, in one tensor (one device sync per logged step).
STAT_NAMES = ("loss", "reward", "baseline", "entropy", "policy_loss", "baseline_loss", "train_acc")
# ... of which these do not exist for an objective (logged as null).
_NOT_MEASURED = {"pg": (), "pg-no-baseline": ("baseline",),
                 "xent": ("reward", "baseline", "entropy", "policy_loss", "baseline_loss")}


def objective_step(objective: str, outputs: torch.Tensor, labels: torch.Tensor, *,
                   entropy_weight: float = 0.01, generator: Optional[torch.Generator] = None):
    """``(loss to backpropagate, stats)`` for one batch; ``stats`` is a detached tensor in
    the order of ``STAT_NAMES`` (no device synchronisation happens here)."""
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; choose one of: {', '.join(OBJECTIVES)}")
    outputs = outputs.float()
    acc = (outputs[:, :-1].argmax(1) == labels).float().mean()
    if objective == "xent":
        loss = estimator.xent_loss(outputs, labels)
        nan = torch.full((), float("nan"), device=outputs.device)
        stats = torch.stack([loss.detach(), nan, nan, nan, nan, nan, acc])
        return loss, stats
    # Sample a ~ pi here (as estimator.pg_loss would) but from NaN-free logits, so that a
    # diverged network reaches the finite-loss check instead of crashing torch.multinomial.
    with torch.no_grad():
        logits = torch.nan_to_num(outputs[:, :-1], nan=0.0, posinf=0.0, neginf=0.0)
        if generator is not None and generator.device != logits.device:  # e.g. MPS: CPU generator
            logits = logits.to(generator.device)
        actions = estimator.sample_actions(torch.log_softmax(logits, 1), generator).to(outputs.device)
    r = estimator.pg_loss(outputs, labels, entropy_weight=entropy_weight,
                          use_baseline=(objective == "pg"), actions=actions)
    baseline = r.baseline.mean() if objective == "pg" else torch.full((), float("nan"), device=outputs.device)
    stats = torch.stack([r.loss.detach(), r.rewards.mean(), baseline, r.entropy,
                         r.policy_loss, r.baseline_loss, acc])
    return r.loss, stats
