"""Training a classifier with one of the objectives (:mod:`pgviz.objectives`), and everything
that makes a run trustworthy.

Where things live:

===================  =====================================================================
:mod:`.config`       :class:`TrainConfig`: every setting of a run, checked; the command
                     line's ``train`` arguments are made from it
:mod:`.loop`         :func:`train`, and :func:`train_step`: forward, loss, backward, step,
                     average, on one screen (the bench times the same function)
:mod:`.optim`        the learning-rate warm-up and the weight average that is evaluated
:mod:`.run`          one run's state: set up or restored, statistics, checks, checkpoints
:mod:`.rundir`       the run folder: its lock, ``metrics.jsonl``, the atomic checkpoint
:mod:`.runtime`      device, precision (bfloat16 autocast), the progress display
:mod:`.signals`      Ctrl-C and SIGTERM (stop at the next batch boundary and save)
:mod:`.evaluation`   what a network predicts and its greedy accuracy
:mod:`.bench`        images per second of a training step, per objective and precision
:mod:`.errors`       the exceptions, one per way a run can fail
===================  =====================================================================

Every name in ``__all__`` can be imported from here (``from pgviz.train import TrainConfig,
train``); the modules load on first use, so that the command line can handle Ctrl-C and
SIGTERM before torch is imported.
"""
from __future__ import annotations

import importlib

_HOME = {
    "TrainConfig": "config",
    "train": "loop",
    "WeightAverage": "optim", "warmup_lr": "optim",
    "CHECKPOINT_FORMAT": "rundir", "CHECKPOINT_VERSION": "rundir", "OutputDir": "rundir",
    "load_checkpoint": "rundir", "model_from_checkpoint": "rundir",
    "DEVICES": "runtime", "PRECISIONS": "runtime", "autocast": "runtime", "cpu_has_native_bf16": "runtime",
    "eval_precision": "runtime", "pick_device": "runtime", "resolve_precision": "runtime",
    "check_input_size": "evaluation", "evaluate": "evaluation", "predict": "evaluation",
    "CheckpointError": "errors", "ConfigError": "errors", "OutputError": "errors",
    "StopTraining": "errors", "TrainingDiverged": "errors",
}

__all__ = sorted(_HOME)


def __getattr__(name: str):
    if name in _HOME:
        value = getattr(importlib.import_module(f".{_HOME[name]}", __name__), name)
        globals()[name] = value  # once found, an ordinary attribute
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
