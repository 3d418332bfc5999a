"""Training a classifier with the policy gradient estimator (or with cross-entropy).

The loop in :func:`train` fits on one screen: per batch, forward, one of three
objectives, one backward, an Adam step (constant learning rate after a short warm-up)
and an update of the weight average that is evaluated (:class:`WeightAverage`).
Everything else here is bookkeeping that makes runs trustworthy: metrics per step and
per epoch in ``metrics.jsonl``, a checkpoint after every epoch that resumes *exactly*
(model, optimiser, every random stream and the data order), Ctrl-C that stops at the
next batch boundary and saves, and a stop with a clear message when the loss stops
being finite.

Objectives (``pg``, ``pg-no-baseline``, ``xent``) are defined in :mod:`pgviz.objectives`.

Callback events carry ``"model"``: the evaluated network (the weight average); ``"live_model"``
is the one being trained.  For a notebook::

    from pgviz.training import TrainConfig, train
    def show(event):              # called after logged steps and after every epoch
        if event["event"] == "epoch":
            print(event["epoch"], event["test_acc"])
    summary = train(TrainConfig(objective="pg", data="synthetic", epochs=3), callbacks=[show])
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import math
import os
import signal
import threading
import time
import warnings
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable, Iterable, Optional

import torch

from . import estimator
from .data import Dataset, DeviceLoader, default_source, load_dataset, normalize
from .models import MODELS, get_model
from .objectives import _NOT_MEASURED, OBJECTIVES, STAT_NAMES, check_options, config_options, objective_step

__all__ = [
    "OBJECTIVES", "CheckpointError", "ConfigError", "StopTraining", "TrainConfig", "TrainingDiverged",
    "evaluate", "load_checkpoint", "model_from_checkpoint", "objective_step", "pick_device",
    "predict", "train",
]

CHECKPOINT_FORMAT = "pgviz-checkpoint"
CHECKPOINT_VERSION = 1


class ConfigError(ValueError):
    """A setting that cannot work (negative learning rate, batch size 0, ...)."""


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read or was not written by pgviz."""


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is left in place."""


class StopTraining(Exception):
    """Raise from a callback to end training early (a checkpoint is saved first)."""


@dataclass
class TrainConfig:
    """Everything a run depends on (saved in the checkpoint)."""

    objective: str = "pg"
    data: Optional[str] = None        # None: $PGVIZ_DATA or "cifar10"
    out: Optional[str] = None         # None: keep nothing on disk
    epochs: int = 40
    batch_size: int = 128
    lr: float = 2e-3
    entropy_weight: float = 0.01
    seed: int = 0
    device: str = "auto"
    model: str = "fast"
    augment: bool = True
    warmup_steps: int = 100           # linear learning-rate warm-up, then constant
    ema: float = 0.99                 # per-step decay of the weight average that is evaluated; 0: off
    precision: str = "auto"           # auto | fp32 | bf16 (autocast); see resolve_precision
    log_every: int = 0                # steps per metrics line; 0: 1 on CPU, 10 on accelerators
    progress: bool = True
    data_dir: Optional[str] = None    # cache directory for cifar10
    samples: int = 1                  # rloo: actions sampled per image (K >= 2)
    group_norm: bool = False          # rloo: divide advantages by the group's std (GRPO)
    epsilon: float = 0.2              # value: exploration rate of the epsilon-greedy policy

    def validate(self) -> "TrainConfig":
        def bad(msg):
            raise ConfigError(msg)
        if self.objective not in OBJECTIVES:
            bad(f"unknown objective {self.objective!r}; choose one of: {', '.join(OBJECTIVES)}")
        if self.model not in MODELS:
            bad(f"unknown model {self.model!r}; choose one of: {', '.join(MODELS)}")
        if not isinstance(self.epochs, int) or self.epochs < 0:
            bad(f"epochs must be a whole number >= 0, got {self.epochs}")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            bad(f"batch size must be a whole number >= 1, got {self.batch_size}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            bad(f"learning rate must be a finite number > 0, got {self.lr}")
        if not (math.isfinite(self.entropy_weight) and self.entropy_weight >= 0):
            bad(f"entropy weight must be a finite number >= 0, got {self.entropy_weight}")
        if self.device not in ("auto", "cpu", "cuda", "mps") and not str(self.device).startswith("cuda:"):
            bad(f"unknown device {self.device!r}; choose auto, cpu, cuda or mps")
        if self.warmup_steps < 0 or self.log_every < 0:
            bad("warmup_steps and log_every must be >= 0")
        if self.precision not in PRECISIONS:
            bad(f"unknown precision {self.precision!r}; choose one of: {', '.join(PRECISIONS)}")
        if not 0 <= self.ema < 1:
            bad(f"ema decay must lie in [0, 1), got {self.ema}")
        problem = check_options(self.objective, self.samples, self.group_norm, self.epsilon)
        if problem:
            bad(problem)
        return self

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def pick_device(name: str = "auto") -> torch.device:
    """``auto``: cuda if available, else mps, else cpu.  An unavailable explicit choice is an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but no CUDA GPU is available; use --device auto or cpu")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("device 'mps' requested but MPS is not available; use --device auto or cpu")
    return torch.device(name)


