"""Training a classifier with the policy gradient estimator (or with cross-entropy).

The loop in :func:`_loop` fits on one screen: per batch, forward (in bfloat16 autocast
where that is faster: :func:`resolve_precision`), one of the objectives, one backward,
an Adam step (constant learning rate after a short warm-up) and an update of the weight
average that is evaluated (:class:`WeightAverage`).  Setting up or resuming a run
(:meth:`_Run.__init__`), saving it (:meth:`_Run.save`) and the end of an epoch
(:meth:`_Run.end_epoch`) are the named pieces around it.

Everything else here is bookkeeping that makes runs trustworthy: metrics per step and
per epoch in ``metrics.jsonl``, a checkpoint after every epoch that resumes *exactly*
(model, optimiser, every random stream including torch's global one, the data order),
Ctrl-C or SIGTERM that stops at the next batch boundary and saves, a stop with a clear
message when the loss or any weight stops being finite (a checkpoint never holds a
non-finite tensor), an exclusive lock on the output folder, and a refusal to resume on
data other than the run was trained on.

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
import numbers
import signal
import sys
import threading
import time
import uuid
import warnings
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable, Iterable, Optional

import torch

from . import estimator
from .data import (DataError, Dataset, DeviceLoader, canonical_source, default_source, fingerprint,
                   load_dataset, normalize)
from .models import MODELS, get_model
from .objectives import _NOT_MEASURED, OBJECTIVES, STAT_NAMES, check_options, config_options, objective_step

__all__ = [
    "OBJECTIVES", "PRECISIONS", "CheckpointError", "ConfigError", "OutputError", "StopTraining",
    "TrainConfig", "TrainingDiverged", "check_input_size", "cpu_has_native_bf16", "evaluate", "load_checkpoint", "model_from_checkpoint", "objective_step", "pick_device",
    "predict", "resolve_precision", "train", "warmup_lr",
]

CHECKPOINT_FORMAT = "pgviz-checkpoint"
CHECKPOINT_VERSION = 1


class ConfigError(ValueError):
    """A setting that cannot work (negative learning rate, batch size 0, ...)."""


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read or was not written by pgviz."""


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is left in place."""


class OutputError(RuntimeError):
    """Writing to the output folder failed during a run (disk full, folder gone, ...);
    the previous checkpoint is left as it was."""


class StopTraining(Exception):
    """Raise from a callback to end training early (a checkpoint is saved first)."""


def _whole(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _real(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


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
        """Check every field's type and range (raises :class:`ConfigError`); numbers of
        numpy types become plain ``int``/``float``, paths become strings."""
        def bad(msg):
            raise ConfigError(msg)
        for name in ("objective", "model", "device", "precision"):
            if not isinstance(getattr(self, name), str):
                bad(f"{name} must be a string, got {getattr(self, name)!r}")
        for name in ("data", "out", "data_dir"):
            v = getattr(self, name)
            if isinstance(v, os.PathLike):
                setattr(self, name, os.fspath(v))
            elif v is not None and not isinstance(v, str):
                bad(f"{name} must be a string or None, got {v!r}")
        for name in ("epochs", "batch_size", "seed", "warmup_steps", "log_every", "samples"):
            v = getattr(self, name)
            if not _whole(v):
                bad(f"{name.replace('_', ' ')} must be a whole number, got {v!r}")
            setattr(self, name, int(v))
        for name in ("lr", "entropy_weight", "ema", "epsilon"):
            v = getattr(self, name)
            if not _real(v):
                label = {"lr": "learning rate (lr)", "ema": "ema decay"}.get(name, name.replace("_", " "))
                bad(f"{label} must be a number, got {v!r}")
            setattr(self, name, float(v))
        for name in ("augment", "progress", "group_norm"):
            if not isinstance(getattr(self, name), bool):
                bad(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.objective not in OBJECTIVES:
            bad(f"unknown objective {self.objective!r}; choose one of: {', '.join(OBJECTIVES)}")
        if self.model not in MODELS:
            bad(f"unknown model {self.model!r}; choose one of: {', '.join(MODELS)}")
        if self.epochs < 0:
            bad(f"epochs must be a whole number >= 0, got {self.epochs}")
        if self.batch_size < 1:
            bad(f"batch size must be a whole number >= 1, got {self.batch_size}")
        if not 0 <= self.seed < 2 ** 63:
            bad(f"seed must lie in 0 .. 2**63 - 1, got {self.seed}")
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
        if not isinstance(d, dict):
            raise ConfigError(f"a config must be a dict, got {type(d).__name__}")
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def warmup_lr(step: int, lr: float, warmup_steps: int) -> float:
    """Learning rate of step ``step`` (0-based): ``lr * (step + 1) / warmup_steps`` during
    the warm-up, so the first step already moves, then ``lr``."""
    return lr * min(1.0, (step + 1) / warmup_steps) if warmup_steps else lr


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
    """The precision training runs in: ``auto`` -> ``bf16`` (autocast) on CUDA and on a CPU
    with native bfloat16 (2.0x the float32 step rate measured here, ``pgviz bench``), else
    ``fp32``.  (Evaluation resolves ``auto`` to ``fp32``: see :func:`predict`.)"""
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}; choose one of: {', '.join(PRECISIONS)}")
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


def check_input_size(model: torch.nn.Module, images: torch.Tensor, name: str = "") -> None:
    """Raise :class:`DataError` (one line) if ``model`` cannot take images of this size
    (the ``shallow`` network needs 32 x 32); runs one image through it in eval mode."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(normalize(images[:1].to(next(model.parameters()).device)))
    except RuntimeError:
        h, w = images.shape[1:3]
        raise DataError(f"model {name or type(model).__name__!r} cannot take {h}x{w} images "
                        f"(it needs 32x32); use --model fast, which takes any size") from None
    finally:
        model.train(was_training)


