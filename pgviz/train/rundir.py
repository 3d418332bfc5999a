"""The run folder: its lock, its metrics log and its checkpoint, written atomically.

A run's folder (``--out``) holds ``checkpoint.pt`` (everything a run needs to continue
*exactly*: model, optimiser, weight average, every random stream, the data order) and
``metrics.jsonl`` (one JSON line per logged step, per epoch, at the start and at the end).
:class:`OutputDir` locks it for one run at a time; :func:`save_atomic` never leaves half
a file; :func:`load_checkpoint` reads one back (safely: tensors and plain data only).
"""
from __future__ import annotations

import contextlib
import json
import math
import numbers
import os
import uuid
import warnings
from pathlib import Path
from typing import Optional

import torch

from ..models import get_model
from .config import TrainConfig
from .errors import CheckpointError, ConfigError, OutputError

__all__ = ["CHECKPOINT_FORMAT", "CHECKPOINT_VERSION", "MetricsLog", "OutputDir", "jsonable",
           "load_checkpoint", "model_from_checkpoint", "nonfinite", "save_atomic"]

#: What a checkpoint says it is (``format``, ``version``); others are refused in one line.
CHECKPOINT_FORMAT = "pgviz-checkpoint"
CHECKPOINT_VERSION = 1


def _whole(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def jsonable(d: dict) -> dict:
    """``d`` with every non-finite float replaced by ``None`` (strict JSON has no NaN)."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


def save_atomic(obj, path: Path) -> None:
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


def nonfinite(*state_dicts) -> list:
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
        model = get_model(ckpt["config"]["model"], ckpt["n_classes"],
                          standardize=ckpt["config"].get("standardize", True))
        model.load_state_dict(ckpt["ema"] if ckpt.get("ema") is not None else ckpt["model"])
    except Exception as exc:
        raise CheckpointError(f"checkpoint does not hold a usable model ({type(exc).__name__})") from None
    bad = nonfinite(model.state_dict())
    if bad:
        raise CheckpointError(f"checkpoint holds non-finite weights ({len(bad)} tensors, e.g. {bad[0]})")
    return model.to(device).eval()


class OutputDir:
    """The output folder, checked and locked before anything else happens.

    Entering creates ``out``, proves it writable with a probe file and takes an exclusive
    lock on ``out/.pgviz.lock`` (released by the operating system when the process ends,
    so a killed run leaves no stale lock).  A second run on a busy folder, or a folder that
    cannot be written, is a :class:`ConfigError` (one line, before any data is loaded).
    ``out=None`` (keep nothing on disk) does nothing.
    """

    LOCK = ".pgviz.lock"

    def __init__(self, out: Optional[Path]):
        self.out, self._fd = (Path(out) if out is not None else None), None

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


class MetricsLog:
    """Appends JSON lines to ``out/metrics.jsonl`` (flushed at once; nothing when ``out`` is None).

    On resume (``keep_until``: the checkpoint's step), lines written after the checkpoint's
    step (a run that died later) are dropped; a fresh run starts a fresh file.  A failed
    write raises :class:`OutputError`.
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
        """Append ``row`` as one strict-JSON line."""
        if self.path is not None:
            try:
                with open(self.path, "a") as f:
                    f.write(json.dumps(row, allow_nan=False) + "\n")
            except OSError as exc:
                raise OutputError(f"could not write {self.path} ({exc.strerror or exc})") from None
