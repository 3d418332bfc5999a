"""pgviz.figures.panel and .learning: the recorder, the snapshot slider and the live panel (Stop keeps the run)."""
import numpy as np
import pytest
import torch

from pgviz import data
from pgviz import figures as F
from pgviz.train import load_checkpoint, train

from helpers import lenet_config

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def tiny():
    return data.make_synthetic(n_train=256, n_test=64)


_cfg = lenet_config


def test_probe_images_are_the_first_test_image_of_each_class(tiny):
    images, labels = F.probe_images(tiny)
    names = [tiny.label_names[int(k)] for k in labels]
    assert names == list(F.PROBE_CLASSES)
    first_horse = int((tiny.test_labels == tiny.label_names.index("horse")).nonzero()[0])
    assert torch.equal(images[0], tiny.test_images[first_horse])


def test_recorder_keeps_curves_and_a_policy_snapshot_per_epoch(tiny):
    rec = F.Recorder(*F.probe_images(tiny))
    summary = train(_cfg(epochs=3), callbacks=[rec], dataset=tiny)
    assert rec.epochs == [0, 1, 2, 3]
    assert [h["epoch"] for h in rec.history] == [1, 2, 3]
    assert rec.history[-1]["test_acc"] == pytest.approx(summary["test_acc"])
    snaps = np.stack(rec.snapshots)
    assert snaps.shape == (4, 5, 10)
    assert np.allclose(snaps.sum(-1), 1.0, atol=1e-5)
    assert not np.allclose(snaps[0], snaps[-1])  # the policy moved

    fig = F.curves_figure(rec.history)
    acc_line = fig.axes[0].get_lines()[0]
    assert list(acc_line.get_ydata()) == pytest.approx([h["test_acc"] for h in rec.history])

    slider = F.snapshot_slider(rec, tiny.label_names)
    assert slider.n_frames == 4
    bars = lambda: [p.get_height() for p in slider.figure.axes[5].patches]  # horse's bars
    last = bars()
    assert last == pytest.approx(list(snaps[3][0]))
    slider.sliders["epoch"].value = 0
    assert bars() == pytest.approx(list(snaps[0][0]))
    assert "pgviz-frames" in slider.to_html()


def test_panel_config_follows_the_controls(tiny, tmp_path):
    panel = F.TrainingDashboard(tiny, base=_cfg(tmp_path))
    panel.baseline.value = False
    panel.entropy_weight.value = 0.1
    panel.epochs.value = 7
    cfg = panel.config()
    assert (cfg.objective, cfg.epochs) == ("pg-no-baseline", 7)
    assert cfg.entropy_weight == pytest.approx(0.1)
    assert cfg.out.startswith(str(tmp_path))
    panel.objective.value = "xent"
    assert panel.config().objective == "xent"
    bundle = panel._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "JupyterLab" in bundle["text/html"] and "<input" not in bundle["text/html"]


def test_panel_trains_and_draws(tiny, tmp_path):
    panel = F.TrainingDashboard(tiny, base=_cfg(tmp_path))
    panel.epochs.value = 2
    s = panel.run()
    assert s["status"] == "finished" and s["epochs"] == 2
    assert panel.progress.value == 1.0
    assert panel.curves.value[:8] == b"\x89PNG\r\n\x1a\n" and panel.policy.value[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / panel.run_dir.split("/")[-1] / "checkpoint.pt").exists()


def test_stop_button_ends_the_run_and_keeps_it(tiny, tmp_path):
    panel = F.TrainingDashboard(tiny, base=_cfg(tmp_path))
    panel.epochs.value = 100
    seen = []

    def stop_after_a_few(event):  # press Stop from "outside" after 3 steps
        seen.append(event["event"])
        if seen.count("step") == 3:
            panel.stop_button.click()

    cfg = panel.config()
    panel._stop.clear()
    panel.recorder = F.Recorder(*F.probe_images(tiny))
    summary = train(cfg, callbacks=[stop_after_a_few, lambda e: panel._on_event(e, 0.0, 400)], dataset=tiny)
    assert summary["status"] == "stopped"
    assert summary["step"] < 10
    ckpt = load_checkpoint(f"{cfg.out}/checkpoint.pt")
    assert ckpt["step"] == summary["step"] and not ckpt["finished"]


def test_start_runs_in_a_thread_and_stop_saves(tiny, tmp_path):
    panel = F.TrainingDashboard(tiny, base=_cfg(tmp_path))
    panel.epochs.value = 100
    panel.start()
    assert panel.train_button.disabled and not panel.stop_button.disabled
    panel._thread.join(timeout=0.5)
    panel.stop()
    panel._thread.join(timeout=60)
    assert not panel._thread.is_alive()
    assert panel.summary["status"] == "stopped", panel.status.value
    assert "saved in" in panel.status.value and panel.run_dir in panel.status_text
    assert "resumable" in panel.status_text
    assert not panel.train_button.disabled
    assert load_checkpoint(f"{panel.run_dir}/checkpoint.pt")["step"] == panel.summary["step"]


