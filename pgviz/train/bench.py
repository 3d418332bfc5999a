"""How much does the policy gradient cost?  Time training steps of the objectives.

All run on the same network, the same data and the same device, in one process,
interleaved (so a noisy neighbour slows them all alike), after a warm-up:

* ``xent``             cross-entropy, one backward;
* ``pg``               the estimator as one surrogate loss, one backward (what the trainer uses);
* ``pg_two_backward``  the article's literal form, two backward passes through the network;
* then what each registered objective asks to be timed through its step (its entry's
  ``bench`` in :mod:`pgviz.objectives`): today ``pg_exact``, ``rloo_4`` and ``value``, the
  gap chapter's objectives.

Each timed step is the step ``pgviz train`` takes, with its defaults: a batch from the
trainer's loader (:class:`~pgviz.batches.DeviceLoader`: gathered, flipped and cropped,
normalised on the device), then :func:`pgviz.train.loop.train_step` (learning rate,
forward, loss, backward, Adam, weight average).  Only ``pg_two_backward``, which is not an
objective of the registry, has its own step (:func:`_two_backward_step`), the same but
for its two backward passes.  Every method is timed in both precisions, ``fp32`` and
``bf16`` (autocast, as the trainer uses it: see
:func:`pgviz.train.runtime.resolve_precision`), in the same rounds, so that
``ratio_bf16_vs_fp32`` compares like with like.
"""
from __future__ import annotations

import statistics
import time

import torch

from .. import estimator, objectives
from ..data import DeviceLoader
from ..models import get_model
from . import loop
from .config import TrainConfig
from .optim import WeightAverage, adam
from .runtime import PRECISIONS, autocast, device_settings, check_precision_name, cpu_has_native_bf16, pick_device, resolve_precision

__all__ = ["BENCH_PRECISIONS", "REFERENCE_METHODS", "bench", "methods"]

#: The two the ratios compare the trainer's ``pg`` with, and ``pg`` itself.
REFERENCE_METHODS = ("xent", "pg", "pg_two_backward")
#: Both precisions are timed in every run (``auto`` only picks the headline).
BENCH_PRECISIONS = tuple(p for p in PRECISIONS if p != "auto")
#: Batches of images the bench's loader holds (its epoch): each timed step draws the next.
LOADER_BATCHES = 4


def methods() -> dict:
    """``{method: (objective, options)}``: ``xent`` and ``pg`` (their registry entries with
    default options), ``pg_two_backward`` (``None``: not an objective), then what each
    registered objective asks to be timed (its entry's ``bench``)."""
    out = {"xent": ("xent", {}), "pg": ("pg", {}), "pg_two_backward": None}
    for entry in objectives.OBJECTIVES.values():
        for method, options in entry.bench.items():
            out[method] = (entry.name, dict(options))
    return out


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def _two_backward_step(model, opt, average, x, y, *, lr, device, precision, generator, entropy_weight):
    """:func:`pgviz.train.loop.train_step` with the article's two backward passes
    (:func:`pgviz.estimator.pg_two_backward`) in place of the loss and its backward."""
    for group in opt.param_groups:
        group["lr"] = lr
    with autocast(device, precision):
        outputs = model(x)
    opt.zero_grad(set_to_none=True)
    estimator.pg_two_backward(outputs.float(), y, generator=generator, entropy_weight=entropy_weight)
    opt.step()
    if average is not None:
        average.update(model)


def _forever(loader):
    while True:
        yield from loader


def bench(device: str = "auto", *, batch_size: int = 256, model: str = "fast", steps: int = 4,
          repeats: int = 15, warmup: int = 3, seed: int = 0, precision: str = "auto") -> dict:
    """Images per second of one training step for each of :func:`methods`, in fp32 and bf16.

    The data are random images (:data:`LOADER_BATCHES` batches of them) fed through the
    trainer's loader with its default augmentation, the weight average is on as in
    training (:class:`TrainConfig`'s ``ema``), and every step is the trainer's
    (:func:`pgviz.train.loop.train_step`).  Each of ``repeats`` rounds times ``steps``
    steps of every (method, precision) pair back to back (the order rotates).
    ``images_per_second`` is the best round of each method in ``precision`` (``auto``
    resolves as for training), the usual estimate of a cost on a shared machine (other
    processes only ever add time, as the ``timeit`` documentation puts it); the ratios are
    taken from those.  ``images_per_second_by_precision`` holds both precisions and
    ``ratio_bf16_vs_fp32`` compares them on the trainer's objective (``pg``).  The medians
    are reported too, and ``ratios_paired`` gives each ratio as the median of the
    per-round ratios (both sides timed in the same round, so a slow round slows both) with
    its quartiles and range: how far one run's ratio can be trusted.
    """
    check_precision_name(precision)
    dev = pick_device(device)
    headline = resolve_precision(precision, dev)
    defaults = TrainConfig()
    torch.manual_seed(seed)
    net = get_model(model, 10).to(dev)
    opt = adam(net.parameters(), defaults.lr, dev)
    average = WeightAverage(net, defaults.ema) if defaults.ema > 0 else None
    g = torch.Generator().manual_seed(seed)
    n = LOADER_BATCHES * batch_size
    images = torch.randint(0, 256, (n, 32, 32, 3), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 10, (n,), generator=g)
    loader = DeviceLoader(images, labels, batch_size, device=dev, augment=defaults.augment, seed=seed,
                          drop_last=defaults.drop_last, standardize=defaults.standardize)
    batches = _forever(loader)
    gen = torch.Generator(device=loader.generator.device).manual_seed(seed + 1)  # as the trainer's
    timed = methods()
    resolved = {m: (spec[0], {"entropy_weight": defaults.entropy_weight,
                              **objectives.resolve_options(spec[0], spec[1])})
                for m, spec in timed.items() if spec is not None}
    prepared = {m: objectives.prepare(spec[0], spec[1], device=dev, precision=headline)  # {} for most
                for m, spec in timed.items() if spec is not None}

    def step(method: str, prec: str) -> None:
        x, y = next(batches)
        with device_settings(dev, prec):  # the whole step: backward convolutions too
            if method in resolved:
                name, options = resolved[method]
                loop.train_step(net, opt, average, x, y, objective=name, lr=defaults.lr, device=dev,
                                precision=prec, generator=gen, options=options, prepared=prepared[method])
            else:
                _two_backward_step(net, opt, average, x, y, lr=defaults.lr, device=dev, precision=prec,
                                   generator=gen, entropy_weight=defaults.entropy_weight)

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
