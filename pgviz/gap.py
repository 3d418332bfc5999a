r"""Where the gap between policy gradient and cross-entropy comes from: measured on the network.

Numbers only (the figures are in :mod:`pgviz.figures.gap`).  For one fixed batch and one
network, :func:`probe` redraws the sampled actions ``M`` times and measures, for each
estimator of the expected-reward gradient, the noise of the resulting **parameter**
gradient:

* ``trace_cov``   ``E |g - E g|^2``, the trace of its covariance over redraws (unbiased,
                  ``M - 1``);
* ``trace_cov_se`` the standard error of ``trace_cov`` from the redraws' own spread: with
                  ``d_m = |g_m - mean g|^2``, ``trace_cov = M / (M - 1) * mean(d)`` and its
                  error is ``M / (M - 1) * sd(d) / sqrt(M)`` (rows written before it existed
                  lack the key);
* ``cosine``      the mean over redraws of ``cos(g, g*)`` with the exact expected gradient
                  ``g*`` (eq:gap-exact, no sampling: the reward of every action);
* ``snr``         ``|g*|^2 / trace_cov``: how many estimates must be averaged before the
                  noise is as large as the signal.

The estimators, all per image on the logits, then pushed through the network with one
vector-Jacobian product (the batch mean, as in training):

``no-baseline``       ``R(a) (onehot(a) - pi)``                   (eq:single-sample, ``b = 0``)
``learned-V``         ``(R(a) - V(x)) (onehot(a) - pi)``           (the network's own baseline)
``optimal-constant``  ``(R(a) - b*) (onehot(a) - pi)``, ``b*`` the per-image constant that
                      minimises the variance on the logits (eq:optimal-baseline,
                      :func:`pgviz.exact.optimal_baseline`), an oracle
``rloo-K``            ``K`` samples with the leave-one-out baseline (eq:gap-rloo)

The three one-sample estimators (``no-baseline``, ``learned-V``, ``optimal-constant``) share
one draw of the actions per redraw, so their differences are not blurred by independent
draws (a ratio of their traces is then more precise than the two errors suggest); each
``rloo-K`` draws its own ``K`` actions.

Only the policy part of each gradient is measured (no entropy bonus, no BCE of ``V``).
The network runs in training mode (BatchNorm with batch statistics, as in a training
step) on a copy, so the caller's network and its running statistics are untouched.

:class:`ProbeRecorder` is a training callback that runs :func:`probe` after chosen epochs
and appends ``{"event": "probe", ...}`` rows to the run's ``metrics.jsonl``
(``pgviz train --probe-epochs 1,5,10``); :func:`read_probes` reads them back.
"""
from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence

import torch
import torch.nn.functional as F

from . import estimator
from .exact import exact_gradient, optimal_baseline
from .data import normalize

__all__ = ["ESTIMATORS", "difference", "probe", "trace_interval", "trace_ratio", "ProbeRecorder", "read_probes", "parse_epochs", "logit_estimates",
           "finite"]

#: The estimators :func:`probe` measures besides the exact gradient (rloo-K added per K).
ESTIMATORS = ("no-baseline", "learned-V", "optimal-constant")


def logit_estimates(logits: torch.Tensor, baseline: torch.Tensor, labels: torch.Tensor, *,
                    rloo_ks: Sequence[int] = (2, 4, 8),
                    generator: Optional[torch.Generator] = None) -> Dict[str, torch.Tensor]:
    """One draw of every estimator's ascent direction on the logits, ``{name: [B, A]}``.

    ``logits`` ``[B, A]`` and ``baseline`` ``[B]`` (``V``) are detached inputs; the 0/1 reward
    ``R(a) = [a = y]``.  ``no-baseline``, ``learned-V`` and ``optimal-constant`` use the same
    sampled action per image (one draw); each ``rloo-K`` draws its own group.  The actions
    are drawn on ``generator``'s device and brought back to the logits' (a CPU generator
    under MPS, where torch has no device generator).
    """
    logits = logits.detach().float()
    pi = torch.softmax(logits, 1)
    n_act = pi.shape[1]
    rewards = F.one_hot(labels, n_act).float()  # R_i(a) for every a
    log_pi = torch.log_softmax(logits, 1)
    at = generator.device if generator is not None else logits.device  # where the draws happen

    a = torch.multinomial(pi.to(at), 1, generator=generator).squeeze(1).to(logits.device)  # shared by the three below
    r = rewards.gather(1, a[:, None]).squeeze(1)
    score = F.one_hot(a, n_act).float() - pi

    def single(b):
        return (r - b)[:, None] * score

    b_star = optimal_baseline(logits, rewards)  # one b* per image (row)
    out = {"no-baseline": single(torch.zeros_like(baseline)),
           "learned-V": single(baseline.detach().float()),
           "optimal-constant": single(b_star.float())}
    for k in rloo_ks:
        a = estimator.sample_groups(log_pi.to(at), k, generator).to(logits.device)  # [B, k]
        r = rewards.gather(1, a)
        adv = estimator.rloo_advantages(r)
        out[f"rloo-{k}"] = (adv[..., None] * (F.one_hot(a, n_act).float() - pi[:, None])).mean(1)
    return out


