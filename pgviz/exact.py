r"""Exact finite-action maths on one logits vector, written once.

For one image the classifier is a *bandit*: logits ``theta``, a policy
``pi = softmax(theta)`` over ``K`` actions and a reward ``R(a)`` for each action.  With
``K`` finite every expectation over ``a ~ pi`` is a sum, so the estimator's mean, variance
and best baseline have closed forms.  The book uses them to *check* the estimator
(:mod:`pgviz.estimator`), the toy simulations (:mod:`pgviz.sims`) run with them and the
gradient-noise probe (:mod:`pgviz.gap`) measures the network against them.

Equation labels are the book's (``{eq}`` references in the chapters named in brackets):

``eq:objective``      ``G(theta) = sum_a pi(a) R(a)``            (The policy gradient)
``eq:single-sample``  ``g(a) = (R(a) - b)(onehot(a) - pi)``, ``a ~ pi``  (The policy gradient)
``eq:variance``       ``Var(b) = sum_a pi_a (R_a - b)^2 |onehot(a) - pi|^2 - |grad G|^2``  (Baselines)
``eq:optimal-baseline``  ``b* = sum_a w_a R_a / sum_a w_a``, ``w_a = pi_a |onehot(a) - pi|^2``  (Baselines)
``eq:entropy``        ``H(pi) = -sum_a pi_a log pi_a``           (Policy regularisation)
``eq:entropy-grad``   ``grad H = -pi * (log pi + H)``             (Policy regularisation)
``eq:regularised-optimum``  ``pi* = softmax(R / lambda)``        (Policy regularisation)
``eq:wdid-grad-logpi``, ``eq:wdid-grad-logits``  the article's bars  (What does it do?)
``eq:gap-rloo``       the leave-one-out estimate                  (Where the gap comes from)
``eq:deriv-*``        the derivation's steps                      (Appendix: the derivation)

Functions that came from the estimator's side (:func:`exact_gradient`, :func:`exact_variance`,
:func:`optimal_baseline`, :func:`score_function_estimates`, :func:`rloo_estimates`,
:func:`rloo_exact_moments`, :func:`objective`) compute in the dtype of the logits they are
given; the ones that accept plain numbers (:func:`single_estimate`, :func:`variance_terms`,
:func:`entropy`, :func:`entropy_gradient`, :func:`regularised_optimum`, the Jacobians,
:func:`check`) compute in float64.  :func:`log_policy_grad` and :func:`logit_grad` take
*probabilities* (the article's bars), in float64.
"""
from __future__ import annotations

import itertools
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F

from .estimator import rloo_advantages

__all__ = [
    "DTYPE", "objective", "exact_gradient", "single_estimate", "log_policy_grad", "logit_grad",
    "score_function_estimates", "variance_terms", "exact_variance", "optimal_baseline",
    "rloo_estimates", "rloo_exact_moments", "entropy", "entropy_gradient", "regularised_optimum",
    "softmax_jacobian", "log_softmax_jacobian", "check",
]

#: The dtype of the float64 functions (and of :mod:`pgviz.sims`).
DTYPE = torch.float64

TensorLike = Union[float, Sequence[float], torch.Tensor]


def _t(x: TensorLike) -> torch.Tensor:
    return torch.as_tensor(x, dtype=DTYPE)


# ----------------------------------------------------------------------------
# The objective and its gradient
# ----------------------------------------------------------------------------
def objective(logits: torch.Tensor, rewards: torch.Tensor) -> torch.Tensor:
    """``G(theta) = sum_a softmax(theta)_a R(a)`` (eq:objective), differentiable.

    It is also the *value* of the policy, ``V = E_pi[R]`` (what a perfectly learned baseline
    predicts); for the 0/1 reward it is ``pi_y``.
    """
    return (torch.softmax(logits, -1) * rewards).sum(-1)


def exact_gradient(logits: torch.Tensor, rewards: torch.Tensor) -> torch.Tensor:
    """``grad_theta sum_a pi(a) R(a)`` in closed form, ``pi * (R - E_pi[R])`` (eq:objective).

    This is the ascent direction the single-sample estimates average to; rows of a
    ``[B, K]`` batch are independent images.
    """
    pi = torch.softmax(logits, -1)
    rewards = rewards.to(pi.dtype)
    return pi * (rewards - (pi * rewards).sum(-1, keepdim=True))


def single_estimate(logits: torch.Tensor, rewards: torch.Tensor, action: int,
                    baseline: TensorLike = 0.0) -> torch.Tensor:
    """One single-sample estimate for a *given* action: ``(R(a) - b)(onehot(a) - pi)`` (eq:single-sample)."""
    pi = torch.softmax(_t(logits), -1)
    onehot = F.one_hot(torch.as_tensor(action), pi.shape[-1]).to(DTYPE)
    return (_t(rewards)[action] - _t(baseline)) * (onehot - pi)