@torch.no_grad()
def predict(model: torch.nn.Module, images: torch.Tensor, *, batch_size: int = 1000, device=None,
            precision: str = "auto"):
    """``(probs [N, K], baseline [N])`` for uint8 NHWC ``images`` (model put in eval mode).

    ``precision="auto"`` evaluates in **float32** everywhere (unlike training): an
    accuracy should be a property of the weights, not of the machine that measures it,
    and a forward pass is a small part of a run's cost.  ``"bf16"`` asks for autocast.
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    resolve_precision(precision, device)  # rejects an unknown name
    used = "bf16" if precision == "bf16" else "fp32"
    was_training = model.training
    model.eval()
    probs, base = [], []
    for i in range(0, len(images), batch_size):
        x = normalize(images[i:i + batch_size].to(device))
        with _autocast(device, used):
            out = model(x).float()
        log_probs, v = estimator.split_outputs(out)
        probs.append(log_probs.exp().cpu())
        base.append(v.cpu())
    model.train(was_training)
    return torch.cat(probs), torch.cat(base)


def evaluate(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, *,
             batch_size: int = 1000, device=None, precision: str = "auto") -> dict:
    """Greedy accuracy on ``images`` (uint8 NHWC) and ``labels`` (``precision`` as in :func:`predict`).

    Returns ``{"accuracy", "expected_reward" (mean pi(true label)), "baseline" (mean V), "n"}``.
    """
    probs, base = predict(model, images, batch_size=batch_size, device=device, precision=precision)
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
    """Write to a temporary name unique to this process and call, then rename: a reader
    (or a crash) sees the old file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _nonfinite(*state_dicts) -> list:
    """Names of floating-point tensors (at any depth) that hold NaN or infinity."""
    bad = []

    def walk(prefix, v):
        if isinstance(v, torch.Tensor):
            if v.is_floating_point() and not torch.isfinite(v).all():
                bad.append(prefix)
        elif isinstance(v, dict):
            for k, x in v.items():
                walk(f"{prefix}.{k}" if prefix else str(k), x)
        elif isinstance(v, (list, tuple)):
            for i, x in enumerate(v):
                walk(f"{prefix}.{i}", x)
    for sd in state_dicts:
        walk("", sd)
    return bad


