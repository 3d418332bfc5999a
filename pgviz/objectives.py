"""The training objectives: one batch of network outputs in, ``(loss, stats)`` out.

The trainer (:mod:`pgviz.train`) calls :func:`objective_step` once per batch and
backpropagates the loss; everything an objective means lives here, next to the
estimator it uses (:mod:`pgviz.estimator`).

``pg``              the article's estimator: one sampled label per image, reward 1 if
                    right, a learned sigmoid baseline trained with BCE, entropy bonus
                    (:func:`pgviz.estimator.pg_loss`, the single-backward surrogate;
                    eq:single-sample, {cite}`williams1992simple`);
``pg-no-baseline``  the same with ``b = 0``;
``xent``            softmax cross-entropy, the supervised comparison (eq:gap-xent);
``pg-exact``        the exact expected-reward gradient over all actions, no sampling:
                    cross-entropy weighted by the detached ``pi_y`` (eq:gap-exact;
                    :func:`pgviz.estimator.pg_exact_loss`);
``rloo``            ``samples = K >= 2`` sampled labels per image, each scored against the
                    mean reward of the other ``K - 1`` (eq:gap-rloo; {cite}`kool2019buy`,
                    {cite}`ahmadian2024back`); ``group_norm`` divides the advantages by
                    the group's standard deviation as GRPO does (eq:gap-group-norm;
                    {cite}`shao2024deepseekmath`) (:func:`pgviz.estimator.rloo_loss`);
``value``           the series' value-function objective: per-action reward predictions
                    trained with BCE on the action taken epsilon-greedily (eq:gap-value;
                    {cite}`orr2021value`; :func:`pgviz.estimator.value_loss`).
"""
from __future__ import annotations

from typing import Optional

import torch

from . import estimator

__all__ = ["OBJECTIVES", "STAT_NAMES", "objective_step", "check_options", "config_options",
           "reward_queries"]

OBJECTIVES = ("pg", "pg-no-baseline", "xent", "pg-exact", "rloo", "value")
# Per-step statistics, in this order, in one tensor (one device sync per logged step).
STAT_NAMES = ("loss", "reward", "baseline", "entropy", "policy_loss", "baseline_loss", "train_acc")
# ... of which these do not exist for an objective (logged as null).
_NOT_MEASURED = {"pg": (), "pg-no-baseline": ("baseline",),
                 "xent": ("reward", "baseline", "entropy", "policy_loss", "baseline_loss"),
                 "pg-exact": (), "rloo": (),
                 "value": ("baseline", "entropy", "baseline_loss")}
assert set(_NOT_MEASURED) == set(OBJECTIVES)


def check_options(objective: str, samples: int = 1, group_norm: bool = False,
                  epsilon: float = 0.2) -> Optional[str]:
    """The one-line complaint about objective-specific settings that cannot work, or None."""
    if not isinstance(samples, int) or isinstance(samples, bool) or samples < 1:
        return f"samples must be a whole number >= 1, got {samples}"
    if objective == "rloo" and samples < 2:
        return (f"rloo needs --samples K >= 2 (got {samples}): with one sample there is no other "
                f"sample to form the leave-one-out baseline; use --objective pg for one sample")
    if objective != "rloo" and samples != 1:
        return f"--samples {samples} applies to --objective rloo only (got {objective})"
    if group_norm and objective != "rloo":
        return f"--group-norm applies to --objective rloo only (got {objective})"
    if not (isinstance(epsilon, (int, float)) and 0.0 <= epsilon <= 1.0):
        return f"epsilon must lie in [0, 1], got {epsilon}"
    return None


def config_options(config) -> dict:
    """The keyword arguments of :func:`objective_step` that a ``TrainConfig`` sets."""
    return {"entropy_weight": config.entropy_weight, "samples": getattr(config, "samples", 1),
            "group_norm": getattr(config, "group_norm", False), "epsilon": getattr(config, "epsilon", 0.2)}


def reward_queries(objective: str, samples: int = 1, n_actions: int = 10) -> Optional[int]:
    """Rewards the objective asks for per image: 1 for the one-guess game, ``K`` for rloo,
    every action's for ``pg-exact`` (the label, in effect); None for ``xent`` (no rewards)."""
    return {"xent": None, "pg-exact": n_actions, "rloo": samples}.get(objective, 1)


def objective_step(objective: str, outputs: torch.Tensor, labels: torch.Tensor, *,
                   entropy_weight: float = 0.01, generator: Optional[torch.Generator] = None,
                   samples: int = 1, group_norm: bool = False, epsilon: float = 0.2):
    """``(loss to backpropagate, stats)`` for one batch; ``stats`` is a detached tensor in
    the order of ``STAT_NAMES`` (no device synchronisation happens here)."""
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; choose one of: {', '.join(OBJECTIVES)}")
    outputs = outputs.float()
    acc = (outputs[:, :-1].argmax(1) == labels).float().mean()
    nan = torch.full((), float("nan"), device=outputs.device)
    if objective == "xent":
        loss = estimator.xent_loss(outputs, labels)
        stats = torch.stack([loss.detach(), nan, nan, nan, nan, nan, acc])
        return loss, stats
    if objective == "pg-exact":
        r = estimator.pg_exact_loss(outputs, labels, entropy_weight=entropy_weight)
        return r.loss, torch.stack([r.loss.detach(), r.rewards.mean(), r.baseline.mean(), r.entropy,
                                    r.policy_loss, r.baseline_loss, acc])
    # Sample from NaN-free logits (as the estimators would, but a diverged network then
    # reaches the finite-loss check instead of crashing torch.multinomial).
    with torch.no_grad():
        logits = torch.nan_to_num(outputs[:, :-1], nan=0.0, posinf=0.0, neginf=0.0)
        if generator is not None and generator.device != logits.device:  # e.g. MPS: CPU generator
            logits = logits.to(generator.device)
        log_probs = torch.log_softmax(logits, 1)
        if objective == "rloo":
            actions = estimator.sample_groups(log_probs, samples, generator).to(outputs.device)
        elif objective == "value":
            actions = None
        else:
            actions = estimator.sample_actions(log_probs, generator).to(outputs.device)
    if objective == "value":
        r = estimator.value_loss(outputs, labels, epsilon=epsilon, generator=generator)
        return r.loss, torch.stack([r.loss.detach(), r.rewards.mean(), nan, nan, r.policy_loss, nan, acc])
    if objective == "rloo":
        r = estimator.rloo_loss(outputs, labels, samples=samples, group_norm=group_norm,
                                entropy_weight=entropy_weight, actions=actions)
        baseline = r.baseline.mean()
    else:
        r = estimator.pg_loss(outputs, labels, entropy_weight=entropy_weight,
                              use_baseline=(objective == "pg"), actions=actions)
        baseline = r.baseline.mean() if objective == "pg" else nan
    stats = torch.stack([r.loss.detach(), r.rewards.mean(), baseline, r.entropy,
                         r.policy_loss, r.baseline_loss, acc])
    return r.loss, stats