def log_policy_grad(probs, action: int, reward: float, baseline: float) -> torch.Tensor:
    """The article's "Grad log-policy" bars: ``d loss / d log pi = (V - R) onehot(action)``
    (eq:wdid-grad-logpi).

    With the article's numbers (V = 0.175): -0.825 after "horse" (R = 1), +0.175 after
    "dog" (R = 0).  Negative means "make this action more likely".
    """
    probs = torch.as_tensor(probs, dtype=torch.float64)
    g = torch.zeros_like(probs)
    g[action] = baseline - reward
    return g


def logit_grad(probs, action: int, reward: float, baseline: float) -> torch.Tensor:
    """What log-softmax spreads to the logits: ``d loss / d z = (V - R)(onehot(action) - pi)``
    (eq:wdid-grad-logits; minus :func:`single_estimate` with ``b = V``).

    Every other class ``k`` receives ``-(V - R) pi_k``: pushed the opposite way of the
    sampled one, in proportion to its probability.
    """
    probs = torch.as_tensor(probs, dtype=torch.float64)
    onehot = torch.zeros_like(probs)
    onehot[action] = 1.0
    return (baseline - reward) * (onehot - probs)


def score_function_estimates(
    logits: torch.Tensor,
    rewards: torch.Tensor,
    n: int,
    baseline=0.0,
    generator: Optional[torch.Generator] = None,
) -> torch.Tensor:
    """``n`` independent single-sample estimates ``(R(a) - b)(onehot(a) - pi)``, shape [n, K].

    eq:single-sample with ``a ~ pi``; their mean converges to :func:`exact_gradient`.
    """
    pi = torch.softmax(logits, -1)
    actions = torch.multinomial(pi.float(), n, replacement=True, generator=generator)
    onehot = F.one_hot(actions, pi.shape[-1]).to(pi.dtype)
    weight = rewards.to(pi.dtype)[actions] - torch.as_tensor(baseline, dtype=pi.dtype)
    return weight[:, None] * (onehot - pi)


# ----------------------------------------------------------------------------
# The variance of the single-sample estimator and the best constant baseline
# ----------------------------------------------------------------------------
def _score_sq_norm(pi: torch.Tensor) -> torch.Tensor:
    """``|onehot(a) - pi|^2 = 1 - 2 pi_a + sum_j pi_j^2`` for each action ``a``."""
    return 1.0 - 2.0 * pi + (pi * pi).sum(-1, keepdim=True)


