"""The training chapter's pieces: recorder, snapshot slider, live panel (Stop keeps the run), results."""
import json

import numpy as np
import pytest
import torch

from pgviz import dashboard, data, results
from pgviz.training import TrainConfig, load_checkpoint, train

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def tiny():
    return data.make_synthetic(n_train=256, n_test=64)


def _cfg(tmp_path=None, **kw):
    base = dict(objective="pg", epochs=2, batch_size=64, progress=False, warmup_steps=0, model="lenet",
                out=str(tmp_path) if tmp_path else None)
    base.update(kw)
    return TrainConfig(**base)


def test_probe_images_are_the_first_test_image_of_each_class(tiny):
    images, labels = dashboard.probe_images(tiny)
    names = [tiny.label_names[int(k)] for k in labels]
    assert names == list(dashboard.PROBE_CLASSES)
    first_horse = int((tiny.test_labels == tiny.label_names.index("horse")).nonzero()[0])
    assert torch.equal(images[0], tiny.test_images[first_horse])


def test_recorder_keeps_curves_and_a_policy_snapshot_per_epoch(tiny):
    rec = dashboard.Recorder(*dashboard.probe_images(tiny))
    summary = train(_cfg(epochs=3), callbacks=[rec], dataset=tiny)
    assert rec.epochs == [0, 1, 2, 3]
    assert [h["epoch"] for h in rec.history] == [1, 2, 3]
    assert rec.history[-1]["test_acc"] == pytest.approx(summary["test_acc"])
    snaps = np.stack(rec.snapshots)
    assert snaps.shape == (4, 5, 10)
    assert np.allclose(snaps.sum(-1), 1.0, atol=1e-5)
    assert not np.allclose(snaps[0], snaps[-1])  # the policy moved

    fig = dashboard.curves_figure(rec.history)
    acc_line = fig.axes[0].get_lines()[0]
    assert list(acc_line.get_ydata()) == pytest.approx([h["test_acc"] for h in rec.history])

    slider = dashboard.snapshot_slider(rec, tiny.label_names)
    assert slider.n_frames == 4
    bars = lambda: [p.get_height() for p in slider.figure.axes[5].patches]  # horse's bars
    last = bars()
    assert last == pytest.approx(list(snaps[3][0]))
    slider.sliders["epoch"].value = 0
    assert bars() == pytest.approx(list(snaps[0][0]))
    assert "pgviz-frames" in slider.to_html()


def test_panel_config_follows_the_controls(tiny, tmp_path):
    panel = dashboard.TrainingDashboard(tiny, base=_cfg(tmp_path))
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
    panel = dashboard.TrainingDashboard(tiny, base=_cfg(tmp_path))
    panel.epochs.value = 2
    s = panel.run()
    assert s["status"] == "finished" and s["epochs"] == 2
    assert panel.progress.value == 1.0
    assert panel.curves.value[:8] == b"\x89PNG\r\n\x1a\n" and panel.policy.value[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / panel.run_dir.split("/")[-1] / "checkpoint.pt").exists()


def test_stop_button_ends_the_run_and_keeps_it(tiny, tmp_path):
    panel = dashboard.TrainingDashboard(tiny, base=_cfg(tmp_path))
    panel.epochs.value = 100
    seen = []

    def stop_after_a_few(event):  # press Stop from "outside" after 3 steps
        seen.append(event["event"])
        if seen.count("step") == 3:
            panel.stop_button.click()

    cfg = panel.config()
    panel._stop.clear()
    panel.recorder = dashboard.Recorder(*dashboard.probe_images(tiny))
    summary = train(cfg, callbacks=[stop_after_a_few, lambda e: panel._on_event(e, 0.0, 400)], dataset=tiny)
    assert summary["status"] == "stopped"
    assert summary["step"] < 10
    ckpt = load_checkpoint(f"{cfg.out}/checkpoint.pt")
    assert ckpt["step"] == summary["step"] and not ckpt["finished"]