def test_recorder_keeps_every_logged_step_and_the_live_figure_draws_them(tiny):
    rec = F.Recorder(*F.probe_images(tiny))
    train(_cfg(epochs=2, log_every=1), callbacks=[rec], dataset=tiny)
    assert [s["step"] for s in rec.steps] == list(range(1, 9))  # 256 images / 64 = 4 steps a epoch
    assert [s["epoch"] for s in rec.steps] == [1] * 4 + [2] * 4
    fig = F.live_figure(rec.steps, rec.history)
    top, reward_ax, baseline_ax, entropy_ax = fig.axes
    acc = top.get_lines()[0]
    assert list(acc.get_xdata()) == [4, 8]
    assert list(acc.get_ydata()) == pytest.approx([h["test_acc"] for h in rec.history])
    assert top.get_title().endswith("after 2 epochs")
    raw, smoothed = reward_ax.get_lines()
    rewards = [s["reward"] for s in rec.steps]
    assert list(raw.get_ydata()) == pytest.approx(rewards)
    assert list(smoothed.get_ydata()) == pytest.approx(list(F.smooth(rewards)))
    assert list(entropy_ax.get_lines()[0].get_ydata()) == pytest.approx([s["entropy"] for s in rec.steps])
    # before the first epoch ends: the step curves, and a note where the accuracy will be
    early = F.live_figure(rec.steps[:1], [])
    assert early.axes[0].get_lines() == [] and len(early.axes[1].get_lines()) == 2
    # cross-entropy measures no baseline: said so, not drawn as zeros
    xent = F.Recorder(*F.probe_images(tiny))
    train(_cfg(epochs=1, objective="xent", log_every=1), callbacks=[xent], dataset=tiny)
    ax = F.live_figure(xent.steps, xent.history).axes[2]
    assert ax.get_lines() == [] and "not measured" in ax.texts[0].get_text()


def test_panel_shows_no_empty_image_and_draws_from_the_first_step(tiny, tmp_path):
    panel = F.TrainingDashboard(tiny, base=_cfg(tmp_path, log_every=1), redraw_every=0.0)
    # nothing to show yet: the images are hidden (an empty one is a broken-image icon)
    assert panel.curves.value == b"" and panel.curves.layout.display == "none"
    assert panel.policy.layout.display == "none"
    assert panel.status_text.startswith("ready")
    drawn = []

    def watch(event):
        if event["event"] == "step" and event["step"] == 1:
            drawn.append(panel.curves.value)  # after the panel's own callback ran

    cfg = panel.config()
    panel.recorder = F.Recorder(*F.probe_images(tiny))
    train(cfg, callbacks=[panel.recorder, lambda e: panel._on_event(e, 0.0, 8), watch], dataset=tiny)
    assert drawn and drawn[0][:8] == b"\x89PNG\r\n\x1a\n"  # drawn at step 1, before any epoch
    assert panel.curves.layout.display is None and panel.policy.layout.display is None


def test_train_again_resets_the_progress_bar(tiny, tmp_path):
    panel = F.TrainingDashboard(tiny, base=_cfg(tmp_path))
    panel.epochs.value = 1
    panel.run()
    assert panel.progress.value == 1.0
    panel.epochs.value = 100
    panel.start()
    assert panel.progress.value < 0.05  # back to the start (a few steps may have run)
    panel.stop()
    panel._thread.join(timeout=60)
    assert panel.summary["status"] == "stopped"


def test_status_line_keeps_the_whole_folder_name_and_counts_right(tiny, tmp_path):
    panel = F.TrainingDashboard(tiny, base=_cfg(tmp_path))
    panel.run_dir = "runs/live/" + "a-very-long-folder-name-" * 6 + "<end>"
    s = {"status": "finished", "test_acc": 0.5, "epochs": 1, "step": 4, "wall_time": 3.2}
    assert panel.describe(s) == f"finished: test accuracy 0.500 after 1 epoch (3 s); saved in {panel.run_dir}"
    assert "after 2 epochs" in panel.describe({**s, "epochs": 2})
    stopped = panel.describe({**s, "status": "stopped", "test_acc": None, "step": 1})
    assert stopped.startswith("stopped after 1 step, before") and "resumable" in stopped
    panel._set_status(panel.describe(s))
    assert "&lt;end&gt;" in panel.status.value  # the whole name, escaped, in a wrapping line
    assert "white-space:normal" in panel.status.value
