"""Policies and rewards for one image over the ten CIFAR-10 labels (the bandit view).

A classifier played as a contextual bandit looks, for one fixed image, like a *bandit*: a
logits vector ``theta``, a policy ``pi = softmax(theta)`` over ``K`` actions and a reward
``R(a)`` for each action.  These build the ones the chapters use.
"""
from __future__ import annotations

import torch

from ..data import CIFAR10_CLASSES
from ..estimator import ARTICLE
from ..exact import DTYPE
from ._common import TensorLike, _t

__all__ = ["HORSE", "DOG", "confident_policy", "correct_rewards", "article_policy"]

#: The index of "horse" (the article's image) among :data:`pgviz.data.CIFAR10_CLASSES`.
HORSE = CIFAR10_CLASSES.index("horse")
#: The index of "dog" (the tempting wrong answer).
DOG = CIFAR10_CLASSES.index("dog")


def confident_policy(p_correct: TensorLike, n_actions: int = 10, correct: int = HORSE) -> torch.Tensor:
    """Logits of a policy with ``pi(correct) = p_correct`` and the rest shared equally.

    ``p_correct`` may be a tensor of values in (0, 1); the result then has shape
    ``p_correct.shape + (n_actions,)`` (a family of policies, from unsure to confident).
    """
    p = _t(p_correct)
    if torch.any((p <= 0) | (p >= 1)):
        raise ValueError("p_correct must lie strictly between 0 and 1")
    rest = (1.0 - p) / (n_actions - 1)
    probs = rest[..., None].expand(*p.shape, n_actions).clone()
    probs[..., correct] = p
    return probs.log()


def correct_rewards(n_actions: int = 10, correct: int = HORSE) -> torch.Tensor:
    """The article's 0/1 reward as a vector over actions: ``R(a) = 1`` iff ``a`` is the label."""
    r = torch.zeros(n_actions, dtype=DTYPE)
    r[correct] = 1.0
    return r


def article_policy(eps: float = 0.02) -> torch.Tensor:
    """Logits of the article's horse-image policy on all ten CIFAR-10 labels.

    The article shows horse .6, dog .3, airplane .05, cat .05 and leaves the other six at
    zero, which no softmax reaches; here a total of ``eps`` is taken from those four (in
    proportion) and shared by the six, so every logit is finite.
    """
    probs = torch.zeros(10, dtype=DTYPE)
    for label, p in zip(ARTICLE["labels"], ARTICLE["probs"]):
        probs[CIFAR10_CLASSES.index(label)] = p
    zero = probs == 0
    probs = probs * (1.0 - eps)
    probs[zero] = eps / int(zero.sum())
    return probs.log()
