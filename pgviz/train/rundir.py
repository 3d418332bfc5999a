"""The run folder: its lock, its metrics log and its checkpoint, written atomically.

A run's folder (``--out``) holds ``checkpoint.pt`` (everything a run needs to continue
*exactly*: model, optimiser, weight average, every random stream, the data order) and
``metrics.jsonl`` (one JSON line per logged step, per epoch, at the start and at the end).
:class:`OutputDir` locks it for one run at a time; :func:`save_atomic` never leaves half
a file; :func:`load_checkpoint` reads one back (safely: tensors and plain data only).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import numbers
import os
import sys
import uuid
import warnings
from pathlib import Path
from typing import Optional

import torch

from ..models import get_model
from .config import TrainConfig
from .errors import CheckpointError, ConfigError, OutputError

__all__ = ["CHECKPOINT_FORMAT", "CHECKPOINT_VERSION", "MetricsLog", "OutputDir", "checkpoint_digest",
           "jsonable", "load_checkpoint", "model_from_checkpoint", "nonfinite", "save_atomic", "write_reason"]

#: What a checkpoint says it is (``format``, ``version``); others are refused in one line.
CHECKPOINT_FORMAT = "pgviz-checkpoint"
CHECKPOINT_VERSION = 1


def _whole(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _real(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def jsonable(d: dict) -> dict:
    """``d`` with every non-finite float replaced by ``None`` (strict JSON has no NaN)."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


