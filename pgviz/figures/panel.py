"""The live training panel for JupyterLab, and the recorder behind the book's training figures.

* :class:`Recorder` -- a training callback that keeps the per-step statistics (reward,
  baseline, entropy of each logged step), the epoch curves (test accuracy, mean reward,
  mean baseline, policy entropy) and a snapshot of the policy on a few fixed *probe* images
  (the horse among them, :func:`probe_images`) after every epoch; the figures drawn from it
  are in :mod:`pgviz.figures.learning`;
* :class:`TrainingDashboard` -- the live panel: controls (objective, entropy weight,
  learning rate, baseline on/off, epochs), Train and Stop buttons, a progress bar with
  the time left, and plots redrawn in place as the steps arrive (at most about once a
  second; the policy snapshot after every epoch).  Training runs in a
  background thread so that Stop can be pressed; Stop ends the run at the next batch
  and keeps it (checkpoint and ``metrics.jsonl`` in the run folder);
* :func:`cpu_budget` -- a subset small enough to train on a CPU in a minute or two.

Displayed in a static page (no kernel), the panel shows a note instead of dead
controls, the same way :mod:`pgviz.widgets` figures fall back to HTML.
"""
from __future__ import annotations

import html
import io
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Optional, Sequence

import torch
from matplotlib.figure import Figure

from ..data import Dataset
from ..train import StopTraining, TrainConfig, pick_device, predict, train
from .learning import draw_snapshot, live_figure, plural

__all__ = ["PROBE_CLASSES", "ENTROPY_WEIGHTS", "LEARNING_RATES", "Recorder", "probe_images", "cpu_budget",
           "TrainingDashboard"]

