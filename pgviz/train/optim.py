"""The optimisation's two small pieces: the learning-rate warm-up and the weight average.

The trainer runs Adam at a constant learning rate after a short linear warm-up
(:func:`warmup_lr`) and evaluates a running average of the weights (:class:`WeightAverage`).
"""
from __future__ import annotations

import copy

import torch

__all__ = ["WeightAverage", "warmup_lr"]


def warmup_lr(step: int, lr: float, warmup_steps: int) -> float:
    """Learning rate of step ``step`` (0-based): ``lr * (step + 1) / warmup_steps`` during
    the warm-up, so the first step already moves, then ``lr``."""
    return lr * min(1.0, (step + 1) / warmup_steps) if warmup_steps else lr


class WeightAverage:
    """An exponential moving average of a network's weights (and BatchNorm statistics).

    Training runs at a constant learning rate, so the live weights keep jittering with the
    sampling noise of the estimator; their running average is what gets evaluated (the
    "Polyak averaging" of the fastest CIFAR-10 trainers).  It never feeds back into
    training, so it changes nothing about the estimator.  The decay ramps up from 0 as
    ``(1 + t) / (10 + t)`` so that early averages are not dominated by the initial weights.
    """

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay, self.updates = decay, 0
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        """Move the average towards ``model``'s current weights (one step's worth)."""
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for avg, live in zip(self.model.state_dict().values(), model.state_dict().values()):
            if avg.is_floating_point():
                avg.lerp_(live, 1.0 - d)
            else:
                avg.copy_(live)
