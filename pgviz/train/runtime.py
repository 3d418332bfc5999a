"""Where and how fast a run computes: the device, the precision, and the progress display.

``PRECISIONS`` and ``DEVICES`` are the one list of each choice (the config, the command
line and the benchmark read them here); :func:`resolve_precision` is the one check of a
precision's name and the one rule for what ``auto`` means in training, and
:func:`eval_precision` the one rule for evaluation.
"""
from __future__ import annotations

import contextlib
import os
import sys
import time

import torch

from .errors import ConfigError

__all__ = ["DEVICES", "PRECISIONS", "Progress", "autocast", "check_device_name", "check_precision_name", "cpu_has_native_bf16",
           "cuda_has_native_bf16", "device_settings", "eval_precision", "pick_device", "resolve_precision"]

#: Device names a run may ask for (``cuda:N`` is accepted too).
DEVICES = ("auto", "cpu", "cuda", "mps")
#: Precision names: ``auto`` (see :func:`resolve_precision`), float32, or bfloat16 autocast.
PRECISIONS = ("auto", "fp32", "bf16")


def check_device_name(name: str) -> None:
    """Raise :class:`ConfigError` unless ``name`` is one of :data:`DEVICES` or ``cuda:N``."""
    if name not in DEVICES and not str(name).startswith("cuda:"):
        raise ConfigError(f"unknown device {name!r}; choose auto, cpu, cuda or mps")


def check_precision_name(precision: str) -> None:
    """Raise :class:`ConfigError` unless ``precision`` is one of :data:`PRECISIONS` (the one check)."""
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}; choose one of: {', '.join(PRECISIONS)}")


def _mps_available() -> bool:
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def pick_device(name: str = "auto") -> torch.device:
    """``auto``: cuda if available, else mps, else cpu.  An unavailable explicit choice is an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but no CUDA GPU is available; use --device auto or cpu")
    if name == "mps" and not _mps_available():
        raise ConfigError("device 'mps' requested but MPS is not available; use --device auto or cpu")
    return torch.device(name)


def cpu_has_native_bf16() -> bool:
    """True where oneDNN runs bfloat16 natively on this CPU (AVX-512 BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:  # older torch or a build without oneDNN
        return False


def cuda_has_native_bf16() -> bool:
    """True where the CUDA GPU computes bfloat16 in hardware (Ampere and later).  Plain
    ``is_bf16_supported()`` also counts emulation (slow); older torch lacks the keyword."""
    try:
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    except TypeError:
        return bool(torch.cuda.is_bf16_supported())


def resolve_precision(precision: str, device: torch.device) -> str:
    """The precision training runs in: ``auto`` -> ``bf16`` (autocast) on a CUDA GPU with
    native bfloat16 and on a CPU with native bfloat16 (about 1.6x the float32 rate of the
    trainer's whole step measured here, ``pgviz bench``; README, *Speed*), else ``fp32``; ``bf16`` asked for on a GPU without native
    bfloat16 runs (and is recorded) as ``fp32``.  An unknown name is a :class:`ConfigError`
    (the only place that checks it).  Evaluation resolves ``auto`` differently:
    :func:`eval_precision`."""
    check_precision_name(precision)
    device = torch.device(device)
    if device.type == "cuda" and precision != "fp32":
        return "bf16" if cuda_has_native_bf16() else "fp32"
    if precision != "auto":
        return precision
    if device.type == "cpu" and cpu_has_native_bf16():
        return "bf16"
    return "fp32"


@contextlib.contextmanager
def device_settings(device: torch.device, precision: str):
    """The backend flags a run, an evaluation or a bench column needs on ``device``, set on
    entry and put back on exit (no global leak).  On CUDA: deterministic cuDNN and
    ``torch.use_deterministic_algorithms(True, warn_only=True)`` with
    ``CUBLAS_WORKSPACE_CONFIG`` (bit-for-bit repeats on the same GPU model with the same
    torch); in ``fp32`` also TF32 off for convolutions and matrix products (else "fp32"
    is TF32, a 10-bit mantissa).  Elsewhere nothing changes."""
    if torch.device(device).type != "cuda":
        yield
        return
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    saved = (cudnn.deterministic, cudnn.benchmark, cudnn.allow_tf32, matmul.allow_tf32,
             torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    cudnn.deterministic, cudnn.benchmark = True, False
    if precision == "fp32":
        cudnn.allow_tf32 = matmul.allow_tf32 = False
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        cudnn.deterministic, cudnn.benchmark, cudnn.allow_tf32, matmul.allow_tf32 = saved[:4]
        torch.use_deterministic_algorithms(saved[4], warn_only=saved[5])


def eval_precision(precision: str) -> str:
    """The precision an evaluation runs in: ``bf16`` only when asked for, else ``fp32`` on
    every machine (an accuracy should be a property of the weights, not of the machine that
    measures it).  An unknown name is a :class:`ConfigError`."""
    check_precision_name(precision)
    return "bf16" if precision == "bf16" else "fp32"


def autocast(device: torch.device, precision: str = "auto"):
    """Mixed precision (autocast) as ``precision`` resolves on ``device``: bfloat16 on a
    CUDA GPU that has it natively and on the CPU when asked for; nothing otherwise (no
    float16: it would need a gradient scaler)."""
    if resolve_precision(precision, device) != "bf16" or device.type not in ("cuda", "cpu"):
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


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


class Progress:
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
        """``n`` more steps done; ``row`` holds the latest ``epoch``, ``loss`` and ``train_acc``."""
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
        """Remove the bar (the plain lines stay)."""
        if self.bar is not None:
            self.bar.close()
