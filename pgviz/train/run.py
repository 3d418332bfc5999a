"""One run's state and its bookkeeping: set up fresh or restored from a checkpoint, the
statistics logged per step and per epoch, the checks that nothing became non-finite, the
checkpoint written after every epoch, and the summary at the end.

The loop that uses it is :func:`pgviz.train.loop.train`.
"""
from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Optional

import torch

from ..data import Dataset, DeviceLoader, canonical_source, default_source, fingerprint, load_dataset
from ..models import get_model
from .. import objectives
from .config import TrainConfig
from .errors import CheckpointError, OutputError, TrainingDiverged
from .evaluation import check_input_size, evaluate
from .optim import WeightAverage, adam, warmup_lr
from .rundir import (CHECKPOINT_FORMAT, CHECKPOINT_VERSION, MetricsLog, checkpoint_digest, jsonable,
                     load_checkpoint, nonfinite, save_atomic, write_reason)
from .portable import cuda_rng_state, portable_seed, recorded_device, restore_cuda_rng, restore_generator
from .runtime import resolve_precision

__all__ = ["Run"]


class Run:
    """One run's state: built fresh, or restored from ``out/checkpoint.pt`` (``resume``).

    Resuming keeps the run's identity (objective, data, seed, ...) from the checkpoint;
    only ``epochs``, ``device``, ``precision`` and where things go may change (the rules:
    :meth:`TrainConfig.resumed`).  Resuming
    is *exact* (bit for bit the run that never stopped) on the same device with the same
    precision; another precision is allowed on purpose (a run started on a GPU can finish
    on a laptop) and is recorded in the start row (``precision_changed_from``).  So is
    another device type (``device_changed_from``): a CUDA generator's state (16 bytes)
    cannot be loaded into a CPU one (5,056 bytes), so those random streams are then
    re-seeded from ``(seed, step)`` (:mod:`pgviz.train.portable`) and the run continues,
    no longer bit for bit the one that never stopped.
    The data must be the same: its fingerprint is stored and compared.
    """

    def __init__(self, config: TrainConfig, device: torch.device, dataset: Optional[Dataset], resume: bool):
        self.device = device
        self.out = Path(config.out) if config.out else None
        self.ckpt_path = self.out / "checkpoint.pt" if self.out else None
        ckpt = load_checkpoint(self.ckpt_path) if resume and self.ckpt_path and self.ckpt_path.is_file() else None
        if ckpt is not None:  # the run's identity comes from the checkpoint
            config = TrainConfig.resumed(ckpt["config"], config.session(), refuse=False).validate()
        if dataset is None:
            config.data = canonical_source(config.data or default_source())  # record what was used
            dataset = load_dataset(config.data, data_dir=config.data_dir)
        self.config, self.ds = config, dataset
        self.fingerprint = fingerprint(dataset)
        self.precision = resolve_precision(config.precision, device)
        self.log_every = config.log_every or (1 if device.type == "cpu" else 10)

        torch.manual_seed(config.seed)
        self.model = get_model(config.model, dataset.n_classes, standardize=config.standardize).to(device)
        check_input_size(self.model, dataset.train_images, config.model)
        self.opt = adam(self.model.parameters(), config.lr, device)
        self.loader = DeviceLoader(dataset.train_images, dataset.train_labels, config.batch_size, device=device,
                                   augment=config.augment, seed=config.seed, drop_last=config.drop_last,
                                   standardize=config.standardize)
        self.action_gen = torch.Generator(device=self.loader.generator.device).manual_seed(config.seed + 1)
        # what the objective needs besides a batch (teacher-student: its teacher), made once
        self.prepared = objectives.prepare(config.objective, config.options, device=device, precision=self.precision,
                                           n_classes=dataset.n_classes, standardize=config.standardize)
        self.average = WeightAverage(self.model, config.ema) if config.ema > 0 else None
        self.evaluated = self.average.model if self.average is not None else self.model
        self.stat_names = objectives.stat_names(config.objective)  # the order of a step's statistics
        self.st = {"epoch": 0, "step": 0, "images_seen": 0, "elapsed": 0.0,
                   "sums": torch.zeros(len(self.stat_names) + 1, dtype=torch.float64), "history": []}
        self.pending = []  # the statistics of steps not logged yet (tensors on the device)
        self.saved = None  # what the checkpoint on disk holds, for messages ("epoch 3")
        self.generators_reseeded = False  # True when a resume on another device type re-seeded them
        start = {}
        if ckpt is not None:
            self._restore(ckpt)
            old = ckpt.get("precision_used")
            if old is not None and old != self.precision:
                start["precision_changed_from"] = old
            was = recorded_device(ckpt)
            if was is not None and was != self.device.type:
                start["device_changed_from"] = was
            if self.generators_reseeded:
                start["generators_reseeded"] = True
        self.metrics = MetricsLog(self.out, keep_until=self.st["step"] if ckpt is not None else None)
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
            if self.average is not None:
                self.average.model.load_state_dict(ckpt["ema"])
                self.average.updates = int(ckpt["ema_updates"])
            self.opt.load_state_dict(ckpt["optimizer"])
            step = int(ckpt["step"])
            loader_state = dict(ckpt["loader"])
            exact = restore_generator(self.loader.generator, loader_state["generator"],
                                      portable_seed(self.config.seed, step, "loader"))
            loader_state["generator"] = self.loader.generator.get_state()
            self.loader.load_state_dict(loader_state)
            exact &= restore_generator(self.action_gen, ckpt["action_rng"],
                                       portable_seed(self.config.seed, step, "actions"))
            self.generators_reseeded = not exact
            torch.set_rng_state(ckpt["torch_rng"])
            restore_cuda_rng(ckpt.get("cuda_rng"), self.device)
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
        """The learning rate of step ``step`` (the warm-up, then constant)."""
        return warmup_lr(step, self.config.lr, self.config.warmup_steps)

    def stepped(self, n_images: int, stats: dict) -> None:
        """Count one finished step of ``n_images`` and keep its statistics (named tensors
        on the device) for :meth:`flush`, stacked in the fixed order of ``stat_names``,
        NaN for those the objective does not measure: still no device sync."""
        self.st["step"] += 1
        self.st["images_seen"] += n_images
        nan = None
        row = []
        for name in self.stat_names:
            v = stats.get(name)
            if v is None:
                nan = torch.full((), float("nan"), device=stats["loss"].device) if nan is None else nan
                v = nan
            row.append(v)
        self.pending.append(torch.stack(row))

    def log_due(self, steps_per_epoch: int) -> bool:
        """True when the pending steps should be logged (every ``log_every``, and at an epoch's end)."""
        return len(self.pending) >= self.log_every or self.loader.position == steps_per_epoch

    def emit(self, event: dict, callbacks) -> None:
        """Write ``event`` to the metrics log, then hand it to every callback."""
        self.metrics.write(event)
        for cb in callbacks:
            cb({**event, "model": self.evaluated, "live_model": self.model})

    def flush(self, t0: float, progress, callbacks, safe: bool = False) -> None:
        """Log the pending steps' statistics (one device sync); stop on a non-finite loss."""
        pending, st = self.pending, self.st
        if not pending:
            return
        stats = torch.stack(pending).double().cpu()
        pending.clear()
        if not safe and not torch.isfinite(stats[:, 0]).all():
            st["sums"] = torch.zeros_like(st["sums"])
            raise TrainingDiverged(
                f"loss became {stats[:, 0][~torch.isfinite(stats[:, 0])][0].item()} near step {st['step']} "
                f"(epoch {st['epoch'] + 1}); training stopped and {self.kept()}; try a smaller --lr")
        st["sums"][:-1] += torch.nan_to_num(stats, nan=0.0).sum(0)
        st["sums"][-1] += len(stats)
        last = dict(zip(self.stat_names, stats[-1].tolist()))
        row = jsonable({"event": "step", "epoch": st["epoch"] + 1, "step": st["step"],
                        "images_seen": st["images_seen"], "time": round(st["elapsed"] + time.perf_counter() - t0, 3),
                        "lr": self.lr_at(max(st["step"] - 1, 0)), **last})
        progress.update(len(stats), {**row, "loss": last["loss"], "train_acc": last["train_acc"]})
        self.emit(row, callbacks)

    def end_epoch(self, t0: float, callbacks) -> None:
        """Evaluate, then log the epoch's row, save, and only then tell the callbacks
        (the row goes first: a crash before the save leaves a row that resume drops)."""
        st, config = self.st, self.config
        self.check_finite(st["epoch"] + 1)  # before its row is written: no row for a lost epoch
        st["epoch"] += 1
        test = evaluate(self.evaluated, self.ds.test_images, self.ds.test_labels, device=self.device)
        n = max(st["sums"][-1].item(), 1.0)
        measured = objectives.measured(config.objective)
        means = {k: (v if k in measured else None) for k, v in zip(self.stat_names, (st["sums"][:-1] / n).tolist())}
        st["sums"] = torch.zeros_like(st["sums"])
        st["elapsed"] += time.perf_counter() - t0
        event = jsonable({"event": "epoch", "epoch": st["epoch"], "step": st["step"],
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
        if self.average is not None:
            sd.append(self.average.model.state_dict())
        bad = nonfinite(*sd)
        if bad:
            raise TrainingDiverged(
                f"{len(bad)} weights or statistics became non-finite (e.g. {bad[0]}) by step "
                f"{self.st['step']} (epoch {epoch}); training stopped and {self.kept()}; try a smaller --lr")

    def save(self, finished: bool = False) -> None:
        """Write the checkpoint atomically, after checking every weight, buffer and optimiser
        moment is finite (else :class:`TrainingDiverged`, and the old checkpoint stays)."""
        if self.ckpt_path is None:
            return
        st, avg = self.st, self.average
        state = {"model": self.model.state_dict(), "optimizer": self.opt.state_dict(),
                 "ema": avg.model.state_dict() if avg is not None else None}
        self.check_finite(st["epoch"] if not self.loader.position else st["epoch"] + 1)
        try:
            save_atomic(_with_checksum({
                "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "config": asdict(self.config),
                "n_classes": self.ds.n_classes, "label_names": list(self.ds.label_names),
                "data_source": self.ds.source, "data_fingerprint": self.fingerprint,
                "precision_used": self.precision, **state, "loader": self.loader.state_dict(),
                "ema_updates": avg.updates if avg is not None else 0,
                "action_rng": self.action_gen.get_state(), "torch_rng": torch.get_rng_state(),
                "cuda_rng": cuda_rng_state(self.device), "device_used": self.device.type,
                "epoch": st["epoch"], "step": st["step"], "images_seen": st["images_seen"],
                "elapsed": st["elapsed"], "sums": st["sums"], "history": st["history"], "finished": finished,
            }), self.ckpt_path)
        except (OSError, RuntimeError) as exc:  # a full disk inside torch.save is a RuntimeError
            raise OutputError(f"could not write {self.ckpt_path} ({write_reason(exc)}); {self.kept()}") from None
        self.saved = self._describe()

    def finish(self, stopped: Optional[str], callbacks) -> dict:
        """The summary (``"event": "end"``): written to the log, handed to the callbacks, returned."""
        st, config, ds = self.st, self.config, self.ds
        last = st["history"][-1] if st["history"] else {}
        summary = jsonable({
            "event": "end", "status": stopped or "finished", "objective": config.objective, "model": config.model,
            "data": ds.source, "epochs": st["epoch"], "step": st["step"], "images_seen": st["images_seen"],
            "train_acc": last.get("train_acc"), "test_acc": last.get("test_acc"),
            "n_test": len(ds.test_labels), "wall_time": round(st["elapsed"], 3), "device": str(self.device),
            "precision": self.precision, "checkpoint": str(self.ckpt_path) if self.saved else None,
        })
        self.emit(summary, callbacks)
        return summary


def _with_checksum(ckpt: dict) -> dict:
    """``ckpt`` with its ``checksum`` (:func:`~pgviz.train.rundir.checkpoint_digest`)."""
    return {**ckpt, "checksum": checkpoint_digest(ckpt)}