#: The probe images: the first test image of each of these classes.
PROBE_CLASSES = ("horse", "dog", "airplane", "cat", "ship")
#: The entropy weights the panel's slider offers (the run's own default is added when missing).
ENTROPY_WEIGHTS = (0.0, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
#: The learning rates the panel's slider offers (likewise).
LEARNING_RATES = (1e-4, 3e-4, 1e-3, 2e-3, 3e-3, 1e-2)


def probe_images(dataset: Dataset, classes: Sequence[str] = PROBE_CLASSES):
    """``(images uint8 [P, 32, 32, 3], labels [P])``: the first test image of each class."""
    idx = []
    for name in classes:
        if name in dataset.label_names:
            hits = (dataset.test_labels == dataset.label_names.index(name)).nonzero()
            if len(hits):
                idx.append(int(hits[0]))
    idx = torch.tensor(idx, dtype=torch.long)
    return dataset.test_images[idx], dataset.test_labels[idx]


def cpu_budget(dataset: Dataset, n_train: int = 4096, n_test: int = 1000) -> Dataset:
    """The first ``n_train`` / ``n_test`` images: a run small enough for a CPU in a minute or two."""
    return replace(dataset, train_images=dataset.train_images[:n_train], train_labels=dataset.train_labels[:n_train],
                   test_images=dataset.test_images[:n_test], test_labels=dataset.test_labels[:n_test])


@dataclass
class Recorder:
    """A training callback: per-step statistics, epoch curves, and the policy on the probe
    images after each epoch.

    ``steps`` holds one dict per logged step (``step``, ``epoch`` and the objective's
    statistics: ``reward``, ``baseline``, ``entropy``, ``loss``, ``train_acc``, ``None``
    where the objective does not measure one); ``history`` one ``"epoch"`` event per epoch.
    ``snapshots[i]`` is ``probs [P, K]`` after ``epochs[i]`` epochs (``epochs[0] == 0``:
    the untrained network, recorded at the first event).
    """

    images: torch.Tensor
    labels: torch.Tensor
    steps: list = field(default_factory=list)
    history: list = field(default_factory=list)
    epochs: list = field(default_factory=list)
    snapshots: list = field(default_factory=list)

    def _snapshot(self, model, epoch):
        probs, _ = predict(model, self.images)
        self.epochs.append(epoch)
        self.snapshots.append(probs.numpy())

    def __call__(self, event: dict) -> None:
        if not self.snapshots and event.get("event") in ("step", "epoch"):
            # first event: the policy before (almost) any learning
            self._snapshot(event["model"], 0)
        if event.get("event") == "step":
            self.steps.append({k: event.get(k) for k in ("step", "epoch", "reward", "baseline", "entropy",
                                                        "loss", "train_acc")})
        if event.get("event") == "epoch":
            self.history.append({k: v for k, v in event.items() if k != "model"})
            self._snapshot(event["model"], event["epoch"])


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    return buf.getvalue()


def _choices(values, default):
    """Slider options: ``values`` plus ``default``, sorted, shown as compact numbers."""
    return [(f"{v:g}", v) for v in sorted(set(values) | {default})]


class TrainingDashboard:
    """The live training panel (JupyterLab).  ``TrainingDashboard(dataset)`` and display it.

    ``base`` holds the settings the controls do not show (model, batch size, seed, device,
    output folder).  Each press of Train starts a new run in its own folder,
    ``base.out/<date-time>`` (default ``runs/live/...``), so no finished run is overwritten.
    The curves are redrawn from the first logged step on, at most once every
    ``redraw_every`` seconds (and after every epoch and at the end of the run).
    """

    def __init__(self, dataset: Dataset, base: Optional[TrainConfig] = None, *, redraw_every: float = 1.0):
        import ipywidgets as w

        self.dataset = dataset
        self.base = base or TrainConfig(out="runs/live", progress=False)
        self.redraw_every = redraw_every
        self.run_dir: Optional[str] = None
        self.recorder: Optional[Recorder] = None
        self.summary: Optional[dict] = None
        self.status_text = "ready: choose the settings and press Train"
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._last_draw = 0.0
        style = {"description_width": "110px"}
        self.objective = w.Dropdown(options=[("policy gradient", "pg"), ("cross-entropy", "xent")],
                                    value="pg", description="objective", style=style)
        self.baseline = w.Checkbox(value=True, description="learned baseline V", style=style)
        self.entropy_weight = w.SelectionSlider(options=_choices(ENTROPY_WEIGHTS, self.base.entropy_weight),
                                                value=self.base.entropy_weight, description="entropy weight", style=style)
        self.lr = w.SelectionSlider(options=_choices(LEARNING_RATES, self.base.lr), value=self.base.lr,
                                    description="learning rate", style=style)
        self.epochs = w.IntSlider(value=self.base.epochs, min=1, max=100, description="epochs", style=style)
        self.train_button = w.Button(description="Train", button_style="success", icon="play")
        self.stop_button = w.Button(description="Stop", button_style="danger", icon="stop", disabled=True)
        self.progress = w.FloatProgress(value=0.0, min=0.0, max=1.0, description="progress",
                                        layout=w.Layout(width="320px"))
        # HTML, not Label: a Label cuts a long line (the run folder) with an ellipsis
        self.status = w.HTML(layout=w.Layout(width="100%"))
        self.status.add_class("pgviz-dashboard-status")
        self._set_status(self.status_text)
        # no image until there is something to show (an empty Image is a broken-image icon)
        self.curves = w.Image(format="png", layout=w.Layout(display="none", max_width="100%", height="auto"))
        self.curves.add_class("pgviz-dashboard-curves")
        self.policy = w.Image(format="png", layout=w.Layout(display="none", max_width="100%", height="auto"))
        self.policy.add_class("pgviz-dashboard-policy")
        self.train_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.stop())
        controls = w.VBox([self.objective, self.baseline, self.entropy_weight, self.lr, self.epochs])
        buttons = w.HBox([self.train_button, self.stop_button, self.progress])
        self.widget = w.VBox([controls, buttons, self.status, self.curves, self.policy])
        self.widget.add_class("pgviz-dashboard")

    # -- what a run uses -------------------------------------------------------------
    def config(self) -> TrainConfig:
        """The TrainConfig the controls describe."""
        objective = self.objective.value
        if objective == "pg" and not self.baseline.value:
            objective = "pg-no-baseline"
        out = f"{self.base.out or 'runs/live'}/{time.strftime('%Y%m%d-%H%M%S')}"
        return replace(self.base, objective=objective, entropy_weight=float(self.entropy_weight.value),
                       lr=float(self.lr.value), epochs=int(self.epochs.value), progress=False, out=out)

    def _set_status(self, text: str) -> None:
        self.status_text = text
        self.status.value = (f"<span style='overflow-wrap:anywhere;white-space:normal'>"
                             f"{html.escape(text)}</span>")

    @staticmethod
    def _show(image, data: bytes) -> None:
        image.value = data
        image.layout.display = None  # visible from the first picture on

    def draw(self) -> None:
        """Redraw the curves from the recorder (what the panel does as a run goes)."""
        rec = self.recorder
        if rec is None or not (rec.steps or rec.history):
            return
        fig = live_figure(rec.steps, rec.history, fig=Figure(figsize=(10, 4.4), layout="constrained"))
        self._show(self.curves, _png(fig))
        self._last_draw = time.perf_counter()

    def _draw_policy(self) -> None:
        fig = Figure(figsize=(10, 4.2), layout="constrained")
        draw_snapshot(fig, self.recorder, self.dataset.label_names, len(self.recorder.snapshots) - 1)
        self._show(self.policy, _png(fig))

    def _on_event(self, event: dict, t0: float, total_steps: int) -> None:
        kind = event.get("event")
        if self._stop.is_set() and kind in ("step", "epoch"):
            raise StopTraining()
        if kind in ("step", "epoch") and total_steps:
            done = event["step"] / total_steps
            rate = event["step"] / max(time.perf_counter() - t0, 1e-9)
            left = (total_steps - event["step"]) / max(rate, 1e-9)
            self.progress.value = min(done, 1.0)
            self._set_status(f"step {event['step']}/{total_steps}, about {left:.0f} s left")
        if kind == "step" and time.perf_counter() - self._last_draw >= self.redraw_every:
            self.draw()
        if kind == "epoch":
            self.draw()
            self._draw_policy()

    def run(self, config: Optional[TrainConfig] = None) -> dict:
        """Train now, in this thread (what the Train button does in a background thread)."""
        config = config or self.config()
        self.run_dir = config.out
        self._stop.clear()
        self.progress.value = 0.0
        self._last_draw = 0.0
        self.recorder = Recorder(*probe_images(self.dataset))
        n = len(self.dataset.train_labels)  # the trainer drops the last partial batch
        steps_per_epoch = n // config.batch_size if n >= config.batch_size else 1
        t0 = time.perf_counter()
        total = steps_per_epoch * config.epochs
        self.summary = train(config, callbacks=[self.recorder, lambda e: self._on_event(e, t0, total)],
                             dataset=self.dataset)
        self.draw()  # the steps since the last redraw
        if self.summary["status"] == "finished":
            self.progress.value = 1.0
        return self.summary

    def describe(self, s: dict) -> str:
        """The status line after a run: what happened and where it is saved."""
        what = s["status"]
        if s.get("test_acc") is not None:
            what += f": test accuracy {s['test_acc']:.3f} after {plural(int(s['epochs']), 'epoch')}"
        else:
            what += f" after {plural(int(s['step']), 'step')}, before the first epoch ended"
        what += f" ({s['wall_time']:.0f} s); saved in {self.run_dir}"
        if s["status"] != "finished":
            what += f" (resumable: python -m pgviz train --resume --out {self.run_dir})"
        return what

    def start(self) -> None:
        """Start training in a background thread (the Train button)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self.train_button.disabled, self.stop_button.disabled = True, False
        self.progress.value = 0.0
        self._set_status(f"training on {pick_device(self.base.device)}...")

        def work():
            try:
                self._set_status(self.describe(self.run()))
            except Exception as exc:  # shown to the reader, not lost in a thread
                self._set_status(f"error: {exc}")
            finally:
                self.train_button.disabled, self.stop_button.disabled = False, True

        self._thread = threading.Thread(target=work, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ask the run to stop at the next batch; it is saved, not lost (the Stop button)."""
        self._stop.set()
        self._set_status("stopping at the next batch...")

    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = self.widget._repr_mimebundle_(include=include, exclude=exclude) or {}
        bundle["text/html"] = (
            "<div class='admonition note'><p class='admonition-title'>Live training panel</p>"
            "<p>Run this notebook in JupyterLab to get the controls here (objective, entropy weight, "
            "learning rate, baseline on/off, epochs) with Train and Stop buttons and plots that "
            "update while the network learns. The static page shows the run recorded when the book "
            "was built, below.</p></div>")
        return bundle