PRECISIONS = ("auto", "fp32", "bf16")


def cpu_has_native_bf16() -> bool:
    """True where oneDNN runs bfloat16 natively on this CPU (AVX-512 BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:  # older torch or a build without oneDNN
        return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` -> ``bf16`` on CUDA and on a CPU with native bfloat16, else ``fp32``."""
    if precision != "auto":
        return precision
    if device.type == "cuda" or (device.type == "cpu" and cpu_has_native_bf16()):
        return "bf16"
    return "fp32"


def _autocast(device: torch.device, precision: str = "auto"):
    """Mixed precision (autocast) as ``precision`` resolves on ``device``: bfloat16 on CUDA
    (float16 where the GPU lacks bf16) and on a CPU with native bf16; nothing otherwise."""
    if resolve_precision(precision, device) != "bf16" or device.type not in ("cuda", "cpu"):
        return contextlib.nullcontext()
    if device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return torch.autocast("cpu", dtype=torch.bfloat16)


@torch.no_grad()
def predict(model: torch.nn.Module, images: torch.Tensor, *, batch_size: int = 1000, device=None):
    """``(probs [N, K], baseline [N])`` for uint8 NHWC ``images`` (model put in eval mode)."""
    device = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    probs, base = [], []
    for i in range(0, len(images), batch_size):
        x = normalize(images[i:i + batch_size].to(device))
        with _autocast(device):
            out = model(x).float()
        log_probs, v = estimator.split_outputs(out)
        probs.append(log_probs.exp().cpu())
        base.append(v.cpu())
    model.train(was_training)
    return torch.cat(probs), torch.cat(base)


def evaluate(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, *,
             batch_size: int = 1000, device=None) -> dict:
    """Greedy accuracy on ``images`` (uint8 NHWC) and ``labels``.

    Returns ``{"accuracy", "expected_reward" (mean pi(true label)), "baseline" (mean V), "n"}``.
    """
    probs, base = predict(model, images, batch_size=batch_size, device=device)
    labels = labels.cpu().long()
    return {
        "accuracy": (probs.argmax(1) == labels).float().mean().item(),
        "expected_reward": probs.gather(1, labels[:, None]).mean().item(),
        "baseline": base.mean().item(),
        "n": len(labels),
    }


