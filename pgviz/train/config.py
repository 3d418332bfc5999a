"""What a run depends on: :class:`TrainConfig`, its validation, and the rules for resuming.

Every field is saved in the checkpoint; the command line's ``train`` arguments are made
from these fields (:mod:`pgviz.cli`).
"""
from __future__ import annotations

import math
import numbers
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Optional

from .. import objectives
from ..models import MODELS
from .errors import ConfigError
from .runtime import check_device_name, check_precision_name

__all__ = ["ConfigError", "TrainConfig"]


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
    options: dict = field(default_factory=dict)  # the objective's own settings (pgviz.objectives)

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
        for name in ("epochs", "batch_size", "seed", "warmup_steps", "log_every"):
            v = getattr(self, name)
            if not _whole(v):
                bad(f"{name.replace('_', ' ')} must be a whole number, got {v!r}")
            setattr(self, name, int(v))
        for name in ("lr", "entropy_weight", "ema"):
            v = getattr(self, name)
            if not _real(v):
                label = {"lr": "learning rate (lr)", "ema": "ema decay"}.get(name, name.replace("_", " "))
                bad(f"{label} must be a number, got {v!r}")
            setattr(self, name, float(v))
        for name in ("augment", "progress"):
            if not isinstance(getattr(self, name), bool):
                bad(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.objective not in objectives.OBJECTIVES:
            bad(f"unknown objective {self.objective!r}; choose one of: {', '.join(objectives.OBJECTIVES)}")
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
        check_device_name(self.device)
        if self.warmup_steps < 0 or self.log_every < 0:
            bad("warmup_steps and log_every must be >= 0")
        check_precision_name(self.precision)
        if not 0 <= self.ema < 1:
            bad(f"ema decay must lie in [0, 1), got {self.ema}")
        if not isinstance(self.options, Mapping):
            bad(f"options must be a dict, got {self.options!r}")
        try:
            self.options = objectives.resolve_options(self.objective, self.options)
        except ValueError as exc:
            bad(str(exc))
        return self

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """The config a saved dict describes (a checkpoint's or a metrics start line's);
        keys that are not settings are ignored.  A dict written before the objectives had
        their own ``options`` (with them at its top level) reads the same
        (:func:`pgviz.objectives.legacy_options`)."""
        if not isinstance(d, dict):
            raise ConfigError(f"a config must be a dict, got {type(d).__name__}")
        if not isinstance(d.get("options", {}), Mapping):
            raise ConfigError(f"options must be a dict, got {d['options']!r}")
        names = {f.name for f in fields(cls)}
        return cls(**{**{k: v for k, v in d.items() if k in names}, "options": objectives.legacy_options(d)})