def load_checkpoint(path, map_location="cpu") -> dict:
    """Read a pgviz checkpoint (safely: tensors and plain data only) and check its shape:
    a valid ``config``, ``n_classes`` and model weights (else :class:`CheckpointError`)."""
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
    if not isinstance(ckpt.get("config"), dict):
        raise CheckpointError(f"{path}: the checkpoint has no config")
    try:
        TrainConfig.from_dict(ckpt["config"]).validate()
    except (ConfigError, TypeError) as exc:
        raise CheckpointError(f"{path}: the checkpoint's config is invalid: {exc}") from None
    n = ckpt.get("n_classes")
    if not _whole(n) or n < 2 or not isinstance(ckpt.get("model"), dict) \
            or not all(_whole(ckpt.get(k)) for k in ("epoch", "step")):
        raise CheckpointError(f"{path}: the checkpoint lacks a class count, weights or its step")
    return ckpt


def model_from_checkpoint(ckpt, device="cpu") -> torch.nn.Module:
    """The evaluated network of a checkpoint (its weight average when the run kept one);
    ``ckpt`` is a dict from :func:`load_checkpoint` or a path.  Non-finite weights are refused."""
    if not isinstance(ckpt, dict):
        ckpt = load_checkpoint(ckpt)
    try:
        model = get_model(ckpt["config"]["model"], ckpt["n_classes"])
        model.load_state_dict(ckpt["ema"] if ckpt.get("ema") is not None else ckpt["model"])
    except Exception as exc:
        raise CheckpointError(f"checkpoint does not hold a usable model ({type(exc).__name__})") from None
    bad = _nonfinite(model.state_dict())
    if bad:
        raise CheckpointError(f"checkpoint holds non-finite weights ({len(bad)} tensors, e.g. {bad[0]})")
    return model.to(device).eval()


