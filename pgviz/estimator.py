r"""The policy gradient estimator for a classifier played as a contextual bandit.

The network sees an image ``x``, samples a label ``a ~ pi(.|x)`` and receives a
reward ``R(a)`` (1 if ``a`` is the true label, else 0).  The equations below carry
the labels the book uses (chapters *The policy gradient* and *Baselines*):

``eq:objective``   ``G(theta) = E_{a ~ pi}[R(a)] = sum_a pi(a|x) R(a)``

``eq:gradient``    ``grad G = E_{a ~ pi}[R(a) grad log pi(a|x)]`` (the policy-gradient theorem)

``eq:baseline``    ``grad G = E_{a ~ pi}[(R(a) - b) grad log pi(a|x)]`` for any ``b`` that
                   does not depend on ``a`` (*Baselines*).

``eq:single-sample``  one sample gives the unbiased estimate
                   ``g(a) = (R(a) - b) grad log pi(a|x)``; for a softmax over logits
                   ``theta`` this is ``(R(a) - b) (onehot(a) - pi)``.

``eq:variance``    ``Var(b) = sum_a pi_a (R_a - b)^2 |onehot(a) - pi|^2 - |grad G|^2``,
                   minimised by ``eq:optimal-baseline``.

``eq:entropy``     the bonus ``H(pi) = -sum_a pi(a) log pi(a)``; the loss adds
                   ``entropy_weight * sum_a pi log pi = -entropy_weight * H``.

``eq:baseline-bce`` the baseline ``V = sigmoid(z_{K})`` (the network's extra output)
                   is trained with binary cross-entropy towards ``R``.

The equations of the chapter *Where the gap comes from*, per image on the logits ``z``,
0/1 reward ``R(a) = [a = y]``:

``eq:gap-xent``  cross-entropy descends along ``onehot(y) - pi``;

``eq:gap-exact``    the exact expected-reward gradient is ``d pi_y / d z = pi_y (onehot(y) - pi)``:
                   cross-entropy's direction weighted by ``pi_y`` (:func:`pg_exact_loss`);

``eq:gap-rloo``        ``K`` samples ``a_1..a_K ~ pi``, each scored against the mean reward of the
                   other ``K - 1``: ``(1/K) sum_k (R_k - mean_{j != k} R_j)(onehot(a_k) - pi)``,
                   unbiased ({cite}`kool2019buy`, {cite}`ahmadian2024back`; :func:`rloo_loss`);

``eq:gap-group-norm``  the GRPO variant divides each advantage by the group's standard
                   deviation plus ``eps`` ({cite}`shao2024deepseekmath`); this is no longer
                   unbiased.

``eq:gap-value``       the value-function objective of the article series: ``sigmoid(z_a)``
                   predicts the reward of action ``a``, trained with BCE on the action taken,
                   which is chosen greedily (epsilon-greedy) (:func:`value_loss`).

Two families of functions live here:

* the network estimator: :func:`pg_loss` (single backward, a surrogate loss whose
  gradient is the estimator), :func:`pg_two_backward` (the article's literal form) and
  :func:`xent_loss` (the supervised comparison);
* the gap chapter's objectives: :func:`pg_exact_loss`, :func:`rloo_loss` (with
  :func:`rloo_advantages`), :func:`value_loss`;
The exact finite-action maths on one logits vector that the book uses to *check* these
(exact gradient, variance, optimal baseline, the article's bars) is :mod:`pgviz.exact`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch
import torch.nn.functional as F

RewardFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

#: The article's worked example ("What does it do?"): the policy for the horse image
#: and the baseline the network predicts for it.
ARTICLE = {
    "labels": ["horse", "dog", "airplane", "cat"],
    "probs": [0.6, 0.3, 0.05, 0.05],
    "baseline": 0.175,
    "true_label": "horse",
    # The article's "Grad log-policy" values after each sampled action.
    "grad_after": {"horse": -0.825, "dog": 0.175},
}


# ----------------------------------------------------------------------------
# Pieces of the network estimator
# ----------------------------------------------------------------------------
def split_outputs(outputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Split ``n_classes + 1`` network outputs into ``(log_probs, baseline)``.

    ``log_probs = log_softmax(outputs[:, :K])`` is the policy; ``baseline =
    sigmoid(outputs[:, K])`` is the learned value ``V`` in [0, 1] (eq:baseline-bce).
    """
    if outputs.dim() != 2 or outputs.shape[1] < 3:
        raise ValueError(f"outputs must be [batch, n_classes + 1], got {tuple(outputs.shape)}")
    return F.log_softmax(outputs[:, :-1], dim=1), torch.sigmoid(outputs[:, -1])


