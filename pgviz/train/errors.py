"""What can go wrong in a run, one exception each (the command line maps them to exit codes:
:class:`ConfigError`, :class:`CheckpointError` -> 2, :class:`TrainingDiverged` -> 1,
:class:`OutputError` -> 3).  No torch here: the command line imports it before torch."""
from __future__ import annotations

__all__ = ["CheckpointError", "ConfigError", "OutputError", "StopTraining", "TrainingDiverged"]


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