# ----------------------------------------------------------------------------
# The trainer's helpers: output folder, signals, progress
# ----------------------------------------------------------------------------
class _OutputDir:
    """The output folder, checked and locked before anything else happens.

    Entering creates ``out``, proves it writable with a probe file and takes an exclusive
    lock on ``out/.pgviz.lock`` (released by the operating system when the process ends,
    so a killed run leaves no stale lock).  A second run on a busy folder, or a folder that
    cannot be written, is a :class:`ConfigError` (one line, before any data is loaded).
    """

    LOCK = ".pgviz.lock"

    def __init__(self, out: Optional[Path]):
        self.out, self._fd = out, None

    def __enter__(self):
        out = self.out
        if out is None:
            return self
        if out.exists() and not out.is_dir():
            raise ConfigError(f"output folder {out} exists and is not a folder")
        try:
            out.mkdir(parents=True, exist_ok=True)
            probe = out / f".write-test.{os.getpid()}.{uuid.uuid4().hex[:8]}"
            probe.write_bytes(b"ok")
            probe.unlink()
            self._fd = os.open(out / self.LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ConfigError(f"output folder {out} cannot be written ({exc.strerror or exc}); "
                              f"choose another --out") from None
        if not _try_lock(self._fd):
            os.close(self._fd)
            self._fd = None
            raise ConfigError(f"output folder {out} is in use by another pgviz run; wait for it "
                              f"to finish or choose another --out")
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
            os.write(self._fd, f"{os.getpid()}\n".encode())
        return self

    def __exit__(self, *exc):
        if self._fd is not None:
            os.close(self._fd)  # closing releases the lock
            self._fd = None


def _try_lock(fd: int) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


class _Interrupt:
    """Turns the first Ctrl-C (SIGINT) or SIGTERM into a request to stop at the next batch
    boundary; ``requested`` is then ``"interrupted"`` or ``"terminated"``."""

    SIGNALS = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated"}

    def __init__(self):
        self.requested = None
        self._old = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig, why in self.SIGNALS.items():
                self._old[sig] = signal.getsignal(sig)

                def handler(signum, frame, why=why):
                    self.requested = self.requested or why
                    signal.signal(signum, self._old[signum])  # a second one acts at once
                signal.signal(sig, handler)
        return self

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


def _live_display() -> bool:
    """A terminal, or a Jupyter kernel (where tqdm draws a widget, not carriage returns)."""
    if sys.stderr.isatty():
        return True
    ipython = sys.modules.get("IPython")
    try:
        shell = ipython.get_ipython() if ipython is not None else None
        return shell is not None and "IPKernelApp" in shell.config
    except Exception:
        return False


class _Progress:
    """A progress bar on a terminal or in Jupyter; elsewhere (CI, ``nohup``) a plain line
    every ``interval`` seconds instead of thousands of carriage-return frames."""

    interval = 10.0

    def __init__(self, total: int, initial: int, enabled: bool):
        self.total, self.n, self.bar, self.enabled = total, initial, None, enabled
        self._last = time.monotonic()
        if enabled and _live_display():
            from tqdm.auto import tqdm
            self.bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, leave=False)

    def update(self, n: int, row: dict) -> None:
        self.n += n
        if self.bar is not None:
            self.bar.update(n)
            self.bar.set_postfix(acc=f"{row['train_acc']:.2f}", loss=f"{row['loss']:.3f}", refresh=False)
        elif self.enabled and (time.monotonic() - self._last >= self.interval or self.n >= self.total):
            self._last = time.monotonic()
            pct = 100 * self.n / max(self.total, 1)
            print(f"pgviz: step {self.n}/{self.total} ({pct:.0f}%) epoch {row['epoch']} "
                  f"loss {row['loss']:.3f} train_acc {row['train_acc']:.2f}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _jsonable(d: dict) -> dict:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


# ----------------------------------------------------------------------------
# The trainer
# ----------------------------------------------------------------------------
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


class _Run:
    """One run's state: built fresh, or restored from ``out/checkpoint.pt`` (``resume``).

    Resuming keeps the run's identity (objective, data, seed, ...) from the checkpoint;
    only ``epochs``, ``device``, ``precision`` and where things go may change.  Resuming
    is *exact* (bit for bit the run that never stopped) on the same device with the same
    precision; another precision is allowed on purpose (a run started on a GPU can finish
    on a laptop) and is recorded in the start row (``precision_changed_from``).
    The data must be the same: its fingerprint is stored and compared.
    """

    def __init__(self, config: TrainConfig, device: torch.device, dataset: Optional[Dataset], resume: bool):
        self.device = device
        self.out = Path(config.out) if config.out else None
        self.ckpt_path = self.out / "checkpoint.pt" if self.out else None
        ckpt = load_checkpoint(self.ckpt_path) if resume and self.ckpt_path and self.ckpt_path.is_file() else None
        if ckpt is not None:  # the run's identity comes from the checkpoint
            config = TrainConfig.from_dict({
                **ckpt["config"], **{k: getattr(config, k) for k in
                                     ("epochs", "device", "precision", "out", "progress", "data_dir")}}).validate()
        if dataset is None:
            config.data = canonical_source(config.data or default_source())  # record what was used
            dataset = load_dataset(config.data, data_dir=config.data_dir)
        self.config, self.ds = config, dataset
        self.fingerprint = fingerprint(dataset)
        self.precision = resolve_precision(config.precision, device)
        self.log_every = config.log_every or (1 if device.type == "cpu" else 10)

        torch.manual_seed(config.seed)
        self.model = get_model(config.model, dataset.n_classes).to(device)
        check_input_size(self.model, dataset.train_images, config.model)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=config.lr)
        self.loader = DeviceLoader(dataset.train_images, dataset.train_labels, config.batch_size, device=device,
                                   augment=config.augment, seed=config.seed)
        self.action_gen = torch.Generator(device=self.loader.generator.device).manual_seed(config.seed + 1)
        self.ema = WeightAverage(self.model, config.ema) if config.ema > 0 else None
        self.evaluated = self.ema.model if self.ema is not None else self.model
        self.st = {"epoch": 0, "step": 0, "images_seen": 0, "elapsed": 0.0,
                   "sums": torch.zeros(len(STAT_NAMES) + 1, dtype=torch.float64), "history": []}
        self.saved = None  # what the checkpoint on disk holds, for messages ("epoch 3")
        start = {}
        if ckpt is not None:
            self._restore(ckpt)
            old = ckpt.get("precision_used")
            if old is not None and old != self.precision:
                start["precision_changed_from"] = old
        self.metrics = _MetricsLog(self.out, keep_until=self.st["step"] if ckpt is not None else None)
        self.metrics.write({"event": "start", "resumed_from_step": self.st["step"] if ckpt else None,
                            "n_train": len(dataset.train_labels), "n_test": len(dataset.test_labels),
                            **asdict(config), "device": str(device), "precision_used": self.precision,
                            "data_fingerprint": self.fingerprint, **start})

    def _restore(self, ckpt: dict) -> None:
        if ckpt["n_classes"] != self.ds.n_classes:
            raise CheckpointError(f"{self.ckpt_path}: trained for {ckpt['n_classes']} classes, "
                                  f"the data has {self.ds.n_classes}")
        if ckpt.get("data_fingerprint") not in (None, self.fingerprint):
            raise CheckpointError(
                f"{self.ckpt_path}: the data ({self.ds.source}) is not the data this run was trained on "
                f"(fingerprint {self.fingerprint[:12]}, checkpoint {str(ckpt['data_fingerprint'])[:12]}); "
                f"resume with the same data or start a new --out")
        try:
            self.model.load_state_dict(ckpt["model"])
            if self.ema is not None:
                self.ema.model.load_state_dict(ckpt["ema"])
                self.ema.updates = int(ckpt["ema_updates"])
            self.opt.load_state_dict(ckpt["optimizer"])
            self.loader.load_state_dict(ckpt["loader"])
            self.action_gen.set_state(ckpt["action_rng"])
            torch.set_rng_state(ckpt["torch_rng"])
            self.st.update({k: ckpt[k] for k in ("epoch", "step", "images_seen", "elapsed", "sums", "history")})
        except Exception as exc:
            raise CheckpointError(f"{self.ckpt_path}: cannot resume from it "
                                  f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
        self.saved = self._describe()

    def _describe(self) -> str:
        st = self.st
        mid = self.loader.position
        return f"epoch {st['epoch']}" if not mid else f"step {st['step']}, in epoch {st['epoch'] + 1}"

    def kept(self) -> str:
        """What is left on disk, for a message."""
        if self.ckpt_path is None:
            return "nothing was saved (no output folder)"
        if self.saved is None:
            return "no checkpoint was written (this happened before the end of the first epoch)"
        return f"the last good checkpoint ({self.saved}) was kept"

    def lr_at(self, step: int) -> float:
        return warmup_lr(step, self.config.lr, self.config.warmup_steps)

    def train_step(self, x, y, pending: list) -> None:
        """One step: forward (autocast as ``precision`` says), objective, backward, Adam, average."""
        for group in self.opt.param_groups:
            group["lr"] = self.lr_at(self.st["step"])
        with _autocast(self.device, self.precision):
            outputs = self.model(x)
        loss, stats = objective_step(self.config.objective, outputs, y, generator=self.action_gen,
                                     **config_options(self.config))
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        if self.ema is not None:
            self.ema.update(self.model)
        self.st["step"] += 1
        self.st["images_seen"] += len(y)
        pending.append(stats)

    def emit(self, event: dict, callbacks) -> None:
        self.metrics.write(event)
        for cb in callbacks:
            cb({**event, "model": self.evaluated, "live_model": self.model})

    def flush(self, pending: list, t0: float, progress, callbacks, safe: bool = False) -> None:
        """Log the pending steps' statistics (one device sync); stop on a non-finite loss."""
        if not pending:
            return
        st = self.st
        stats = torch.stack(pending).double().cpu()
        pending.clear()
        if not safe and not torch.isfinite(stats[:, 0]).all():
            st["sums"] = torch.zeros_like(st["sums"])
            raise TrainingDiverged(
                f"loss became {stats[:, 0][~torch.isfinite(stats[:, 0])][0].item()} near step {st['step']} "
                f"(epoch {st['epoch'] + 1}); training stopped and {self.kept()}; try a smaller --lr")
        st["sums"][:-1] += torch.nan_to_num(stats, nan=0.0).sum(0)
        st["sums"][-1] += len(stats)
        row = _jsonable({"event": "step", "epoch": st["epoch"] + 1, "step": st["step"],
                         "images_seen": st["images_seen"], "time": round(st["elapsed"] + time.perf_counter() - t0, 3),
                         "lr": self.lr_at(max(st["step"] - 1, 0)), **dict(zip(STAT_NAMES, stats[-1].tolist()))})
        progress.update(len(stats), {**row, "loss": stats[-1, 0].item(), "train_acc": stats[-1, -1].item()})
        self.emit(row, callbacks)

    def end_epoch(self, t0: float, callbacks) -> None:
        """Evaluate, then log the epoch's row, save, and only then tell the callbacks
        (the row goes first: a crash before the save leaves a row that resume drops)."""
        st, config = self.st, self.config
        self.check_finite(st["epoch"] + 1)  # before its row is written: no row for a lost epoch
        st["epoch"] += 1
        test = evaluate(self.evaluated, self.ds.test_images, self.ds.test_labels, device=self.device)
        n = max(st["sums"][-1].item(), 1.0)
        means = {k: (None if k in _NOT_MEASURED[config.objective] else v)
                 for k, v in zip(STAT_NAMES, (st["sums"][:-1] / n).tolist())}
        st["sums"] = torch.zeros_like(st["sums"])
        st["elapsed"] += time.perf_counter() - t0
        event = _jsonable({"event": "epoch", "epoch": st["epoch"], "step": st["step"],
                           "images_seen": st["images_seen"], "time": round(st["elapsed"], 3),
                           **means, "test_acc": test["accuracy"], "test_expected_reward": test["expected_reward"]})
        st["history"].append(event)
        self.metrics.write(event)
        self.save(finished=st["epoch"] >= config.epochs)
        for cb in callbacks:
            cb({**event, "model": self.evaluated, "live_model": self.model})

    def check_finite(self, epoch: int) -> None:
        """Raise :class:`TrainingDiverged` if any weight, buffer (BatchNorm statistics) or
        optimiser moment of the live network or its average is NaN or infinite: the loss
        can stay finite while a running variance is not."""
        sd = [self.model.state_dict(), self.opt.state_dict()["state"]]
        if self.ema is not None:
            sd.append(self.ema.model.state_dict())
        bad = _nonfinite(*sd)
        if bad:
            raise TrainingDiverged(
                f"{len(bad)} weights or statistics became non-finite (e.g. {bad[0]}) by step "
                f"{self.st['step']} (epoch {epoch}); training stopped and {self.kept()}; try a smaller --lr")

    def save(self, finished: bool = False) -> None:
        """Write the checkpoint atomically, after checking every weight, buffer and optimiser
        moment is finite (else :class:`TrainingDiverged`, and the old checkpoint stays)."""
        if self.ckpt_path is None:
            return
        st, ema = self.st, self.ema
        state = {"model": self.model.state_dict(), "optimizer": self.opt.state_dict(),
                 "ema": ema.model.state_dict() if ema is not None else None}
        self.check_finite(st["epoch"] if not self.loader.position else st["epoch"] + 1)
        try:
            _save_atomic({
                "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "config": asdict(self.config),
                "n_classes": self.ds.n_classes, "label_names": list(self.ds.label_names),
                "data_source": self.ds.source, "data_fingerprint": self.fingerprint,
                "precision_used": self.precision, **state, "loader": self.loader.state_dict(),
                "ema_updates": ema.updates if ema is not None else 0,
                "action_rng": self.action_gen.get_state(), "torch_rng": torch.get_rng_state(),
                "epoch": st["epoch"], "step": st["step"], "images_seen": st["images_seen"],
                "elapsed": st["elapsed"], "sums": st["sums"], "history": st["history"], "finished": finished,
            }, self.ckpt_path)
        except OSError as exc:
            raise OutputError(f"could not write {self.ckpt_path} ({exc.strerror or exc}); {self.kept()}") from None
        self.saved = self._describe()


def train(config: TrainConfig, callbacks: Iterable[Callable[[dict], None]] = (), *,
          dataset: Optional[Dataset] = None, resume: bool = False) -> dict:
    """Train as ``config`` says; return the final summary (also the last metrics line).

    ``callbacks`` are called with one dict per event: ``{"event": "step", ...STAT_NAMES}``
    every ``log_every`` steps and ``{"event": "epoch", "train_acc", "test_acc", ...}`` after
    each epoch (after its checkpoint is saved); the dict also carries ``"model"`` (the
    network that is evaluated: the weight average, see :class:`WeightAverage`) and
    ``"live_model"`` (the one being trained) for plotting predictions.  A callback may raise
    :class:`StopTraining` (or ``KeyboardInterrupt``) to stop; the run is then saved as after
    Ctrl-C.  ``resume=True`` continues from ``config.out/checkpoint.pt`` (up to
    ``config.epochs`` epochs in total; see :class:`_Run` for what may change).

    The output folder is checked and locked first (:class:`ConfigError` if it cannot be
    written or another run holds it).  Raises :class:`TrainingDiverged` when the loss or a
    weight stops being finite, :class:`OutputError` when a write fails; either way the
    previous checkpoint is left in place.  ``epochs=0`` saves the untrained network.
    """
    config = dataclasses.replace(config).validate()  # a copy: the caller's stays as it was
    device = pick_device(config.device)
    with _OutputDir(Path(config.out) if config.out else None):
        run = _Run(config, device, dataset, resume)
        stopped = _loop(run, callbacks)
        if stopped is None and run.saved is None:
            run.save(finished=True)  # nothing to train (epochs 0): the checkpoint still exists
        return _finish(run, stopped, callbacks)


def _loop(run: _Run, callbacks) -> Optional[str]:
    """The training loop; returns ``None`` when finished, else why it stopped."""
    st, config = run.st, run.config
    steps_per_epoch = len(run.loader)
    total = config.epochs * steps_per_epoch
    progress = _Progress(total, min(st["step"], total), config.progress)
    stopped, pending, t0, consistent = None, [], time.perf_counter(), True
    run.model.train()
    with _Interrupt() as interrupt:
        try:
            while st["epoch"] < config.epochs and stopped is None:
                for x, y in run.loader:
                    consistent = False  # a hard interrupt from here on leaves a half-made step
                    run.train_step(x, y, pending)
                    consistent = True
                    if len(pending) >= run.log_every or run.loader.position == steps_per_epoch:
                        run.flush(pending, t0, progress, callbacks)
                    if interrupt.requested:
                        stopped = interrupt.requested
                        break
                if stopped is None:
                    run.flush(pending, t0, progress, callbacks)
                    run.end_epoch(t0, callbacks)
                    t0 = time.perf_counter()
        except (KeyboardInterrupt, StopTraining) as exc:
            # From a callback (at a batch boundary) the state is consistent and is saved; a
            # second Ctrl-C inside a step is not: the last checkpoint is left as it was.
            if not consistent:
                raise
            stopped = "interrupted" if isinstance(exc, KeyboardInterrupt) else "stopped"
        finally:
            progress.close()
        if stopped is not None:
            run.flush(pending, t0, progress, callbacks, safe=True)
            st["elapsed"] += time.perf_counter() - t0
            run.save(finished=False)
    return stopped


def _finish(run: _Run, stopped: Optional[str], callbacks) -> dict:
    st, config, ds = run.st, run.config, run.ds
    last = st["history"][-1] if st["history"] else {}
    summary = _jsonable({
        "event": "end", "status": stopped or "finished", "objective": config.objective, "model": config.model,
        "data": ds.source, "epochs": st["epoch"], "step": st["step"], "images_seen": st["images_seen"],
        "train_acc": last.get("train_acc"), "test_acc": last.get("test_acc"),
        "n_test": len(ds.test_labels), "wall_time": round(st["elapsed"], 3), "device": str(run.device),
        "precision": run.precision, "checkpoint": str(run.ckpt_path) if run.saved else None,
    })
    run.metrics.write(summary)
    for cb in callbacks:
        cb({**summary, "model": run.evaluated, "live_model": run.model})
    return summary


class _MetricsLog:
    """Appends JSON lines to ``out/metrics.jsonl`` (flushed at once; nothing when ``out`` is None).

    On resume, lines written after the checkpoint's step (a run that died later) are dropped.
    A failed write raises :class:`OutputError`.
    """

    def __init__(self, out: Optional[Path], keep_until: Optional[int]):
        self.path = None
        if out is None:
            return
        self.path = out / "metrics.jsonl"
        try:
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
        except OSError as exc:
            raise OutputError(f"could not write {self.path} ({exc.strerror or exc})") from None

    def write(self, row: dict) -> None:
        if self.path is not None:
            try:
                with open(self.path, "a") as f:
                    f.write(json.dumps(row, allow_nan=False) + "\n")
            except OSError as exc:
                raise OutputError(f"could not write {self.path} ({exc.strerror or exc})") from None
