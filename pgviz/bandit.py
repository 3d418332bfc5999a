r"""Toy simulations behind the book's chapters: one image, ten labels, a policy over them.

A classifier played as a contextual bandit looks, for one fixed image, like a
*bandit*: a logits vector ``theta``, a policy ``pi = softmax(theta)`` over ``K`` actions
and a reward ``R(a)`` for each action.  The exact math of the estimator on such a
vector lives in :mod:`pgviz.estimator` (:func:`~pgviz.estimator.exact_gradient`,
:func:`~pgviz.estimator.score_function_estimates`, :func:`~pgviz.estimator.exact_variance`,
:func:`~pgviz.estimator.optimal_baseline`); this module *runs experiments* with it.
Everything is a pure function of tensors (plus an explicit seed), vectorised over
seeds and over the swept settings, in float64.

Equation labels are the book's (``{eq}`` references in the chapters):

``eq:objective``      ``G(theta) = sum_a pi(a) R(a)``                      (book/02)
``eq:gradient``       ``grad G = E_{a ~ pi}[R(a) grad log pi(a)]``        (book/02)
``eq:single-sample``  ``g(a) = (R(a) - b)(onehot(a) - pi)``, ``a ~ pi``    (book/02, 03)
``eq:mc-mean``        ``g_n = (1/n) sum_i g(a_i)``, error ``sqrt(Var / n)``  (book/02)
``eq:baseline``       ``E[(R(a) - b) grad log pi(a)] = grad G`` for any ``b`` (book/03)
``eq:baseline-bce``   the learned baseline's loss; its optimum is ``V = E[R]``  (book/03)
``eq:variance``       ``Var(b) = sum_a pi_a (R_a - b)^2 |onehot(a) - pi|^2 - |grad G|^2`` (book/03)
``eq:optimal-baseline``  ``b* = sum_a w_a R_a / sum_a w_a``, ``w_a = pi_a |onehot(a) - pi|^2`` (book/03)
``eq:value-vs-none``  ``Var(pi_y) - Var(0) = pi_y^2 (4 pi_y - 1 - 3 sum pi^2)`` (book/03)
``eq:entropy``        ``H(pi) = -sum_a pi_a log pi_a``                     (book/04)
``eq:entropy-grad``   ``grad H = -pi * (log pi + H)``                      (book/04, 09)
``eq:update``         ``theta <- theta + lr (g(a) + lambda grad H)``        (book/04, 07)
``eq:regularised-optimum``  ``pi* = softmax(R / lambda)``                  (book/04)
``eq:dog-horse-logits``  ``theta(x) = u + x w``: the article's story, dogs and horses (book/04)
``eq:ab-expected``    the A/B expected step                               (book/07)
``eq:deriv-*``        the appendix's steps (objective, sum, logtrick, expectation, score,
                      baseline, surrogate)                                (book/09)

Sections: policies and rewards; Monte Carlo against the exact gradient (book/02);
the variance of the estimator (book/03); the training-loop simulator and two
collapse stories (book/04: the article's dogs and horses that look alike at first,
:func:`dog_horse_simulate`, and this book's own one-image partial-credit variant,
:func:`collapse_sweep`); A/B averaging over time (book/07); the derivation's
pieces (book/09).  This module only computes: the figures drawn from these numbers
are the ``draw_*`` functions of :mod:`pgviz.plots`.
"""
from __future__ import annotations

import contextlib
import math
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F

from pgviz import estimator

TensorLike = Union[float, Sequence[float], torch.Tensor]

#: CIFAR-10's labels, in the data set's order.
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
HORSE = CIFAR10_CLASSES.index("horse")
DOG = CIFAR10_CLASSES.index("dog")

DTYPE = torch.float64


def _t(x: TensorLike) -> torch.Tensor:
    return torch.as_tensor(x, dtype=DTYPE)


