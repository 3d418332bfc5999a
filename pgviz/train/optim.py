"""The optimisation's two small pieces: the learning-rate warm-up and the weight average.

The trainer runs Adam at a constant learning rate after a short linear warm-up
(:func:`warmup_lr`) and evaluates a running average of the weights (:class:`WeightAverage`).
"""
from __future__ import annotations

import copy

import torch

__all__ = ["WeightAverage", "adam", "warmup_lr"]


def adam(params, lr: float, device: torch.device) -> torch.optim.Adam:
    """Adam as the trainer runs it: the fused kernel on CUDA (one launch per step), the
    multi-tensor (``foreach``) form elsewhere.  The state's format is Adam's either way, so
    a checkpoint from one loads into the other."""
    if torch.device(device).type == "cuda":
        return torch.optim.Adam(params, lr=lr, fused=True)
    return torch.optim.Adam(params, lr=lr, foreach=True)


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
        self._lists = None  # (live model, float pairs, other pairs), made on the first update

    def _pairs(self, model: torch.nn.Module):
        """The average's and ``model``'s tensors, in state-dict order, split into floating
        point (averaged) and the rest (copied: BatchNorm's counters); cached per model."""
        if self._lists is None or self._lists[0] is not model:
            avg, live = self.model.state_dict(keep_vars=True), model.state_dict(keep_vars=True)
            floats = [(avg[k].data, live[k].data) for k in avg if avg[k].is_floating_point()]
            others = [(avg[k].data, live[k].data) for k in avg if not avg[k].is_floating_point()]
            self._lists = (model, [a for a, _ in floats], [b for _, b in floats],
                           [a for a, _ in others], [b for _, b in others])
        return self._lists[1:]

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        """Move the average towards ``model``'s current weights (one step's worth): one
        ``_foreach_lerp_`` and one ``_foreach_copy_`` over cached lists (two launches on a GPU)."""
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        avg_f, live_f, avg_o, live_o = self._pairs(model)
        if avg_f:
            torch._foreach_lerp_(avg_f, live_f, 1.0 - d)
        if avg_o:
            torch._foreach_copy_(avg_o, live_o)