def test_start_runs_in_a_thread_and_stop_saves(tiny, tmp_path):
    panel = dashboard.TrainingDashboard(tiny, base=_cfg(tmp_path))
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


def test_smooth_is_a_debiased_moving_average():
    assert dashboard.smooth([2.0, 2.0, 2.0], 0.9) == pytest.approx([2.0, 2.0, 2.0])
    # m1 = 0.5 * 0 / (1 - 0.5) = 0; m2 = (0.5 * 0 + 0.5 * 1) / (1 - 0.25) = 2/3
    assert dashboard.smooth([0.0, 1.0], 0.5) == pytest.approx([0.0, 2 / 3])
    out = dashboard.smooth([1.0, None, 3.0], 0.5)  # a missing value is skipped
    assert np.isnan(out[1]) and out[2] == pytest.approx((0.25 * 1 + 0.5 * 3) / 0.75)
    assert dashboard.smooth([4.0, 1.0], 0.0) == pytest.approx([4.0, 1.0])  # no smoothing
    with pytest.raises(ValueError):
        dashboard.smooth([1.0], 1.0)


def test_recorder_keeps_every_logged_step_and_the_live_figure_draws_them(tiny):
    rec = dashboard.Recorder(*dashboard.probe_images(tiny))
    train(_cfg(epochs=2, log_every=1), callbacks=[rec], dataset=tiny)
    assert [s["step"] for s in rec.steps] == list(range(1, 9))  # 256 images / 64 = 4 steps a epoch
    assert [s["epoch"] for s in rec.steps] == [1] * 4 + [2] * 4
    fig = dashboard.live_figure(rec.steps, rec.history)
    top, reward_ax, baseline_ax, entropy_ax = fig.axes
    acc = top.get_lines()[0]
    assert list(acc.get_xdata()) == [4, 8]
    assert list(acc.get_ydata()) == pytest.approx([h["test_acc"] for h in rec.history])
    assert top.get_title().endswith("after 2 epochs")
    raw, smoothed = reward_ax.get_lines()
    rewards = [s["reward"] for s in rec.steps]
    assert list(raw.get_ydata()) == pytest.approx(rewards)
    assert list(smoothed.get_ydata()) == pytest.approx(list(dashboard.smooth(rewards)))
    assert list(entropy_ax.get_lines()[0].get_ydata()) == pytest.approx([s["entropy"] for s in rec.steps])
    # before the first epoch ends: the step curves, and a note where the accuracy will be
    early = dashboard.live_figure(rec.steps[:1], [])
    assert early.axes[0].get_lines() == [] and len(early.axes[1].get_lines()) == 2
    # cross-entropy measures no baseline: said so, not drawn as zeros
    xent = dashboard.Recorder(*dashboard.probe_images(tiny))
    train(_cfg(epochs=1, objective="xent", log_every=1), callbacks=[xent], dataset=tiny)
    ax = dashboard.live_figure(xent.steps, xent.history).axes[2]
    assert ax.get_lines() == [] and "not measured" in ax.texts[0].get_text()


def test_panel_shows_no_empty_image_and_draws_from_the_first_step(tiny, tmp_path):
    panel = dashboard.TrainingDashboard(tiny, base=_cfg(tmp_path, log_every=1), redraw_every=0.0)
    # nothing to show yet: the images are hidden (an empty one is a broken-image icon)
    assert panel.curves.value == b"" and panel.curves.layout.display == "none"
    assert panel.policy.layout.display == "none"
    assert panel.status_text.startswith("ready")
    drawn = []

    def watch(event):
        if event["event"] == "step" and event["step"] == 1:
            drawn.append(panel.curves.value)  # after the panel's own callback ran

    cfg = panel.config()
    panel.recorder = dashboard.Recorder(*dashboard.probe_images(tiny))
    train(cfg, callbacks=[panel.recorder, lambda e: panel._on_event(e, 0.0, 8), watch], dataset=tiny)
    assert drawn and drawn[0][:8] == b"\x89PNG\r\n\x1a\n"  # drawn at step 1, before any epoch
    assert panel.curves.layout.display is None and panel.policy.layout.display is None