@contextlib.contextmanager
def _one_thread():
    """Run small-tensor loops on one intra-op thread, then restore the caller's setting.

    The simulator's tensors are tiny ([settings x runs x 10]); on a busy machine extra
    threads only add synchronisation cost (measured: 7x slower with 2 threads under load).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _generator(seed: Optional[int]) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(0 if seed is None else int(seed))
    return g


# ----------------------------------------------------------------------------
# Policies and rewards
# ----------------------------------------------------------------------------
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


def single_estimate(logits: torch.Tensor, rewards: torch.Tensor, action: int,
                    baseline: TensorLike = 0.0) -> torch.Tensor:
    """One single-sample estimate for a *given* action: ``(R(a) - b)(onehot(a) - pi)`` (eq:single-sample)."""
    pi = torch.softmax(_t(logits), -1)
    onehot = F.one_hot(torch.as_tensor(action), pi.shape[-1]).to(DTYPE)
    return (_t(rewards)[action] - _t(baseline)) * (onehot - pi)


def value(logits: torch.Tensor, rewards: torch.Tensor) -> torch.Tensor:
    """The value of the policy, ``V = E_pi[R] = G`` (eq:objective); for the 0/1 reward ``pi_y``."""
    return (torch.softmax(logits, -1) * rewards).sum(-1)


# ----------------------------------------------------------------------------
# Monte Carlo against the exact gradient (book/02)
# ----------------------------------------------------------------------------
def action_counts(probs: torch.Tensor, n: int, repeats: int,
                  generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """How often each action comes up in ``n`` draws ``a ~ pi``, for ``repeats`` independent batches.

    Exactly multinomial(n, pi), drawn as a chain of conditional binomials, so the cost does
    not grow with ``n`` (10^6 samples cost the same as 10).  Shape ``[repeats, K]``.
    """
    probs = _t(probs)
    remaining = torch.full((repeats,), float(n), dtype=DTYPE)
    left = torch.ones((), dtype=DTYPE)
    counts = []
    for k in range(probs.shape[-1] - 1):
        q = torch.clamp(probs[k] / left, 0.0, 1.0) if left > 0 else torch.zeros((), dtype=DTYPE)
        c = torch.binomial(remaining, q.expand(repeats), generator=generator)
        counts.append(c)
        remaining = remaining - c
        left = left - probs[k]
    counts.append(remaining)
    return torch.stack(counts, -1)


def mean_of_estimates_from_counts(logits: torch.Tensor, rewards: torch.Tensor, counts: torch.Tensor,
                                  baseline: TensorLike = 0.0) -> torch.Tensor:
    """The mean of ``n`` single-sample estimates (eq:mc-mean), from how often each action came up.

    ``(1/n) sum_i (R(a_i) - b)(onehot(a_i) - pi) = sum_a (c_a / n)(R(a) - b)(onehot(a) - pi)``:
    the average depends on the sampled actions only through their counts ``c``.
    """
    pi = torch.softmax(_t(logits), -1)
    counts = _t(counts)
    freq = counts / counts.sum(-1, keepdim=True)
    weight = freq * (_t(rewards) - _t(baseline))                  # [repeats, K]
    return weight - weight.sum(-1, keepdim=True) * pi             # sum_a w_a (e_a - pi)


def mc_error_scaling(logits: torch.Tensor, rewards: torch.Tensor,
                     ns: Sequence[int] = (1, 10, 100, 1_000, 10_000, 100_000),
                     repeats: int = 400, baseline: float = 0.0, seed: int = 0) -> dict:
    """Error of the Monte Carlo gradient (eq:mc-mean) against the exact one, for growing ``n``.

    For each ``n``: ``repeats`` independent means of ``n`` single-sample estimates
    (eq:single-sample), their Euclidean distance to :func:`pgviz.estimator.exact_gradient`,
    and the root mean square of that distance.  Theory: ``rms_error = sqrt(Var / n)`` with
    ``Var`` the trace from :func:`pgviz.estimator.exact_variance`, a line of slope -1/2 on
    log-log axes.

    Returns a dict of tensors: ``n``, ``rms_error``, ``predicted``, ``errors`` ([len(ns),
    repeats]), ``exact`` (the exact gradient), ``estimates`` (the means, [len(ns), repeats, K])
    and ``slope`` (least-squares slope of log rms error on log n).
    """
    logits, rewards = _t(logits), _t(rewards)
    gen = _generator(seed)
    exact = estimator.exact_gradient(logits, rewards)
    var = estimator.exact_variance(logits, rewards, baseline)
    pi = torch.softmax(logits, -1)
    errors, means = [], []
    for n in ns:
        counts = action_counts(pi, int(n), repeats, gen)
        m = mean_of_estimates_from_counts(logits, rewards, counts, baseline)
        means.append(m)
        errors.append((m - exact).norm(dim=-1))
    errors = torch.stack(errors)
    n_t = _t(list(ns))
    rms = errors.pow(2).mean(-1).sqrt()
    return {
        "n": n_t,
        "rms_error": rms,
        "predicted": (var / n_t).sqrt(),
        "errors": errors,
        "estimates": torch.stack(means),
        "exact": exact,
        "variance": var,
        "slope": loglog_slope(n_t, rms),
    }


def loglog_slope(x: TensorLike, y: TensorLike) -> float:
    """Least-squares slope of ``log y`` against ``log x`` (-1/2 for a ``1/sqrt(n)`` law)."""
    lx, ly = _t(x).log(), _t(y).log()
    lx, ly = lx - lx.mean(), ly - ly.mean()
    return float((lx * ly).sum() / (lx * lx).sum())


# ----------------------------------------------------------------------------
# The variance of the estimator (book/03)
# ----------------------------------------------------------------------------
def measured_variance(logits: torch.Tensor, rewards: torch.Tensor, baseline: TensorLike = 0.0,
                      n_draws: int = 20_000, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Trace of the *sample* covariance of ``n_draws`` single-sample estimates (eq:single-sample).

    The measured counterpart of eq:variance (:func:`pgviz.estimator.exact_variance`): draw
    the estimates with :func:`pgviz.estimator.score_function_estimates`, take each
    coordinate's unbiased sample variance, sum over coordinates.
    """
    with _one_thread():
        g = estimator.score_function_estimates(_t(logits), _t(rewards), n_draws, baseline=_t(baseline),
                                               generator=generator)
        return g.var(dim=0, unbiased=True).sum()