# ----------------------------------------------------------------------------
# Checkpoints
# ----------------------------------------------------------------------------
def _save_atomic(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_checkpoint(path, map_location="cpu") -> dict:
    """Read a pgviz checkpoint (safely: tensors and plain data only)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        with warnings.catch_warnings():  # torch warns about odd pickles before failing on them
            warnings.simplefilter("ignore")
            ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(exc).__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a pgviz checkpoint")
    if ckpt.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"{path}: checkpoint version {ckpt.get('version')} is not supported")
    return ckpt


def model_from_checkpoint(ckpt, device="cpu") -> torch.nn.Module:
    """The evaluated network of a checkpoint (its weight average when the run kept one);
    ``ckpt`` is a dict from :func:`load_checkpoint` or a path."""
    if not isinstance(ckpt, dict):
        ckpt = load_checkpoint(ckpt)
    try:
        model = get_model(ckpt["config"]["model"], ckpt["n_classes"])
        model.load_state_dict(ckpt["ema"] if ckpt.get("ema") is not None else ckpt["model"])
    except Exception as exc:
        raise CheckpointError(f"checkpoint does not hold a usable model ({type(exc).__name__})") from None
    return model.to(device).eval()


# ----------------------------------------------------------------------------
# The trainer
# ----------------------------------------------------------------------------
class _Interrupt:
    """Turns the first Ctrl-C into a request to stop at the next batch boundary."""

    def __init__(self):
        self.requested = False
        self._old = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._old = signal.getsignal(signal.SIGINT)

            def handler(signum, frame):
                self.requested = True
                signal.signal(signal.SIGINT, self._old)  # a second Ctrl-C interrupts at once
            signal.signal(signal.SIGINT, handler)
        return self

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


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

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for avg, live in zip(self.model.state_dict().values(), model.state_dict().values()):
            if avg.is_floating_point():
                avg.lerp_(live, 1.0 - d)
            else:
                avg.copy_(live)


def _jsonable(d: dict) -> dict:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


def train(config: TrainConfig, callbacks: Iterable[Callable[[dict], None]] = (), *,
          dataset: Optional[Dataset] = None, resume: bool = False) -> dict:
    """Train as ``config`` says; return the final summary (also the last metrics line).

    ``callbacks`` are called with one dict per event: ``{"event": "step", ...STAT_NAMES}``
    every ``log_every`` steps and ``{"event": "epoch", "train_acc", "test_acc", ...}`` after
    each epoch; the dict also carries ``"model"`` (the network that is evaluated: the
    weight average, see :class:`WeightAverage`) and ``"live_model"`` (the one being
    trained) for plotting predictions.  A callback may raise :class:`StopTraining` (or ``KeyboardInterrupt``)
    to stop; the run is then saved as after Ctrl-C.  ``resume=True`` continues from
    ``config.out/checkpoint.pt`` (up to ``config.epochs`` epochs in total).
    """
    config = dataclasses.replace(config).validate()  # a copy: the caller's stays as it was
    device = pick_device(config.device)
    out = Path(config.out) if config.out else None
    ckpt_path = out / "checkpoint.pt" if out else None
    ckpt = load_checkpoint(ckpt_path) if resume and ckpt_path and ckpt_path.exists() else None
    if ckpt is not None:  # the run's identity comes from the checkpoint
        config = TrainConfig.from_dict({**ckpt["config"], "epochs": config.epochs, "device": config.device,
                                        "precision": config.precision,
                                        "out": config.out, "progress": config.progress,
                                        "data_dir": config.data_dir}).validate()
    if dataset is not None:
        ds = dataset
    else:
        if config.data is None:
            config.data = default_source()  # record what was actually used
        ds = load_dataset(config.data, data_dir=config.data_dir)
    log_every = config.log_every or (1 if device.type == "cpu" else 10)
    precision = resolve_precision(config.precision, device)

    torch.manual_seed(config.seed)
    model = get_model(config.model, ds.n_classes).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    loader = DeviceLoader(ds.train_images, ds.train_labels, config.batch_size, device=device,
                          augment=config.augment, seed=config.seed)
    action_gen = torch.Generator(device=loader.generator.device).manual_seed(config.seed + 1)
    ema = WeightAverage(model, config.ema) if config.ema > 0 else None
    st = {"epoch": 0, "step": 0, "images_seen": 0, "elapsed": 0.0,
          "sums": torch.zeros(len(STAT_NAMES) + 1, dtype=torch.float64), "history": []}
    if ckpt is not None:
        if ckpt["n_classes"] != ds.n_classes:
            raise CheckpointError(f"{ckpt_path}: trained for {ckpt['n_classes']} classes, data has {ds.n_classes}")
        model.load_state_dict(ckpt["model"])
        if ema is not None:
            ema.model.load_state_dict(ckpt["ema"])
            ema.updates = ckpt["ema_updates"]
        opt.load_state_dict(ckpt["optimizer"])
        loader.load_state_dict(ckpt["loader"])
        action_gen.set_state(ckpt["action_rng"])
        torch.set_rng_state(ckpt["torch_rng"])
        st.update({k: ckpt[k] for k in ("epoch", "step", "images_seen", "elapsed", "sums", "history")})

    metrics = _MetricsLog(out, keep_until=st["step"] if ckpt is not None else None)
    steps_per_epoch = len(loader)
    metrics.write({"event": "start", "resumed_from_step": st["step"] if ckpt else None,
                   "n_train": len(ds.train_labels), "n_test": len(ds.test_labels), **asdict(config), "device": str(device),
                   "precision_used": precision})

    evaluated = ema.model if ema is not None else model

    def emit(event: dict):
        metrics.write(event)
        for cb in callbacks:
            cb({**event, "model": evaluated, "live_model": model})

    def save(finished: bool = False):
        if ckpt_path is None:
            return
        _save_atomic({
            "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "config": asdict(config),
            "n_classes": ds.n_classes, "label_names": list(ds.label_names), "data_source": ds.source,
            "model": model.state_dict(), "optimizer": opt.state_dict(), "loader": loader.state_dict(),
            "ema": ema.model.state_dict() if ema is not None else None,
            "ema_updates": ema.updates if ema is not None else 0,
            "action_rng": action_gen.get_state(), "torch_rng": torch.get_rng_state(),
            "epoch": st["epoch"], "step": st["step"], "images_seen": st["images_seen"],
            "elapsed": st["elapsed"], "sums": st["sums"], "history": st["history"], "finished": finished,
        }, ckpt_path)

    def lr_at(step: int) -> float:
        return config.lr * min(1.0, (step + 1) / config.warmup_steps) if config.warmup_steps else config.lr

    from tqdm.auto import tqdm
    bar = tqdm(total=config.epochs * steps_per_epoch, initial=min(st["step"], config.epochs * steps_per_epoch),
               disable=not config.progress, unit="step", dynamic_ncols=True, leave=False)
    stopped, pending, t0, consistent = None, [], time.perf_counter(), True
    model.train()
    with _Interrupt() as interrupt:
        try:
            while st["epoch"] < config.epochs and stopped is None:
                # ---- one epoch: the whole training loop --------------------------------
                for x, y in loader:
                    consistent = False  # a hard interrupt from here on leaves a half-made step
                    for group in opt.param_groups:
                        group["lr"] = lr_at(st["step"])
                    with _autocast(device, precision):
                        outputs = model(x)
                    loss, stats = objective_step(config.objective, outputs, y, generator=action_gen,
                                                 **config_options(config))
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    if ema is not None:
                        ema.update(model)
                    st["step"] += 1
                    st["images_seen"] += len(y)
                    pending.append(stats)
                    consistent = True
                    if len(pending) >= log_every or loader.position == steps_per_epoch:
                        _flush(pending, st, emit, t0, bar, lr_at(st["step"] - 1))
                    if interrupt.requested:
                        stopped = "interrupted"
                        break
                # ---- end of epoch: evaluate, log, checkpoint ----------------------------
                if stopped is None:
                    _flush(pending, st, emit, t0, bar, lr_at(st["step"] - 1))
                    st["epoch"] += 1
                    test = evaluate(evaluated, ds.test_images, ds.test_labels, device=device)
                    n = max(st["sums"][-1].item(), 1.0)
                    means = {k: (None if k in _NOT_MEASURED[config.objective] else v)
                             for k, v in zip(STAT_NAMES, (st["sums"][:-1] / n).tolist())}
                    st["sums"] = torch.zeros_like(st["sums"])
                    st["elapsed"] += time.perf_counter() - t0
                    t0 = time.perf_counter()
                    event = _jsonable({"event": "epoch", "epoch": st["epoch"], "step": st["step"],
                                       "images_seen": st["images_seen"], "time": round(st["elapsed"], 3),
                                       **means, "test_acc": test["accuracy"],
                                       "test_expected_reward": test["expected_reward"]})
                    st["history"].append(event)
                    save(finished=st["epoch"] >= config.epochs)
                    emit(event)
        except (KeyboardInterrupt, StopTraining) as exc:
            # From a callback (at a batch boundary) the state is consistent and is saved; a
            # second Ctrl-C inside a step is not: the last checkpoint is left as it was.
            if not consistent:
                raise
            stopped = "interrupted" if isinstance(exc, KeyboardInterrupt) else "stopped"
        finally:
            bar.close()
        if stopped is not None:
            _flush(pending, st, emit, t0, bar, lr_at(max(st["step"] - 1, 0)), safe=True)
            st["elapsed"] += time.perf_counter() - t0
            save(finished=False)

    last = st["history"][-1] if st["history"] else {}
    summary = _jsonable({
        "event": "end", "status": stopped or "finished", "objective": config.objective, "model": config.model,
        "data": ds.source, "epochs": st["epoch"], "step": st["step"], "images_seen": st["images_seen"],
        "train_acc": last.get("train_acc"), "test_acc": last.get("test_acc"),
        "n_test": len(ds.test_labels), "wall_time": round(st["elapsed"], 3), "device": str(device), "precision": precision,
        "checkpoint": str(ckpt_path) if ckpt_path else None,
    })
    metrics.write(summary)
    for cb in callbacks:
        cb({**summary, "model": evaluated, "live_model": model})
    return summary


def _flush(pending: list, st: dict, emit, t0: float, bar, lr: float, safe: bool = False) -> None:
    """Log the pending steps' statistics (one device sync); stop on a non-finite loss."""
    if not pending:
        return
    stats = torch.stack(pending).double().cpu()
    pending.clear()
    if not safe and not torch.isfinite(stats[:, 0]).all():
        st["sums"] = torch.zeros_like(st["sums"])
        raise TrainingDiverged(
            f"loss became {stats[:, 0][~torch.isfinite(stats[:, 0])][0].item()} near step {st['step']} "
            f"(epoch {st['epoch'] + 1}); training stopped and the last good checkpoint (epoch {st['epoch']}) "
            f"was kept; try a smaller --lr")
    st["sums"][:-1] += torch.nan_to_num(stats, nan=0.0).sum(0)
    st["sums"][-1] += len(stats)
    row = dict(zip(STAT_NAMES, stats[-1].tolist()))
    bar.update(len(stats))
    bar.set_postfix(acc=f"{row['train_acc']:.2f}", loss=f"{row['loss']:.3f}", refresh=False)
    emit(_jsonable({"event": "step", "epoch": st["epoch"] + 1, "step": st["step"],
                    "images_seen": st["images_seen"], "time": round(st["elapsed"] + time.perf_counter() - t0, 3),
                    "lr": lr, **row}))


class _MetricsLog:
    """Appends JSON lines to ``out/metrics.jsonl`` (flushed at once; nothing when ``out`` is None).

    On resume, lines written after the checkpoint's step (a run that died later) are dropped.
    """

    def __init__(self, out: Optional[Path], keep_until: Optional[int]):
        self.path = None
        if out is None:
            return
        out.mkdir(parents=True, exist_ok=True)
        self.path = out / "metrics.jsonl"
        if keep_until is not None and self.path.exists():
            kept = []
            for line in self.path.read_text().splitlines():
                try:
                    row = json.loads(line)
                except ValueError:
                    continue
                if row.get("event") in ("step", "epoch", "probe") and row.get("step", 0) <= keep_until:
                    kept.append(line)
                elif row.get("event") == "start" and not kept:
                    kept.append(line)
            self.path.write_text("".join(k + "\n" for k in kept))
        elif keep_until is None and self.path.exists():
            self.path.unlink()

    def write(self, row: dict) -> None:
        if self.path is not None:
            with open(self.path, "a") as f:
                f.write(json.dumps(row) + "\n")