def correct_reward(actions: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The article's reward: 1.0 where the sampled label is right, else 0.0."""
    return (actions == labels).float()


def matrix_reward(table: torch.Tensor) -> RewardFn:
    """A reward read from a table: ``R(a) = table[label, a]`` (e.g. minus a cost matrix).

    Any non-differentiable reward works, since the estimator never needs ``dR/da``.
    """
    table = torch.as_tensor(table, dtype=torch.float32)

    def reward(actions: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        t = table.to(actions.device)
        return t[labels, actions]

    return reward


def sample_one(probs: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """One index per row drawn with probabilities ``probs`` (rows need not sum to one):
    ``argmax(p / q)`` with ``q ~ Exp(1)``, the draw ``torch.multinomial(probs, 1)`` makes
    (same numbers from the same generator), without its input checks, which in some torch
    versions read values back from the device (a host-device sync per step on a GPU; the
    CPU profiler shows none in torch 2.14, so this is a precaution for the GPU's 2.11)."""
    q = torch.empty_like(probs).exponential_(1, generator=generator)
    return (probs / q).argmax(dim=-1)


def sample_actions(log_probs: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """One action per row, ``a ~ pi = exp(log_probs)`` (:func:`sample_one`)."""
    with torch.no_grad():
        return sample_one(log_probs.detach().exp().float(), generator)


def reward_table(reward_fn: RewardFn, labels: torch.Tensor, n_actions: int) -> torch.Tensor:
    """``R[i, a]`` for every row ``i`` and every action ``a`` (finite action sets only)."""
    cols = [reward_fn(torch.full_like(labels, a), labels).float() for a in range(n_actions)]
    return torch.stack(cols, dim=1)


def expected_reward(outputs: torch.Tensor, labels: torch.Tensor, reward_fn: RewardFn = correct_reward) -> torch.Tensor:
    """The objective itself, eq:objective, averaged over the batch: ``mean_i sum_a pi(a|x_i) R_i(a)``.

    It is differentiable, so ``autograd.grad(expected_reward(...), params)`` is the *exact*
    policy gradient that the sampled estimator approximates.
    """
    log_probs, _ = split_outputs(outputs)
    table = reward_table(reward_fn, labels, log_probs.shape[1]).to(log_probs.dtype)
    return (log_probs.exp() * table).sum(1).mean()


@dataclass
class PGResult:
    """What one policy-gradient step computed (all but ``loss`` are detached)."""

    loss: torch.Tensor  # total loss; for pg_two_backward its value only (already backpropagated)
    actions: torch.Tensor
    rewards: torch.Tensor
    baseline: torch.Tensor
    entropy: torch.Tensor  # mean policy entropy H(pi), nats
    policy_loss: torch.Tensor
    baseline_loss: torch.Tensor


def _check_labels(labels: torch.Tensor, n_classes: int, batch: int) -> None:
    """Labels must be integer class indices ``[B]`` in ``0 .. K-1`` (else ``ValueError``)."""
    if not isinstance(labels, torch.Tensor) or labels.dtype.is_floating_point or labels.dtype == torch.bool \
            or labels.is_complex() or labels.shape != (batch,):
        raise ValueError(f"labels must be an integer tensor of shape ({batch},), got "
                         f"{getattr(labels, 'dtype', type(labels).__name__)} {tuple(getattr(labels, 'shape', ()))}")
    if labels.device.type == "cpu" and batch and (int(labels.min()) < 0 or int(labels.max()) >= n_classes):
        raise ValueError(f"labels must lie in 0..{n_classes - 1}, found {int(labels.min())}..{int(labels.max())}")


def check_labels(outputs: torch.Tensor, labels: torch.Tensor, *, check_range: bool = True) -> None:
    """Labels every objective can use, else :class:`ValueError` (one line): a 1-d integer
    tensor (not bool, not float), one per row of ``outputs``, at least one, each in
    ``0 .. n_classes - 1`` (``outputs`` has ``n_classes + 1`` columns: the last is the
    baseline or value head).  The range is checked where it costs no device sync (CPU), and
    only when ``check_range`` (the trainer's labels were checked when the data was loaded)."""
    if not isinstance(labels, torch.Tensor):
        raise ValueError(f"labels must be a tensor, got {type(labels).__name__}")
    if labels.dtype == torch.bool or labels.is_floating_point() or labels.is_complex():
        raise ValueError(f"labels must be whole numbers (an integer tensor), got dtype {labels.dtype}")
    if outputs.dim() != 2 or labels.dim() != 1 or len(labels) != outputs.shape[0] or len(labels) == 0:
        raise ValueError(f"labels must be one per image (shape (B,)): shape {tuple(labels.shape)} for outputs of shape "
                         f"{tuple(outputs.shape)}")
    n = outputs.shape[1] - 1
    if check_range and labels.device.type == "cpu":
        lo, hi = int(labels.min()), int(labels.max())
        if lo < 0 or hi >= n:
            raise ValueError(f"labels must lie in 0..{n - 1} (the outputs have {n} classes), got {lo} .. {hi}")


def check_outputs(outputs: torch.Tensor, finite: Optional[torch.Tensor] = None) -> None:
    """Network outputs that are all finite, else :class:`ValueError` (one line: a diverged
    network); checked on the CPU only, as the labels' range (elsewhere it is a device sync).
    ``finite``: ``torch.isfinite(outputs).all()`` when the caller has it already."""
    if outputs.device.type == "cpu" and not (torch.isfinite(outputs).all() if finite is None else finite):
        raise ValueError(f"{int((~torch.isfinite(outputs)).sum())} of the network's {outputs.numel()} outputs are NaN "
                         f"or infinite (it diverged, or its inputs are not finite); no loss can be computed")


def _pg_parts(outputs, labels, reward_fn, use_baseline, actions, generator):
    log_probs, baseline = split_outputs(outputs)
    _check_labels(labels, log_probs.shape[1], log_probs.shape[0])
    if actions is None:
        actions = sample_actions(log_probs, generator)
    rewards = reward_fn(actions, labels).to(log_probs.dtype)
    advantage = rewards - baseline.detach() if use_baseline else rewards
    neg_entropy = (log_probs.exp() * log_probs).sum(1).mean()  # sum pi log pi = -H, eq:entropy
    if use_baseline:
        baseline_loss = F.binary_cross_entropy_with_logits(outputs[:, -1].to(log_probs.dtype), rewards)
    else:
        baseline_loss = outputs.new_zeros((), dtype=log_probs.dtype)
    return log_probs, baseline, actions, rewards, advantage, neg_entropy, baseline_loss


def _surrogate(policy_loss, baseline_loss, neg_entropy, entropy_weight, actions, rewards, baseline) -> PGResult:
    """Total surrogate loss ``policy + BCE(V) + entropy_weight * sum pi log pi`` (eq:baseline-bce,
    eq:entropy) and the detached statistics, as every single-backward objective returns them."""
    loss = policy_loss + baseline_loss + entropy_weight * neg_entropy
    return PGResult(loss, actions, rewards.detach(), baseline.detach(), -neg_entropy.detach(),
                    policy_loss.detach(), baseline_loss.detach())


def pg_loss(
    outputs: torch.Tensor,
    labels: torch.Tensor,
    *,
    reward_fn: RewardFn = correct_reward,
    entropy_weight: float = 0.01,
    use_baseline: bool = True,
    actions: Optional[torch.Tensor] = None,
    generator: Optional[torch.Generator] = None,
) -> PGResult:
    """The estimator as one surrogate loss (single backward; what the trainer uses).

    ``policy_loss = -mean_i (R_i - V_i) log pi(a_i|x_i)`` with ``V`` detached, so its
    gradient is minus the single-sample estimate of eq:baseline averaged over the batch.
    Added to it: the baseline's BCE (eq:baseline-bce) and ``entropy_weight * sum pi log pi``
    (eq:entropy).  ``use_baseline=False`` sets ``b = 0`` and leaves ``V`` untrained.
    """
    log_probs, baseline, actions, rewards, adv, neg_entropy, baseline_loss = _pg_parts(
        outputs, labels, reward_fn, use_baseline, actions, generator
    )
    logp_a = log_probs.gather(1, actions[:, None]).squeeze(1)
    policy_loss = -(adv * logp_a).mean()
    return _surrogate(policy_loss, baseline_loss, neg_entropy, entropy_weight, actions, rewards, baseline)


def pg_two_backward(
    outputs: torch.Tensor,
    labels: torch.Tensor,
    *,
    reward_fn: RewardFn = correct_reward,
    entropy_weight: float = 0.01,
    use_baseline: bool = True,
    actions: Optional[torch.Tensor] = None,
    generator: Optional[torch.Generator] = None,
    loss_scale: float = 1.0,
) -> PGResult:
    """The article's literal implementation: two backward passes, gradients accumulate.

    1. the custom gradient ``d loss / d log pi = (V - R) / batch`` at the sampled action
       (zero elsewhere) is pushed into ``log_probs.backward(grad, retain_graph=True)``;
    2. a second backward for ``BCE(V, R) + entropy_weight * sum pi log pi``.

    Same parameter gradients as :func:`pg_loss` (tests/test_estimator.py proves it), but
    it walks the graph twice.  ``loss_scale`` multiplies both (for a ``GradScaler``).
    """
    log_probs, baseline, actions, rewards, adv, neg_entropy, baseline_loss = _pg_parts(
        outputs, labels, reward_fn, use_baseline, actions, generator
    )
    batch = log_probs.shape[0]
    grad = torch.zeros_like(log_probs)
    grad.scatter_(1, actions[:, None], (-adv.detach() * (loss_scale / batch))[:, None])
    log_probs.backward(grad, retain_graph=True)
    rest = baseline_loss + entropy_weight * neg_entropy
    if rest.requires_grad:
        (rest * loss_scale).backward()
    with torch.no_grad():
        policy_loss = -(adv * log_probs.gather(1, actions[:, None]).squeeze(1)).mean()
    loss = (policy_loss + rest).detach()
    return PGResult(loss, actions, rewards.detach(), baseline.detach(), -neg_entropy.detach(),
                    policy_loss, baseline_loss.detach())


def xent_loss(outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Softmax cross-entropy on the first ``n_classes`` outputs: the supervised comparison.

    Its descent direction on the logits, ``onehot(y) - pi``, is the exact expected policy
    gradient for the 0/1 reward, ``pi_y (onehot(y) - pi)``, divided by ``pi_y``: no sampling
    noise, and larger steps on the examples the policy still gets wrong.
    """
    return F.cross_entropy(outputs[:, :-1], labels)


def _entropy_and_v(outputs, log_probs, v_target, use_baseline=True):
    """``sum pi log pi`` (eq:entropy) and the BCE of ``V`` towards ``v_target`` (eq:baseline-bce)."""
    neg_entropy = (log_probs.exp() * log_probs).sum(1).mean()
    if use_baseline:
        baseline_loss = F.binary_cross_entropy_with_logits(outputs[:, -1].to(log_probs.dtype),
                                                           v_target.detach().to(log_probs.dtype))
    else:
        baseline_loss = outputs.new_zeros((), dtype=log_probs.dtype)
    return neg_entropy, baseline_loss


def pg_exact_loss(outputs: torch.Tensor, labels: torch.Tensor, *, entropy_weight: float = 0.01) -> PGResult:
    """The exact expected-reward gradient, no sampling (eq:gap-exact; {cite}`williams1992simple`
    gives the sampled form this one is the expectation of).

    For the 0/1 reward ``G = pi_y``, and ``d pi_y / d z = pi_y (onehot(y) - pi)``: the
    cross-entropy direction weighted by ``pi_y``.  The surrogate is therefore cross-entropy
    weighted by the *detached* ``pi_y``, ``policy_loss = mean_i sg(pi_y) (-log pi_y)``, whose
    gradient equals that of ``-mean_i pi_y`` (:func:`expected_reward`) exactly.  It needs the
    reward of every action, i.e. the label.  ``V`` is trained by BCE towards the exact
    expected reward ``pi_y`` (so the network's auxiliary head gets the same kind of loss as
    under ``pg``), and the entropy bonus is the same as ``pg``'s.
    """
    log_probs, baseline = split_outputs(outputs)
    logp_y = log_probs.gather(1, labels[:, None]).squeeze(1)
    pi_y = logp_y.detach().exp()
    policy_loss = -(pi_y * logp_y).mean()
    neg_entropy, baseline_loss = _entropy_and_v(outputs, log_probs, pi_y)
    return _surrogate(policy_loss, baseline_loss, neg_entropy, entropy_weight, labels, pi_y, baseline)


def rloo_advantages(rewards: torch.Tensor, *, group_norm: bool = False, eps: float = 1e-4) -> torch.Tensor:
    """Leave-one-out advantages for a group of ``K >= 2`` rewards per row, ``[B, K]`` (eq:gap-rloo):

    ``A_k = R_k - mean_{j != k} R_j = K / (K - 1) (R_k - mean_j R_j)``.

    ``group_norm`` divides by the group's standard deviation (unbiased, ``K - 1``) plus
    ``eps``, as GRPO does (eq:gap-group-norm; {cite}`shao2024deepseekmath`).
    """
    if rewards.dim() != 2 or rewards.shape[1] < 2:
        raise ValueError(f"RLOO needs K >= 2 rewards per row, got shape {tuple(rewards.shape)}")
    k = rewards.shape[1]
    adv = (rewards - rewards.mean(1, keepdim=True)) * (k / (k - 1))
    if group_norm:
        adv = adv / (rewards.std(1, keepdim=True) + eps)
    return adv


def sample_groups(log_probs: torch.Tensor, k: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """``k`` actions per row, independently with replacement, ``[B, k]``; a policy that is
    not a distribution (NaN or infinite outputs: a diverged network) is a one-line ValueError."""
    with torch.no_grad():
        try:
            return torch.multinomial(log_probs.detach().exp().float(), k, replacement=True, generator=generator)
        except RuntimeError as exc:  # torch's "probability tensor contains either inf, nan or element < 0"
            if "probab" not in str(exc) and "multinomial" not in str(exc):
                raise
            raise ValueError("sample_groups: the policy's probabilities are not finite (the network's outputs "
                             "contain NaN or infinity, it diverged); nothing can be sampled") from None


def rloo_loss(
    outputs: torch.Tensor,
    labels: torch.Tensor,
    *,
    samples: int = 4,
    group_norm: bool = False,
    reward_fn: RewardFn = correct_reward,
    entropy_weight: float = 0.01,
    actions: Optional[torch.Tensor] = None,
    generator: Optional[torch.Generator] = None,
) -> PGResult:
    """REINFORCE with ``K = samples`` actions per image and the leave-one-out baseline
    (eq:gap-rloo; {cite}`kool2019buy`, {cite}`ahmadian2024back`; GRPO's normalisation with
    ``group_norm``, eq:gap-group-norm, {cite}`shao2024deepseekmath`).

    ``policy_loss = -mean_i (1/K) sum_k A_ik log pi(a_ik|x_i)`` with the advantages of
    :func:`rloo_advantages` (no gradient through them).  Each image costs ``K`` reward
    queries.  ``V`` is trained towards the group's mean reward; the entropy bonus is ``pg``'s.
    ``actions`` (``[B, K]``) may be given; otherwise they are sampled.
    """
    if int(samples) < 2:
        raise ValueError(f"rloo needs samples >= 2 (got {samples}): with one sample there is no other "
                         f"sample to form the leave-one-out baseline")
    log_probs, baseline = split_outputs(outputs)
    if actions is None:
        actions = sample_groups(log_probs, samples, generator)
    rewards = torch.stack([reward_fn(actions[:, k], labels) for k in range(actions.shape[1])], 1)
    rewards = rewards.to(log_probs.dtype)
    adv = rloo_advantages(rewards, group_norm=group_norm)
    policy_loss = -(adv * log_probs.gather(1, actions)).mean()
    neg_entropy, baseline_loss = _entropy_and_v(outputs, log_probs, rewards.mean(1))
    return _surrogate(policy_loss, baseline_loss, neg_entropy, entropy_weight, actions, rewards, baseline)


def value_loss(
    outputs: torch.Tensor,
    labels: torch.Tensor,
    *,
    epsilon: float = 0.2,
    reward_fn: RewardFn = correct_reward,
    actions: Optional[torch.Tensor] = None,
    generator: Optional[torch.Generator] = None,
) -> PGResult:
    """The article series' value-function objective (eq:gap-value; Orr's part 4, {cite}`orr2021value`).

    The first ``n_classes`` outputs are value logits: ``sigmoid(z_a)`` predicts the reward
    of action ``a``.  The action is the greedy ``argmax_a z_a``, replaced with probability
    ``epsilon`` by a uniformly random one (epsilon-greedy, so that every action keeps being
    tried); only the taken action's value is trained, by BCE towards its reward.  Acting
    greedily on the values is the same as taking ``argmax`` of the softmax, so
    :func:`pgviz.train.evaluate` measures it unchanged.
    """
    values = outputs[:, :-1]
    b, n = values.shape
    if actions is None:
        with torch.no_grad():
            dev = generator.device if generator is not None else values.device
            greedy = values.detach().float().nan_to_num(0.0).argmax(1).to(dev)
            explore = torch.rand(b, generator=generator, device=dev) < epsilon
            rand = torch.randint(0, n, (b,), generator=generator, device=dev)
            actions = torch.where(explore, rand, greedy).to(values.device)
    rewards = reward_fn(actions, labels).float()
    chosen = values.gather(1, actions[:, None]).squeeze(1).float()
    loss = F.binary_cross_entropy_with_logits(chosen, rewards)
    nan = torch.full((), float("nan"), device=outputs.device)
    return PGResult(loss, actions, rewards.detach(), nan, nan, loss.detach(), nan)