def write_reason(exc: BaseException) -> str:
    """Why a write failed, in a few words: the system's reason (``No space left on device``)
    or the first line of torch's message (a full disk inside ``torch.save`` is a
    ``RuntimeError`` such as ``PytorchStreamWriter failed writing file ...``)."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc).strip().splitlines()
    return text[-1].strip()[:200] if text else type(exc).__name__


def checkpoint_digest(ckpt: dict) -> str:
    """SHA-256 of a checkpoint's contents (its ``checksum`` entry left out): every tensor's
    dtype, shape and bytes and every plain value, walked in a fixed order (keys sorted as
    text).  Written by :meth:`~pgviz.train.run.Run.save`, compared by :func:`load_checkpoint`."""
    h = hashlib.sha256()

    def walk(v):
        if isinstance(v, torch.Tensor):
            t = v.detach().cpu().contiguous()
            h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        elif isinstance(v, dict):
            h.update(b"{")
            for k in sorted(v, key=str):
                if v is ckpt and k == "checksum":
                    continue
                h.update(f"K{k!r}".encode())
                walk(v[k])
            h.update(b"}")
        elif isinstance(v, (list, tuple)):
            h.update(b"[")
            for x in v:
                walk(x)
            h.update(b"]")
        else:
            h.update(f"V{type(v).__name__}:{v!r}".encode())
    walk(ckpt)
    return h.hexdigest()


def save_atomic(obj, path: Path) -> None:
    """Write to a temporary name unique to this process and call, then rename: a reader
    (or a crash) sees the old file or the new one, never half of one.  Temporary files of
    a process killed mid-write are removed by the next run that locks the folder
    (:class:`OutputDir`)."""
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
    version = ckpt.get("version")
    if not _whole(version) or version != CHECKPOINT_VERSION:
        raise CheckpointError(f"{path}: checkpoint version {version!r} is not supported "
                              f"(this pgviz reads version {CHECKPOINT_VERSION}, a whole number)")
    _check_checksum(ckpt, path)
    if not isinstance(ckpt.get("config"), dict):
        raise CheckpointError(f"{path}: the checkpoint has no config")
    missing = _missing_settings(ckpt["config"])
    if missing:
        raise CheckpointError(f"{path}: the checkpoint's config lacks {', '.join(missing)}; "
                              f"it cannot be evaluated or resumed safely")
    try:
        TrainConfig.from_dict(ckpt["config"]).validate()
    except (ConfigError, TypeError) as exc:
        raise CheckpointError(f"{path}: the checkpoint's config is invalid: {exc}") from None
    n = ckpt.get("n_classes")
    if not _whole(n) or n < 2 or not isinstance(ckpt.get("model"), dict) \
            or not all(_whole(ckpt.get(k)) for k in ("epoch", "step")):
        raise CheckpointError(f"{path}: the checkpoint lacks a class count, weights or its step")
    problem = _run_state_problem(ckpt)
    if problem:
        raise CheckpointError(f"{path}: the checkpoint is damaged: {problem}")
    return ckpt


def _check_checksum(ckpt: dict, path: Path) -> None:
    """A checkpoint's ``checksum`` must match its contents; one written before checksums
    existed (no ``checksum`` entry) is read unchecked."""
    stored = ckpt.get("checksum")
    if stored is None:
        return
    if not isinstance(stored, str) or stored != checkpoint_digest(ckpt):
        raise CheckpointError(f"{path}: the checkpoint's contents do not match its checksum "
                              f"(the file was changed or damaged); use another checkpoint")


#: Settings every checkpoint's config holds (a config without one would silently take
#: the default: a value run read back as a pg run).
_REQUIRED_SETTINGS = ("objective", "data", "epochs", "batch_size", "lr", "entropy_weight", "seed", "model",
                      "augment", "warmup_steps", "ema")


def _missing_settings(config: dict) -> list:
    return [k for k in _REQUIRED_SETTINGS if k not in config]


def _run_state_problem(ckpt: dict) -> Optional[str]:
    """What is wrong with the bookkeeping a resume restores (``elapsed``, ``history``,
    ``sums``, the loader's permutation) or with the weight average and Adam's moments
    (non-finite), or ``None``.  Entries a checkpoint lacks are left to the resume."""
    from .. import objectives

    if "elapsed" in ckpt and not (_real(ckpt["elapsed"]) and math.isfinite(ckpt["elapsed"])
                                  and ckpt["elapsed"] >= 0):
        return f"elapsed time {ckpt['elapsed']!r} is not a finite number >= 0"
    if "history" in ckpt and not (isinstance(ckpt["history"], list)
                                  and all(isinstance(r, dict) for r in ckpt["history"])):
        return "its history is not a list of epoch rows"
    if "sums" in ckpt:
        n = len(objectives.stat_names(ckpt["config"]["objective"])) + 1
        sums = ckpt["sums"]
        if not (isinstance(sums, torch.Tensor) and sums.dtype == torch.float64 and tuple(sums.shape) == (n,)):
            return f"its running sums are not {n} float64 numbers"
        if not torch.isfinite(sums).all():
            return "its running sums are not finite"
    loader = ckpt.get("loader")
    if isinstance(loader, dict) and loader.get("perm") is not None:
        perm = loader["perm"]
        if not (isinstance(perm, torch.Tensor) and perm.dim() == 1 and perm.dtype == torch.int64
                and torch.equal(perm.sort().values, torch.arange(len(perm)))):
            return "its data order is not a permutation of the training images"
        if not (_whole(loader.get("pos")) and 0 <= loader["pos"] <= len(perm)):
            return f"its position in the data order ({loader.get('pos')!r}) is out of range"
    bad = nonfinite(*(x for x in (ckpt.get("ema"), (ckpt.get("optimizer") or {}).get("state"))
                      if isinstance(x, dict)))
    if bad:
        return f"{len(bad)} tensors of its weight average or Adam moments are not finite (e.g. {bad[0]})"
    return None


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
        self.out, self._fd, self._created = (Path(out) if out is not None else None), None, False

    def __enter__(self):
        out = self.out
        if out is None:
            return self
        if out.exists() and not out.is_dir():
            raise ConfigError(f"output folder {out} exists and is not a folder")
        if out.is_symlink() and not out.exists():
            raise ConfigError(f"output folder {out} is a symbolic link to {os.readlink(out)}, which does not "
                              f"exist; create it or choose another --out")
        self._created = not out.exists()
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
        remove_stale_temporaries(out)
        return self

    def __exit__(self, *exc):
        if self._fd is not None:
            os.close(self._fd)  # closing releases the lock
            self._fd = None
            if exc[0] is not None and self._created:
                self._remove_if_empty()

    def _remove_if_empty(self) -> None:
        """A run refused before it wrote anything leaves no folder it created (only the lock in it)."""
        with contextlib.suppress(OSError):
            if [p.name for p in self.out.iterdir()] == [self.LOCK]:
                (self.out / self.LOCK).unlink()
                self.out.rmdir()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's process: leave its files alone
    return True


def remove_stale_temporaries(out: Path) -> list:
    """Remove the temporary files (``.NAME.<pid>.<hex>.tmp``, :func:`save_atomic`) that a
    process killed mid-write left in ``out``, those whose process is gone; returns their
    names.  Called by :class:`OutputDir` once it holds the folder's lock."""
    import re

    removed = []
    for p in out.glob(".*.tmp"):
        m = re.fullmatch(r"\..+\.(\d+)\.[0-9a-f]{12}\.tmp", p.name)
        if m and int(m.group(1)) != os.getpid() and not _pid_alive(int(m.group(1))) and p.is_file():
            with contextlib.suppress(OSError):
                p.unlink()
                removed.append(p.name)
    return removed


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


def _rows_to_keep(path: Path, keep_until: int) -> list:
    """The lines of ``path`` a run resumed at step ``keep_until`` keeps: every start row and
    every row of the segments up to that step (earlier resumes included); rows written after
    it (by a run that died later) are dropped.  Lines that are not JSON objects (a damaged
    file) are moved, not lost: appended to ``metrics.jsonl.corrupt`` beside it, with one
    line on stderr."""
    kept, corrupt = [], []
    for line in path.read_bytes().decode("utf-8", "replace").splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            row = None
        if not isinstance(row, dict):
            corrupt.append(line)
            continue
        step = row.get("resumed_from_step") if row.get("event") == "start" else row.get("step")
        if not _whole(step) or step <= keep_until:
            kept.append(line)
    if corrupt:
        aside = path.with_name(path.name + ".corrupt")
        with open(aside, "a") as f:
            f.write("".join(c + "\n" for c in corrupt))
        print(f"pgviz: warning: {len(corrupt)} damaged lines of {path} were moved to {aside}", file=sys.stderr)
    return kept


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
                kept = _rows_to_keep(self.path, keep_until)
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