def variance_study(p_correct: TensorLike, n_actions: int = 10, n_draws: int = 20_000,
                   seed: int = 0) -> dict:
    """Variance of the single-sample estimator as the policy grows confident (book/03).

    For each ``pi_y`` in ``p_correct`` (policy :func:`confident_policy`, 0/1 reward) and
    three baselines — none (``b = 0``), the value ``V = pi_y`` (what a perfectly learned
    baseline predicts) and the variance-optimal ``b*`` (:func:`pgviz.estimator.optimal_baseline`)
    — the exact trace (eq:variance) and the measured one (:func:`measured_variance`).

    Returns a dict: ``p``, ``b_opt`` and, for ``name`` in ``("none", "value", "optimal")``,
    ``exact_<name>`` and ``measured_<name>`` (tensors over ``p``).
    """
    p = _t(p_correct).reshape(-1)
    rewards = correct_rewards(n_actions)
    gen = _generator(seed)
    out = {"p": p, "b_opt": torch.empty_like(p)}
    for name in ("none", "value", "optimal"):
        out[f"exact_{name}"] = torch.empty_like(p)
        out[f"measured_{name}"] = torch.empty_like(p)
    for i, pi_y in enumerate(p.tolist()):
        logits = confident_policy(pi_y, n_actions)
        b_opt = estimator.optimal_baseline(logits, rewards)
        out["b_opt"][i] = b_opt
        for name, b in (("none", 0.0), ("value", pi_y), ("optimal", float(b_opt))):
            out[f"exact_{name}"][i] = estimator.exact_variance(logits, rewards, b)
            out[f"measured_{name}"][i] = measured_variance(logits, rewards, b, n_draws, gen)
    return out


def variance_terms(logits: torch.Tensor, rewards: torch.Tensor, baseline: TensorLike) -> torch.Tensor:
    """Each action's share of the second moment in eq:variance: ``pi_a (R_a - b)^2 |onehot(a) - pi|^2``.

    Summed over ``a`` and minus ``|grad G|^2`` it is the variance; it shows *which* draws make
    the noise (for a confident, correct policy and ``b = V``: the rare wrong actions).
    """
    pi = torch.softmax(_t(logits), -1)
    sq_norm = 1.0 - 2.0 * pi + (pi * pi).sum(-1, keepdim=True)
    return pi * sq_norm * (_t(rewards) - _t(baseline)[..., None]) ** 2


