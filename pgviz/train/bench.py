"""How much does the policy gradient cost?  Time training steps of the objectives.

All run on the same network, the same batch and the same device, in one process,
interleaved (so a noisy neighbour slows them all alike), after a warm-up:

* ``xent``             cross-entropy, one backward;
* ``pg``               the estimator as one surrogate loss, one backward (what the trainer uses);
* ``pg_two_backward``  the article's literal form, two backward passes through the network;
* then what each registered objective asks to be timed through its step (its entry's
  ``bench`` in :mod:`pgviz.objectives`): today ``pg_exact``, ``rloo_4`` and ``value``, the
  gap chapter's objectives.

Each timed step is a full training step: forward, loss, backward, Adam update.  Every
method is timed in both precisions, ``fp32`` and ``bf16`` (autocast, as the trainer
uses it: see :func:`pgviz.train.runtime.resolve_precision`), in the same rounds, so that
``ratio_bf16_vs_fp32`` compares like with like.
"""
from __future__ import annotations

import statistics
import time

import torch

from .. import estimator, objectives
from ..data import normalize
from ..models import get_model
from .runtime import PRECISIONS, autocast, device_settings, check_precision_name, cpu_has_native_bf16, pick_device, resolve_precision

__all__ = ["BENCH_PRECISIONS", "REFERENCE_METHODS", "bench", "methods"]

#: Timed straight from the estimator: the two the ratios compare the trainer's ``pg`` with.
REFERENCE_METHODS = ("xent", "pg", "pg_two_backward")
#: Both precisions are timed in every run (``auto`` only picks the headline).
BENCH_PRECISIONS = tuple(p for p in PRECISIONS if p != "auto")


def methods() -> dict:
    """``{method: None}`` for :data:`REFERENCE_METHODS`, then ``{method: (objective, options)}``
    for what each registered objective asks to be timed (its entry's ``bench``)."""
    out = dict.fromkeys(REFERENCE_METHODS)
    for entry in objectives.OBJECTIVES.values():
        for method, options in entry.bench.items():
            out[method] = (entry.name, dict(options))
    return out


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def bench(device: str = "auto", *, batch_size: int = 256, model: str = "fast", steps: int = 2,
          repeats: int = 15, warmup: int = 3, seed: int = 0, precision: str = "auto") -> dict:
    """Images per second of one training step for each of :func:`methods`, in fp32 and bf16.

    Each of ``repeats`` rounds times ``steps`` steps of every (method, precision) pair
    back to back (the order rotates).  ``images_per_second`` is the best round of each
    method in ``precision`` (``auto`` resolves as for training), the usual estimate of a
    cost on a shared machine (other processes only ever add time, as the ``timeit``
    documentation puts it); the ratios are taken from those.
    ``images_per_second_by_precision`` holds both precisions and ``ratio_bf16_vs_fp32``
    compares them on the trainer's objective (``pg``).  The medians are reported too, and
    ``ratios_paired`` gives each ratio as the median of the per-round ratios (both sides
    timed in the same round, so a slow round slows both) with its quartiles and range:
    how far one run's ratio can be trusted.
    """
    check_precision_name(precision)
    dev = pick_device(device)
    headline = resolve_precision(precision, dev)
    torch.manual_seed(seed)
    net = get_model(model, 10).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (batch_size, 32, 32, 3), dtype=torch.uint8, generator=g).to(dev)
    x = normalize(images)
    y = torch.randint(0, 10, (batch_size,), generator=g).to(dev)
    gen = torch.Generator(device=dev).manual_seed(seed) if dev.type in ("cpu", "cuda") else None
    timed = methods()

    def step(method: str, prec: str) -> None:
        with device_settings(dev, prec):  # the whole step: backward convolutions too
            _step(method, prec)

    def _step(method: str, prec: str) -> None:
        with autocast(dev, prec):
            out = net(x)
        out = out.float()
        opt.zero_grad(set_to_none=True)
        if method == "xent":
            estimator.xent_loss(out, y).backward()
        elif method == "pg":
            estimator.pg_loss(out, y, generator=gen).loss.backward()
        elif method == "pg_two_backward":
            estimator.pg_two_backward(out, y, generator=gen)
        else:
            name, kw = timed[method]
            objectives.objective_step(name, out, y, generator=gen, **kw)[0].backward()
        opt.step()

    pairs = [(m, p) for m in timed for p in BENCH_PRECISIONS]
    for _ in range(warmup):
        for m, p in pairs:
            step(m, p)
    _sync(dev)
    rates = {pair: [] for pair in pairs}
    for r in range(repeats):
        k = r % len(pairs)
        for m, p in pairs[k:] + pairs[:k]:  # rotate who goes first
            _sync(dev)
            t = time.perf_counter()
            for _ in range(steps):
                step(m, p)
            _sync(dev)
            rates[m, p].append(steps * batch_size / (time.perf_counter() - t))
    by_prec = {p: {m: round(max(rates[m, p]), 1) for m in timed} for p in BENCH_PRECISIONS}
    med = {p: {m: round(statistics.median(rates[m, p]), 1) for m in timed} for p in BENCH_PRECISIONS}
    ips = by_prec[headline]
    paired = {  # one ratio per round: both sides timed in the same round
        "pg_vs_xent": _spread([a / b for a, b in zip(rates["pg", headline], rates["xent", headline])]),
        "pg_vs_two_backward": _spread([a / b for a, b in zip(rates["pg", headline], rates["pg_two_backward", headline])]),
        "bf16_vs_fp32": _spread([a / b for a, b in zip(rates["pg", "bf16"], rates["pg", "fp32"])]),
    }
    return {
        "device": str(dev) if dev.type != "cuda" else f"cuda ({torch.cuda.get_device_name(dev)})",
        "model": model, "batch_size": batch_size, "steps": steps, "repeats": repeats,
        "precision": headline,
        "images_per_second": ips,
        "ratio_pg_vs_xent": round(ips["pg"] / ips["xent"], 3),
        "ratio_pg_vs_two_backward": round(ips["pg"] / ips["pg_two_backward"], 3),
        "ratio_bf16_vs_fp32": round(by_prec["bf16"]["pg"] / by_prec["fp32"]["pg"], 3),
        "ratios_paired": paired,
        "images_per_second_by_precision": by_prec,
        "images_per_second_median": med[headline],
        "images_per_second_median_by_precision": med,
        "cpu_native_bf16": _native(dev),
        "torch": torch.__version__, "threads": torch.get_num_threads(),
    }


def _spread(values) -> dict:
    """``{"median", "q1", "q3", "min", "max"}`` of per-round ratios (3 decimals)."""
    v = sorted(values)
    q = statistics.quantiles(v, n=4) if len(v) >= 2 else [v[0]] * 3
    return {k: round(x, 3) for k, x in zip(("median", "q1", "q3", "min", "max"),
                                            (statistics.median(v), q[0], q[2], v[0], v[-1]))}


def _native(dev: torch.device):
    return cpu_has_native_bf16() if dev.type == "cpu" else None