def probe(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, *, samples: int = 64,
          rloo_ks: Sequence[int] = (2, 4, 8), seed: int = 0, device=None) -> dict:
    """Gradient noise of every estimator on one fixed batch (see the module docstring).

    ``images`` uint8 NHWC, ``labels`` ``[B]``; ``samples`` = M >= 2 redraws.  Returns plain
    numbers: ``{"batch_size", "samples", "exact_norm", "expected_reward", "accuracy",
    "estimators": {name: {"trace_cov", "trace_cov_se", "cosine", "cosine_of_mean", "snr",
    "reward_queries"}}}``.
    """
    if samples < 2:
        raise ValueError(f"the probe needs samples >= 2 redraws to measure a covariance, got {samples}")
    if len(labels) < 1:
        raise ValueError("the probe needs at least one image")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    net = copy.deepcopy(model).to(device).float().train()
    params = [p for p in net.parameters()]
    for p in params:
        p.requires_grad_(True)
    labels = labels.to(device).long()
    with torch.enable_grad():
        out = net(normalize(images.to(device), standardize=getattr(model, "standardize", True))).float()  # as it was trained
    logits, v = out[:, :-1], torch.sigmoid(out[:, -1]).detach()
    b = len(labels)

    def pgrad(g_logits: torch.Tensor) -> torch.Tensor:
        grads = torch.autograd.grad(logits, params, g_logits / b, retain_graph=True, allow_unused=True)
        return torch.cat([(torch.zeros_like(p) if g is None else g).flatten() for p, g in zip(params, grads)])

    pi = torch.softmax(logits.detach(), 1)
    rewards = F.one_hot(labels, pi.shape[1]).float()
    g_exact_logits = exact_gradient(logits.detach(), rewards)  # eq:gap-exact, per image (row)
    g_star = pgrad(g_exact_logits)
    star_sq = float(g_star.pow(2).sum())
    star_norm = math.sqrt(star_sq)

    gen = torch.Generator(device=device if device.type in ("cpu", "cuda") else "cpu").manual_seed(seed)
    names = list(ESTIMATORS) + [f"rloo-{k}" for k in rloo_ks]
    draws = [logit_estimates(logits, v, labels, rloo_ks=rloo_ks, generator=gen) for _ in range(samples)]
    result = {}
    for n in names:  # one estimator at a time: M parameter gradients in memory, not M x estimators
        gs = torch.stack([pgrad(d[n].to(device)) for d in draws]).double()  # [M, P]
        mean = gs.mean(0)
        dev = (gs - mean).pow(2).sum(1)  # d_m = |g_m - mean g|^2
        trace = float(dev.sum()) / (samples - 1)
        se = samples / (samples - 1) * float(dev.std()) / math.sqrt(samples)
        norms = gs.norm(dim=1)
        cos = torch.where(norms > 0, gs @ g_star.double() / (norms * star_norm), torch.zeros_like(norms)) \
            if star_norm > 0 else torch.zeros_like(norms)
        mn = float(mean.norm())
        result[n] = {
            "trace_cov": trace,
            "trace_cov_se": se,
            "cosine": float(cos.mean()),
            "cosine_of_mean": float(mean @ g_star.double()) / (mn * star_norm) if mn > 0 and star_norm > 0 else 0.0,
            "snr": star_sq / trace if trace > 0 else math.inf,
            "reward_queries": int(n.split("-")[1]) if n.startswith("rloo-") else 1,
        }
        del gs
    return {"batch_size": b, "samples": samples, "exact_norm": star_norm,
            "expected_reward": float(pi.gather(1, labels[:, None]).mean()),
            "accuracy": float((pi.argmax(1) == labels).float().mean()),
            "estimators": result}


