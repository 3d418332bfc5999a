"""Two collapse stories (Policy regularisation): without an entropy bonus the policy piles
onto a tempting wrong answer.

* the article's story, :func:`dog_horse_simulate`: dogs and horses that look alike at first
  (:data:`DOG_HORSE`);
* this book's own one-image, partial-credit variant, :func:`collapse_sweep`
  (:data:`COLLAPSE`).

Every function returns numbers; :mod:`pgviz.figures.collapse` draws them.
"""
from __future__ import annotations

from typing import Sequence, Union

import torch
import torch.nn.functional as F

from ..data import CIFAR10_CLASSES
from ..exact import DTYPE, entropy_gradient, regularised_optimum
from ._common import TensorLike, _t, one_thread
from ._common import generator as seeded_generator
from .loop import simulate
from .policies import DOG, HORSE

__all__ = ["COLLAPSE", "collapse_setup", "classify_outcomes", "collapse_sweep",
           "DOG_HORSE", "dog_horse_simulate", "dog_horse_optimum"]


#: This book's own variant of the collapse (Policy regularisation; not the article's story, which is
#: :data:`DOG_HORSE`): one horse image that the policy at first takes for a dog, with
#: partial credit: "dog" earns 0.5 (the right kind of animal), "horse" 1, everything else
#: 0; the baseline stays at 0.1.
COLLAPSE = {
    "labels": tuple(CIFAR10_CLASSES),
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
    """This book's partial-credit collapse variant (Policy regularisation), for several entropy weights,
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
# The article's collapse story: dogs and horses that look alike at first
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
    with one_thread():
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
    gen = seeded_generator(seed)
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