def test_train_again_resets_the_progress_bar(tiny, tmp_path):
    panel = dashboard.TrainingDashboard(tiny, base=_cfg(tmp_path))
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
    panel = dashboard.TrainingDashboard(tiny, base=_cfg(tmp_path))
    panel.run_dir = "runs/live/" + "a-very-long-folder-name-" * 6 + "<end>"
    s = {"status": "finished", "test_acc": 0.5, "epochs": 1, "step": 4, "wall_time": 3.2}
    assert panel.describe(s) == f"finished: test accuracy 0.500 after 1 epoch (3 s); saved in {panel.run_dir}"
    assert "after 2 epochs" in panel.describe({**s, "epochs": 2})
    stopped = panel.describe({**s, "status": "stopped", "test_acc": None, "step": 1})
    assert stopped.startswith("stopped after 1 step, before") and "resumable" in stopped
    panel._set_status(panel.describe(s))
    assert "&lt;end&gt;" in panel.status.value  # the whole name, escaped, in a wrapping line
    assert "white-space:normal" in panel.status.value


def test_results_summary_matches_the_runs(tiny, tmp_path):
    root = tmp_path / "compare"
    for name, objective in [("xent", "xent"), ("pg", "pg")]:
        for seed in (0, 1):
            train(_cfg(root / name / f"seed{seed}", objective=objective, seed=seed), dataset=tiny)
    # a torn line from a killed writer is ignored
    with open(root / "pg" / "seed1" / "metrics.jsonl", "a") as f:
        f.write('{"event": "epo')
    # a run still in progress (no end line) is left out unless asked for
    unfinished = root / "pg" / "seed2"
    unfinished.mkdir()
    lines = open(root / "pg" / "seed0" / "metrics.jsonl").read().splitlines()
    (unfinished / "metrics.jsonl").write_text("\n".join(l for l in lines if '"end"' not in l) + "\n")
    assert len(results.load_runs(root, finished_only=False)["pg"]) == 3
    runs = results.load_runs(root)
    assert sorted(runs) == ["pg", "xent"] and all(len(v) == 2 for v in runs.values())
    finals = {}
    for name in runs:
        finals[name] = []
        for seed in (0, 1):
            lines = [json.loads(l) for l in open(root / name / f"seed{seed}" / "metrics.jsonl") if l.startswith('{"event": "epoch"')]
            finals[name].append(lines[-1]["test_acc"])
    rows = {r["setting"]: r for r in results.summary_table(runs)}
    for name, accs in finals.items():
        assert rows[name]["test_acc_mean"] == pytest.approx(np.mean(accs))
        assert rows[name]["test_acc_std"] == pytest.approx(np.std(accs, ddof=1))
        assert rows[name]["seeds"] == 2 and rows[name]["epochs"] == 2
    assert np.isnan(rows["xent"]["entropy_final_mean"]) and 0 < rows["pg"]["entropy_final_mean"] <= np.log(10)
    run = runs["pg"][0]
    assert results.epoch_reaching(run, 0.0) == 1 and results.epoch_reaching(run, 1.01) is None
    assert rows["pg"]["epoch_reaching_mean"][0.644] in (None, 1.0, 1.5, 2.0)
    table = results.format_table(results.summary_table(runs, order=["xent", "pg"]))
    assert table.splitlines()[2].startswith("| xent | – | 2 | 2 |")
    html = results.comparison_table(results.summary_table(runs))._repr_html_()
    assert html.count("<tr>") == 3 and f"{100 * rows['pg']['test_acc_mean']:.1f} ±" in html
    ax = results.plot_runs(runs, x="time", reference={"article": 0.552})
    assert len(ax.get_lines()) == 3