def value_baseline_crossover(n_actions: int = 10, tol: float = 1e-10) -> float:
    """The ``pi_y`` above which the value baseline ``V = pi_y`` has *more* variance than none.

    Found by bisection on ``exact_variance(b = pi_y) - exact_variance(b = 0)`` (0/1 reward,
    :func:`confident_policy`).
    """
    rewards = correct_rewards(n_actions)

    def diff(p: float) -> float:
        logits = confident_policy(p, n_actions)
        return float(estimator.exact_variance(logits, rewards, p) - estimator.exact_variance(logits, rewards, 0.0))

    lo, hi = 1.0 / n_actions, 1.0 - 1e-9
    if diff(lo) >= 0 or diff(hi) <= 0:
        raise RuntimeError("no crossover in (1/K, 1)")
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if diff(mid) < 0 else (lo, mid)
    return 0.5 * (lo + hi)


# ----------------------------------------------------------------------------
# The training-loop simulator (book/04, book/07)
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
    gradient (:func:`pgviz.estimator.exact_gradient`): the path the estimates average to
    (``n_runs`` is then 1).

    Returns the policies ``pi`` recorded every ``record_every`` steps (step 0 included):
    shape ``[steps // record_every + 1, *S, n_runs, K]``.
    """
    with _one_thread():
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
    gen = _generator(seed)
    history = [torch.softmax(theta, -1)]
    for step in range(1, steps + 1):
        pi = torch.softmax(theta, -1)
        if exact:
            grad = estimator.exact_gradient(theta, rewards)
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


#: This book's own variant of the collapse (book/04, not the article's story, which is
#: :data:`DOG_HORSE`): one horse image that the policy at first takes for a dog, with
#: partial credit: "dog" earns 0.5 (the right kind of animal), "horse" 1, everything else
#: 0; the baseline stays at 0.1.
COLLAPSE = {
    "labels": CIFAR10_CLASSES,
    "rewards": [0.0, 0.0, 0.0, 0.0, 0.0, 0.5, 0.0, 0.0, 0.0, 0.0],
    "correct": HORSE,
    "wrong": DOG,
    "init_probs": {"dog": 0.8, "horse": 0.05},  # the other eight share 0.15
    "baseline": 0.1,
    "lr": 1.0,
    "steps": 1000,
}
COLLAPSE["rewards"][HORSE] = 1.0


def collapse_setup() -> tuple[torch.Tensor, torch.Tensor]:
    """``(logits0, rewards)`` of the partial-credit variant (:data:`COLLAPSE`)."""
    p = COLLAPSE["init_probs"]
    probs = torch.full((10,), (1.0 - p["dog"] - p["horse"]) / 8, dtype=DTYPE)
    probs[DOG], probs[HORSE] = p["dog"], p["horse"]
    return probs.log(), _t(COLLAPSE["rewards"])


def classify_outcomes(probs: torch.Tensor, threshold: float = 0.9) -> dict:
    """Sort final policies ``[..., n_runs, K]`` into the partial-credit variant's three outcomes.

    ``locked`` (``pi(dog) > threshold``: the policy collapsed onto the partial answer),
    ``found`` (``pi(horse) > threshold``) and ``spread`` (neither: the entropy bonus keeps
    it undecided).  Each is the fraction of runs, shape ``[...]``.
    """
    locked = (probs[..., DOG] > threshold).to(DTYPE).mean(-1)
    found = (probs[..., HORSE] > threshold).to(DTYPE).mean(-1)
    return {"locked": locked, "found": found, "spread": 1.0 - locked - found}


def collapse_sweep(entropy_weights: Sequence[float] = (0.0, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0), *,
                   baseline: Union[float, str] = COLLAPSE["baseline"], lr: float = COLLAPSE["lr"],
                   steps: int = COLLAPSE["steps"], n_seeds: int = 400, seed: int = 0,
                   record_every: int = 10) -> dict:
    """This book's partial-credit collapse variant (book/04), for several entropy weights,
    ``n_seeds`` runs each.

    Runs :func:`simulate` from :func:`collapse_setup` with the lagging baseline (eq:update),
    all entropy weights in one batch, and the exact-gradient path for comparison.

    Returns a dict: ``entropy_weights`` [L], ``steps`` (recorded step numbers), ``history``
    ``[T, L, n_seeds, K]`` (float32 to keep it small), ``exact_history`` ``[T, L, K]``,
    ``final`` ``[L, n_seeds, K]``, the :func:`classify_outcomes` fractions ``[L]``,
    ``mean_final`` ``[L, K]`` and ``optimum`` ``[L, K]`` (:func:`regularised_optimum`).
    """
    logits0, rewards = collapse_setup()
    lam = _t(list(entropy_weights))
    hist = simulate(logits0, rewards, lr=lr, steps=steps, baseline=baseline, entropy_weight=lam,
                    n_runs=n_seeds, seed=seed, record_every=record_every)
    exact = simulate(logits0, rewards, lr=lr, steps=steps, entropy_weight=lam, exact=True,
                     record_every=record_every)[:, :, 0]
    final = hist[-1]
    out = {
        "entropy_weights": lam,
        "steps": torch.arange(hist.shape[0]) * record_every,
        "history": hist.float(),
        "exact_history": exact,
        "final": final,
        "mean_final": final.mean(-2),
        "optimum": torch.stack([regularised_optimum(rewards, float(l)) for l in lam]),
    }
    out.update(classify_outcomes(final))
    return out


# ----------------------------------------------------------------------------
# The article's collapse story (book/04): dogs and horses that look alike at first
# ----------------------------------------------------------------------------
#: The article's collapse story: early in training the network cannot yet tell dogs from
#: horses in a set of similar images, so guessing "dog" earns 0.5 on average, more than the
#: baseline's 0.1 (what the untrained, one-in-ten policy earned).  Half the images are dogs,
#: half horses; the reward is 1 for the right label and 0 otherwise.  A feature that tells
#: the two apart becomes available at ``feature_step`` (the lower layers have learned it);
#: by then the policy may have piled onto "dog".
DOG_HORSE = {
    "p_dog0": 0.6,        # the starting policy's "dog"; the nine other labels share the rest
    "baseline0": 0.1,     # the baseline starts at the untrained policy's expected reward
    "lr": 1.0,            # policy learning rate (one image per step)
    "baseline_lr": 0.3,   # the baseline's learning rate
    "feature_step": 1500,  # the step from which the feature tells dogs from horses
    "steps": 2500,
}


def dog_horse_simulate(entropy_weights: TensorLike = 0.0, *, n_runs: int = 200, seed: int = 0,
                       p_dog0: float = DOG_HORSE["p_dog0"], baseline0: float = DOG_HORSE["baseline0"],
                       lr: float = DOG_HORSE["lr"], baseline_lr: float = DOG_HORSE["baseline_lr"],
                       feature_step: int = DOG_HORSE["feature_step"], steps: int = DOG_HORSE["steps"],
                       exact: bool = False, record_every: int = 10) -> dict:
    r"""The article's collapse story, simulated: two kinds of image that start indistinguishable.

    Each step every run sees one image, a dog or a horse with probability 1/2 each, with a
    feature ``x = +1`` (dog) or ``-1`` (horse) from ``feature_step`` on, and ``x = 0`` before
    (the images look alike).  The policy's logits are ``theta(x) = u + x w`` (a shared part
    ``u`` and a feature weight ``w``, both in R^10), the baseline is ``V(x) = c + x d``.  One
    step samples ``a ~ softmax(theta(x))``, gets ``R = 1`` if ``a`` is the image's label, else
    0, and ascends (eq:update, by the chain rule through ``theta(x)``, eq:dog-horse-logits)::

        g = (R - V)(onehot(a) - pi) + lambda grad H      (eq:single-sample, eq:entropy-grad)
        u += lr g,   w += lr x g,   c += baseline_lr (R - V),   d += baseline_lr (R - V) x

    (the baseline's step is a least-squares step towards ``R``; its fixed point, like the
    BCE's of eq:baseline-bce, is ``E[R | x]``).  ``exact=True`` replaces the sampled image and
    action by their expectation (the path the sampled runs average around; ``n_runs`` 1).

    ``entropy_weights`` (``[L]``) are simulated together.  Returns float64 tensors:
    ``entropy_weights`` [L], ``steps`` (recorded step numbers) [T], and, recorded every
    ``record_every`` steps, ``p_horse_horse`` (P(horse | horse image)), ``p_dog_dog``,
    ``p_dog_horse`` (P(dog | horse image)) and ``v_horse`` (the baseline on a horse image),
    each ``[T, L, n_runs]``; ``final_policy`` ``[L, n_runs, 2, K]`` (the policy on a dog and
    on a horse image at the end); ``feature_step``; and the end-of-run fractions of runs
    ``collapsed`` (P(horse | horse image) < 0.1), ``learned`` (> 0.9) and ``between``, each
    ``[L]``.
    """
    with _one_thread():
        return _dog_horse(_t(entropy_weights).reshape(-1), n_runs=1 if exact else n_runs, seed=seed,
                          p_dog0=p_dog0, baseline0=baseline0, lr=lr, baseline_lr=baseline_lr,
                          feature_step=feature_step, steps=steps, exact=exact, record_every=record_every)


def dog_horse_optimum(entropy_weight: TensorLike) -> torch.Tensor:
    """P(horse | horse image) in the regularised optimum of the dog-and-horse story once the
    feature is learned: ``softmax(R / lambda)`` with ``R`` one-hot on "horse" over ten labels
    (eq:regularised-optimum), ``e^{1/lambda} / (e^{1/lambda} + 9)``; 1 for ``lambda = 0``."""
    lam = _t(entropy_weight)
    k = len(CIFAR10_CLASSES)
    safe = torch.where(lam > 0, lam, torch.ones_like(lam))
    p = 1.0 / (1.0 + (k - 1) * torch.exp(-1.0 / safe))
    return torch.where(lam > 0, p, torch.ones_like(p))


def _dog_horse(lam, *, n_runs, seed, p_dog0, baseline0, lr, baseline_lr, feature_step, steps, exact,
               record_every):
    if not 0.0 < p_dog0 < 1.0:
        raise ValueError("p_dog0 must be in (0, 1)")
    k, n_l = len(CIFAR10_CLASSES), lam.shape[0]
    probs0 = torch.full((k,), (1.0 - p_dog0) / (k - 1), dtype=DTYPE)
    probs0[DOG] = p_dog0
    u = probs0.log().expand(n_l, n_runs, k).clone()
    w = torch.zeros(n_l, n_runs, k, dtype=DTYPE)
    c = torch.full((n_l, n_runs), float(baseline0), dtype=DTYPE)
    d = torch.zeros(n_l, n_runs, dtype=DTYPE)
    lam = lam[:, None, None]
    labels = torch.tensor([DOG, HORSE])
    both = torch.tensor([1.0, -1.0], dtype=DTYPE)                 # the feature of a dog, a horse
    onehot_label = F.one_hot(labels, k).to(DTYPE)                 # [2, K]: R(a) per kind
    gen = _generator(seed)
    rec = {name: [] for name in ("p_horse_horse", "p_dog_dog", "p_dog_horse", "v_horse")}

    def record(visible):
        pol = torch.softmax(u[..., None, :] + (visible * both)[:, None] * w[..., None, :], -1)
        rec["p_dog_dog"].append(pol[..., 0, DOG])
        rec["p_horse_horse"].append(pol[..., 1, HORSE])
        rec["p_dog_horse"].append(pol[..., 1, DOG])
        rec["v_horse"].append(c - visible * d)
        return pol

    record(0.0)
    for step in range(steps):
        visible = 1.0 if step >= feature_step else 0.0
        if exact:  # expectation over the kind of image (1/2 each) and the action
            x = (visible * both)[None, None, :]                      # [1, 1, 2]
            theta = u[..., None, :] + x[..., None] * w[..., None, :]  # [L, 1, 2, K]
            pi = torch.softmax(theta, -1)
            value = (pi * onehot_label).sum(-1)                    # G per kind
            g = pi * (onehot_label - value[..., None]) + lam[..., None] * entropy_gradient(theta)
            u = u + lr * 0.5 * g.sum(-2)
            w = w + lr * 0.5 * (x[..., None] * g).sum(-2)
            v = c[..., None] + x * d[..., None]
            c = c + baseline_lr * 0.5 * (value - v).sum(-1)
            d = d + baseline_lr * 0.5 * ((value - v) * x).sum(-1)
        else:
            kind = torch.randint(0, 2, (n_l, n_runs), generator=gen)
            x = visible * both[kind]                               # [L, n]
            theta = u + x[..., None] * w
            pi = torch.softmax(theta, -1)
            a = torch.multinomial(pi.reshape(-1, k), 1, generator=gen).reshape(n_l, n_runs)
            r = (a == labels[kind]).to(DTYPE)
            v = c + x * d
            g = (r - v)[..., None] * (F.one_hot(a, k).to(DTYPE) - pi) + lam * entropy_gradient(theta)
            u = u + lr * g
            w = w + lr * x[..., None] * g
            c = c + baseline_lr * (r - v)
            d = d + baseline_lr * (r - v) * x
        if (step + 1) % record_every == 0:
            record(1.0 if step + 1 >= feature_step else 0.0)
    final = record(1.0)  # the policy as the learned feature shows it
    for v in rec.values():
        v.pop()
    out = {name: torch.stack(v) for name, v in rec.items()}
    p_hh = final[..., 1, HORSE]
    out.update({
        "entropy_weights": lam.reshape(-1),
        "steps": torch.arange(len(out["p_horse_horse"])) * record_every,
        "final_policy": final,
        "feature_step": feature_step,
        "collapsed": (p_hh < 0.1).to(DTYPE).mean(-1),
        "learned": (p_hh > 0.9).to(DTYPE).mean(-1),
    })
    out["between"] = 1.0 - out["collapsed"] - out["learned"]
    return out


# ----------------------------------------------------------------------------
# A/B: averaging over time (book/07)
# ----------------------------------------------------------------------------
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
    plus ``grid``: the four value lists, so :func:`draw_ab_runs` can look a setting up by value.
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


# ----------------------------------------------------------------------------
# The derivation's pieces (book/09)
# ----------------------------------------------------------------------------
def objective(logits: torch.Tensor, rewards: torch.Tensor) -> torch.Tensor:
    """``G(theta) = sum_a softmax(theta)_a R(a)`` (eq:objective), differentiable."""
    return (torch.softmax(logits, -1) * rewards).sum(-1)


def softmax_jacobian(logits: torch.Tensor) -> torch.Tensor:
    """``d pi_a / d theta_j = pi_a (delta_aj - pi_j)``: rows are ``grad pi_a``."""
    pi = torch.softmax(_t(logits), -1)
    return torch.diag_embed(pi) - pi[..., :, None] * pi[..., None, :]


def log_softmax_jacobian(logits: torch.Tensor) -> torch.Tensor:
    """``d log pi_a / d theta_j = delta_aj - pi_j``: row ``a`` is ``onehot(a) - pi``, the score."""
    pi = torch.softmax(_t(logits), -1)
    k = pi.shape[-1]
    return torch.eye(k, dtype=DTYPE) - pi[..., None, :]


def check(name: str, autograd_value: torch.Tensor, formula_value: torch.Tensor, tol: float = 1e-10,
          what: str = "autograd - formula") -> str:
    """Compare an autograd result with a formula (book/09); raise if they differ by more than ``tol``.

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


def article_policy(eps: float = 0.02) -> torch.Tensor:
    """Logits of the article's horse-image policy on all ten CIFAR-10 labels.

    The article shows horse .6, dog .3, airplane .05, cat .05 and leaves the other six at
    zero, which no softmax reaches; here a total of ``eps`` is taken from those four (in
    proportion) and shared by the six, so every logit is finite.
    """
    probs = torch.zeros(10, dtype=DTYPE)
    for label, p in zip(estimator.ARTICLE["labels"], estimator.ARTICLE["probs"]):
        probs[CIFAR10_CLASSES.index(label)] = p
    zero = probs == 0
    probs = probs * (1.0 - eps)
    probs[zero] = eps / int(zero.sum())
    return probs.log()
