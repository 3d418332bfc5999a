"""The training loop: forward, loss, backward, step, average, for every batch.

:func:`train` is the whole of it.  The learning is :func:`train_step`, the five lines
marked there (``pgviz bench`` times that same function); everything around it is
bookkeeping that lives in :class:`~pgviz.train.run.Run` (metrics, checkpoints, resume) and :mod:`pgviz.train.signals` (Ctrl-C and SIGTERM stop at
the next batch boundary and save).  For a notebook::

    from pgviz.train import TrainConfig, train
    def show(event):              # called after logged steps and after every epoch
        if event["event"] == "epoch":
            print(event["epoch"], event["test_acc"])
    summary = train(TrainConfig(objective="pg", data="synthetic", epochs=3), callbacks=[show])
"""
from __future__ import annotations

import dataclasses
import time
from typing import Callable, Iterable, Optional

import torch

from .. import objectives
from ..data import Dataset
from .config import TrainConfig
from .errors import StopTraining
from .rundir import OutputDir
from .run import Run
from .runtime import Progress, autocast, device_settings, pick_device
from .signals import StopRequest, Terminated

__all__ = ["train", "train_step"]


def train_step(model, opt, average, x, y, *, objective: str, lr: float, device: torch.device,
               precision: str, generator: Optional[torch.Generator], options: dict,
               prepared: Optional[dict] = None) -> dict:
    """One learning step on the batch ``(x, y)``: set the learning rate, forward under
    autocast, the objective's loss (:func:`pgviz.objectives.objective_step`), backward, Adam,
    and the weight average (``average``; ``None``: off).  Returns the step's statistics
    (0-d tensors on the device: nothing is read back).  The trainer's loop and
    :func:`pgviz.train.bench.bench` both call it, so the bench times the step training takes."""
    for group in opt.param_groups:
        group["lr"] = lr
    with autocast(device, precision):
        outputs = model(x)                                                      # forward
    loss, stats = objectives.objective_step(objective, outputs, y, generator=generator, inputs=x,
                                            prepared=prepared, check_range=False,
                                            **options)  # loss (labels checked at load: no sync)
    opt.zero_grad(set_to_none=True)
    loss.backward()                                                             # backward
    opt.step()                                                                  # step
    if average is not None:
        average.update(model)                                                   # average
    return stats


def train(config: TrainConfig, callbacks: Iterable[Callable[[dict], None]] = (), *,
          dataset: Optional[Dataset] = None, resume: bool = False) -> dict:
    """Train as ``config`` says; return the final summary (also the last metrics line).

    ``callbacks`` are called with one dict per event: ``{"event": "step", ...statistics}``
    every ``log_every`` steps and ``{"event": "epoch", "train_acc", "test_acc", ...}`` after
    each epoch (after its checkpoint is saved); the dict also carries ``"model"`` (the
    network that is evaluated: the weight average, see :class:`~pgviz.train.optim.WeightAverage`)
    and ``"live_model"`` (the one being trained) for plotting predictions.  A callback may
    raise :class:`StopTraining` (or ``KeyboardInterrupt``) to stop; the run is then saved as
    after Ctrl-C.  ``resume=True`` continues from ``config.out/checkpoint.pt`` (up to
    ``config.epochs`` epochs in total; see :class:`~pgviz.train.run.Run` for what may change).

    The output folder is checked and locked first (:class:`ConfigError` if it cannot be
    written or another run holds it).  Raises :class:`TrainingDiverged` when the loss or a
    weight stops being finite, :class:`OutputError` when a write fails; either way the
    previous checkpoint is left in place.  ``epochs=0`` saves the untrained network.
    """
    config = dataclasses.replace(config).validate()  # a copy: the caller's stays as it was
    device = pick_device(config.device)
    with OutputDir(config.out):
        run = Run(config, device, dataset, resume)
        with device_settings(device, run.precision):
            stopped = _loop(run, callbacks)
        if stopped is None and run.saved is None:
            run.save(finished=True)  # nothing to train (epochs 0): the checkpoint still exists
        return run.finish(stopped, callbacks)


def _loop(run: Run, callbacks) -> Optional[str]:
    """The training loop; returns ``None`` when finished, else why it stopped."""
    config, model, opt, average = run.config, run.model, run.opt, run.average
    options = {"entropy_weight": config.entropy_weight, **config.options}
    steps_per_epoch = len(run.loader)
    total = config.epochs * steps_per_epoch
    progress = Progress(total, min(run.st["step"], total), config.progress)
    stopped, t0, consistent = None, time.perf_counter(), True
    model.train()
    with StopRequest() as stop:
        try:
            while run.st["epoch"] < config.epochs and stopped is None:
                for x, y in run.loader:
                    consistent = False  # a hard interrupt from here on leaves a half-made step
                    stats = train_step(model, opt, average, x, y, objective=config.objective,
                                       lr=run.lr_at(run.st["step"]), device=run.device, precision=run.precision,
                                       generator=run.action_gen, options=options, prepared=run.prepared)
                    run.stepped(len(y), stats)
                    consistent = True
                    if run.log_due(steps_per_epoch):
                        run.flush(t0, progress, callbacks)
                    if stop.requested:
                        stopped = stop.requested
                        break
                if stopped is None:
                    run.flush(t0, progress, callbacks)
                    run.end_epoch(t0, callbacks)
                    t0 = time.perf_counter()
        except (KeyboardInterrupt, StopTraining) as exc:
            # From a callback (at a batch boundary) the state is consistent and is saved; a
            # second Ctrl-C inside a step is not: the last checkpoint is left as it was.
            if not consistent:
                raise
            stopped = ("terminated" if isinstance(exc, Terminated) else
                       "interrupted" if isinstance(exc, KeyboardInterrupt) else "stopped")
        finally:
            progress.close()
        if stopped is not None:
            run.flush(t0, progress, callbacks, safe=True)
            run.st["elapsed"] += time.perf_counter() - t0
            run.save(finished=False)
    # a signal that came after the last batch (while the last epoch was evaluated or saved)
    # is still reported: the finished run's checkpoint is on disk, the exit status says 130/143
    return stopped or stop.requested
