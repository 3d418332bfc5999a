"""The companion notebook's two other supervised objectives, beside cross-entropy
(:func:`pgviz.estimator.xent_loss`): teacher-student (KL to a mix of a trained teacher's
softmax and the one-hot label) and sampled softmax (the label's score against a shared
sample of noise classes, corrected for the sample) {cite}`orr2021notebook`.  Used by the
``teacher-student`` and ``sampled-softmax`` entries of :mod:`pgviz.objectives`."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

__all__ = ["teacher_student_loss", "sample_noise", "sampled_softmax_loss"]


def teacher_student_loss(outputs: torch.Tensor, labels: torch.Tensor, teacher_probs: torch.Tensor, *,
                         mix: float = 0.5) -> torch.Tensor:
    r"""Teacher-student (distillation) towards a mix of a teacher's softmax and the label
    (eq:teacher-student; the objective of the companion notebook {cite}`orr2021notebook`,
    whose ``alpha = 0.5`` is ``mix``; the teacher there is its cross-entropy network).

    The target of image ``i`` is ``t_i = mix * q_i + (1 - mix) * onehot(y_i)`` where
    ``q_i = teacher_probs[i]`` (a trained network's softmax, no gradient), and the loss is
    the batch mean of ``KL(t_i || pi_i) = sum_a t_ia (log t_ia - log pi_ia)`` (``0 log 0 =
    0``) with ``pi_i = softmax`` of the first ``n_classes`` outputs.  Its gradient on the
    logits is ``(pi_i - t_i) / B``: ``mix = 0`` is cross-entropy's ``pi - onehot(y)``,
    ``mix = 1`` pure distillation ``pi - q``.
    """
    if not (isinstance(mix, (int, float)) and 0.0 <= mix <= 1.0):
        raise ValueError(f"mix must lie in [0, 1], got {mix}")
    logits = outputs[:, :-1].float()
    if teacher_probs.shape != logits.shape:
        raise ValueError(f"teacher_probs must be [batch, n_classes] = {tuple(logits.shape)}, "
                         f"got {tuple(teacher_probs.shape)}")
    log_probs = F.log_softmax(logits, dim=1)
    onehot = F.one_hot(labels, logits.shape[1]).to(log_probs.dtype)
    target = mix * teacher_probs.detach().to(log_probs.dtype) + (1.0 - mix) * onehot
    return (torch.xlogy(target, target) - target * log_probs).sum(1).mean()


def sample_noise(n_classes: int, n_samples: int, *, device=None,
                 generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """``n_samples`` classes drawn uniformly with replacement (one draw shared by the batch)."""
    dev = generator.device if generator is not None else device
    return torch.randint(0, n_classes, (n_samples,), generator=generator, device=dev).to(device)


def sampled_softmax_loss(outputs: torch.Tensor, labels: torch.Tensor, *, n_samples: int = 5,
                         noise: Optional[torch.Tensor] = None,
                         generator: Optional[torch.Generator] = None) -> torch.Tensor:
    r"""Sampled softmax: the label's score against a few noise classes instead of all of
    them (eq:sampled-softmax; the objective of the companion notebook {cite}`orr2021notebook`,
    whose sample count is 5).

    One draw ``s_1 .. s_S`` of ``S = n_samples`` classes, uniform with replacement, is
    shared by the batch (:func:`sample_noise`; or given as ``noise``).  For image ``i`` the
    draws equal to its label are rejected, leaving ``m_i``; each kept class scores
    ``z_s + log((C - 1) / m_i)`` (``C`` classes), the correction that makes the kept terms
    an unbiased estimate of the sum over all ``C - 1`` wrong classes:
    ``E[(C - 1) / m_i sum_kept exp(z_s) | m_i >= 1] = sum_{a != y} exp(z_a)``.  The loss is
    softmax cross-entropy with the label in first place,

    ``L_i = log(exp(z_y) + (C - 1) / m_i sum_kept exp(z_s)) - z_y``  (``L_i = 0`` when ``m_i = 0``),

    averaged over the batch.  With every class drawn once (``noise = arange(C)``, so
    ``m_i = C - 1``) it *is* cross-entropy.
    """
    if not isinstance(n_samples, int) or isinstance(n_samples, bool) or n_samples < 1:
        raise ValueError(f"n_samples must be a whole number >= 1, got {n_samples}")
    logits = outputs[:, :-1].float()
    n_classes = logits.shape[1]
    if noise is None:
        noise = sample_noise(n_classes, n_samples, device=logits.device, generator=generator)
    noise = noise.to(logits.device)
    kept = noise[None, :] != labels[:, None]                       # [B, S]
    m = kept.sum(1, keepdim=True)
    correction = torch.log((n_classes - 1) / m.clamp(min=1).to(logits.dtype))
    noise_scores = (logits[:, noise] + correction).masked_fill(~kept, float("-inf"))
    label_scores = logits.gather(1, labels[:, None])
    scores = torch.cat([label_scores, noise_scores], dim=1)
    return (torch.logsumexp(scores, dim=1) - label_scores.squeeze(1)).mean()