def _second_moment_terms(pi: torch.Tensor, rewards: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``pi_a (R_a - b)^2 |onehot(a) - pi|^2``: each action's share of the second moment
    in eq:variance (``b`` may carry extra leading dimensions: one row per baseline)."""
    return pi * _score_sq_norm(pi) * (rewards - b[..., None]) ** 2


def variance_terms(logits: torch.Tensor, rewards: torch.Tensor, baseline: TensorLike) -> torch.Tensor:
    """Each action's share of the second moment in eq:variance: ``pi_a (R_a - b)^2 |onehot(a) - pi|^2``.

    Summed over ``a`` and minus ``|grad G|^2`` it is :func:`exact_variance`; it shows *which*
    draws make the noise (for a confident, correct policy and ``b = V``: the rare wrong actions).
    """
    return _second_moment_terms(torch.softmax(_t(logits), -1), _t(rewards), _t(baseline))


def exact_variance(logits: torch.Tensor, rewards: torch.Tensor, baseline=0.0) -> torch.Tensor:
    """Trace of the covariance of the single-sample estimator, summed exactly over actions (eq:variance).

    ``Var = sum_a pi_a (R_a - b)^2 |onehot(a) - pi|^2 - |grad G|^2``.  ``baseline`` may be
    a tensor of candidate values (the result then has its shape: a variance curve).
    """
    pi = torch.softmax(logits, -1)
    rewards = rewards.to(pi.dtype)
    b = torch.as_tensor(baseline, dtype=pi.dtype)
    second = _second_moment_terms(pi, rewards, b).sum(-1)
    g = exact_gradient(logits, rewards)
    return second - (g * g).sum(-1)


def optimal_baseline(logits: torch.Tensor, rewards: torch.Tensor) -> torch.Tensor:
    """The constant ``b*`` minimising :func:`exact_variance` (eq:optimal-baseline):

    ``b* = sum_a pi_a |onehot(a) - pi|^2 R_a / sum_a pi_a |onehot(a) - pi|^2``
    (set d Var / d b = 0; the variance is a parabola in ``b``).  Rows of ``[B, K]`` logits
    and rewards are separate images (one ``b*`` each, ``[B]``).
    """
    pi = torch.softmax(logits, -1)
    w = pi * _score_sq_norm(pi)
    return (w * rewards.to(pi.dtype)).sum(-1) / w.sum(-1)


# ----------------------------------------------------------------------------
# The leave-one-out estimate with k samples (eq:gap-rloo)
# ----------------------------------------------------------------------------
def rloo_estimates(
    logits: torch.Tensor,
    rewards: torch.Tensor,
    k: int,
    n: int,
    *,
    generator: Optional[torch.Generator] = None,
) -> torch.Tensor:
    """``n`` independent RLOO estimates with ``k`` samples each on one logits vector, ``[n, A]``
    (eq:gap-rloo): ``(1/k) sum_j A_j (onehot(a_j) - pi)``."""
    pi = torch.softmax(logits, -1)
    actions = torch.multinomial(pi.float().expand(n, -1), k, replacement=True, generator=generator)
    r = rewards.to(pi.dtype)[actions]
    adv = rloo_advantages(r)
    onehot = F.one_hot(actions, pi.shape[-1]).to(pi.dtype)
    return (adv[..., None] * (onehot - pi)).mean(1)


def rloo_exact_moments(logits: torch.Tensor, rewards: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mean [A], trace of covariance)`` of the ``k``-sample RLOO estimate (eq:gap-rloo),
    exactly, by summing over all ``A^k`` ordered tuples of actions (small action sets only)."""
    pi = torch.softmax(logits.to(torch.float64), -1)
    a_n = pi.shape[-1]
    tuples = torch.tensor(list(itertools.product(range(a_n), repeat=k)))  # [A^k, k]
    prob = pi[tuples].prod(1)
    adv = rloo_advantages(rewards.to(pi.dtype)[tuples])
    est = (adv[..., None] * (F.one_hot(tuples, a_n).to(pi.dtype) - pi)).mean(1)  # [A^k, A]
    mean = (prob[:, None] * est).sum(0)
    second = (prob * (est * est).sum(1)).sum()
    return mean, second - (mean * mean).sum()


# ----------------------------------------------------------------------------
# Entropy and the regularised optimum
# ----------------------------------------------------------------------------
def entropy(logits: torch.Tensor) -> torch.Tensor:
    """``H(pi) = -sum_a pi_a log pi_a`` in nats (eq:entropy), over the last dimension."""
    logp = torch.log_softmax(_t(logits), -1)
    return -(logp.exp() * logp).sum(-1)


def entropy_gradient(logits: torch.Tensor) -> torch.Tensor:
    """``grad_theta H = -pi * (log pi + H)`` for ``pi = softmax(theta)`` (eq:entropy-grad).

    Ascending it flattens the policy: actions above the average surprise lose logit, the
    rest gain.  The loss term ``entropy_weight * sum pi log pi`` has minus this gradient.
    """
    logp = torch.log_softmax(_t(logits), -1)
    pi = logp.exp()
    h = -(pi * logp).sum(-1, keepdim=True)
    return -pi * (logp + h)


def regularised_optimum(rewards: TensorLike, entropy_weight: float) -> torch.Tensor:
    """The policy maximising ``G + lambda H``: ``pi* = softmax(R / lambda)`` (eq:regularised-optimum).

    Setting the exact gradient ``pi_a (R_a - G) - lambda pi_a (log pi_a + H)`` to zero gives
    ``R_a - lambda log pi_a = const``.  For ``lambda -> 0`` it is greedy; for large ``lambda``
    it is flat.
    """
    if entropy_weight <= 0:
        r = _t(rewards)
        best = (r == r.max()).to(DTYPE)
        return best / best.sum()
    return torch.softmax(_t(rewards) / entropy_weight, -1)


# ----------------------------------------------------------------------------
# The derivation's pieces (Appendix: the derivation)
# ----------------------------------------------------------------------------
def softmax_jacobian(logits: torch.Tensor) -> torch.Tensor:
    """``d pi_a / d theta_j = pi_a (delta_aj - pi_j)``: rows are ``grad pi_a`` (the Jacobian in eq:deriv-sum)."""
    pi = torch.softmax(_t(logits), -1)
    return torch.diag_embed(pi) - pi[..., :, None] * pi[..., None, :]


def log_softmax_jacobian(logits: torch.Tensor) -> torch.Tensor:
    """``d log pi_a / d theta_j = delta_aj - pi_j`` (eq:deriv-score): row ``a`` is ``onehot(a) - pi``, the score."""
    pi = torch.softmax(_t(logits), -1)
    k = pi.shape[-1]
    return torch.eye(k, dtype=DTYPE) - pi[..., None, :]


def check(name: str, autograd_value: torch.Tensor, formula_value: torch.Tensor, tol: float = 1e-10,
          what: str = "autograd - formula") -> str:
    """Compare an autograd result with a formula (Appendix: the derivation); raise
    ``AssertionError`` if they differ by more than ``tol``.

    Returns one line, ``"<name> -> <largest absolute difference>"``; ``what`` names the
    difference in the error message.
    """
    a, f = _t(autograd_value), _t(formula_value)
    if a.shape != f.shape:
        raise AssertionError(f"{name}: shapes differ, {tuple(a.shape)} vs {tuple(f.shape)}")
    diff = float((a - f).abs().max()) if a.numel() else 0.0
    if not diff <= tol:
        raise AssertionError(f"{name}: max |{what}| = {diff:.3g} > {tol:g}")
    return f"{name} -> {diff:.1e}"