def trace_interval(row: dict, name: str) -> tuple:
    """``(trace_cov, standard error)`` of estimator ``name`` in a :func:`probe` result or a
    recorded probe row; the error is ``None`` for rows recorded before the probe gave one."""
    e = row["estimators"][name]
    return e["trace_cov"], e.get("trace_cov_se")


def trace_ratio(row: dict, a: str, b: str) -> tuple:
    """``(trace_a / trace_b, standard error)`` by the delta method,
    ``r sqrt((se_a / t_a)^2 + (se_b / t_b)^2)``, treating the two traces' errors as
    independent: for estimators that share their draws (positively correlated) that
    overstates the error, so the interval is a cautious one.  ``None`` without errors."""
    ta, sa = trace_interval(row, a)
    tb, sb = trace_interval(row, b)
    r = ta / tb
    if sa is None or sb is None:
        return r, None
    return r, r * math.sqrt((sa / ta) ** 2 + (sb / tb) ** 2)


def parse_epochs(text: str) -> List[int]:
    """``"1,5,10"`` -> ``[1, 5, 10]``; a ValueError with a one-line reason otherwise."""
    try:
        epochs = sorted({int(t) for t in str(text).split(",") if t.strip()})
    except ValueError:
        raise ValueError(f"--probe-epochs wants whole numbers separated by commas, got {text!r}") from None
    if not epochs or epochs[0] < 1:
        raise ValueError(f"--probe-epochs wants epochs >= 1, got {text!r}")
    return epochs


class ProbeRecorder:
    """A training callback: after each epoch in ``epochs``, :func:`probe` the network being
    trained on a fixed batch and append ``{"event": "probe", "epoch", "step", ...}`` to
    ``out/metrics.jsonl`` (and to :attr:`rows`).  Its own random stream: training is
    unchanged by it (only slower)."""

    def __init__(self, epochs: Iterable[int], images: torch.Tensor, labels: torch.Tensor, *,
                 out=None, samples: int = 64, rloo_ks: Sequence[int] = (2, 4, 8), seed: int = 0):
        self.epochs, self.images, self.labels = set(epochs), images, labels
        self.path = Path(out) / "metrics.jsonl" if out else None
        self.samples, self.rloo_ks, self.seed = samples, tuple(rloo_ks), seed
        self.rows: List[dict] = []

    def __call__(self, event: dict) -> None:
        if event.get("event") != "epoch" or event["epoch"] not in self.epochs:
            return
        r = probe(event["live_model"], self.images, self.labels, samples=self.samples,
                  rloo_ks=self.rloo_ks, seed=self.seed + event["epoch"])
        row = {"event": "probe", "epoch": event["epoch"], "step": event["step"], **r}
        self.rows.append(row)
        if self.path is not None:
            with open(self.path, "a") as f:
                f.write(json.dumps(finite(row)) + "\n")


def finite(x):
    """``x`` with every non-finite float (``inf``, ``nan``), in nested dicts too, replaced by
    ``None``: what JSON can store (an infinite ``snr`` when an estimator has no noise)."""
    if isinstance(x, dict):
        return {k: finite(v) for k, v in x.items()}
    return None if isinstance(x, float) and not math.isfinite(x) else x


_finite = finite  # the name pgviz.cli imports


def read_probes(path) -> List[dict]:
    """The ``probe`` rows of a ``metrics.jsonl`` (or of every one under a folder), by epoch."""
    from .results import read_metrics

    path = Path(path)
    files = [path] if path.is_file() else sorted(path.glob("**/metrics.jsonl"))
    rows = [r for f in files for r in read_metrics(f) if r.get("event") == "probe"]
    return sorted(rows, key=lambda r: r["epoch"])


def difference(rows: Sequence[dict], a: str, b: str) -> tuple:
    """``(points, standard error)``: mean final test accuracy of setting ``a`` minus that of
    ``b``, in percentage points, from :func:`pgviz.results.summary_table` rows; the error is
    ``sqrt(s_a^2 / n_a + s_b^2 / n_b)`` with the seeds' standard deviations ``s``."""
    by = {r["setting"]: r for r in rows}
    missing = [n for n in (a, b) if n not in by]
    if missing:
        raise KeyError(f"no finished runs for {', '.join(missing)}")
    ra, rb = by[a], by[b]
    se = math.sqrt(ra["test_acc_std"] ** 2 / ra["seeds"] + rb["test_acc_std"] ** 2 / rb["seeds"])
    return 100 * (ra["test_acc_mean"] - rb["test_acc_mean"]), 100 * se
