"""The training loop: exact resume, interrupts, divergence, callbacks and metrics (CPU, synthetic data)."""
import json
import math

import pytest
import torch

from helpers import assert_finite_checkpoint, checkpoint_params, same_tensors, train_config

from pgviz import data, objectives
from pgviz.train import (CheckpointError, StopTraining, TrainingDiverged, evaluate, load_checkpoint,
                         model_from_checkpoint, train)


def test_resume_two_plus_one_equals_three_straight(tmp_path, small):
    straight = train(train_config(tmp_path / "a", epochs=3), dataset=small)
    train(train_config(tmp_path / "b", epochs=2), dataset=small)
    resumed = train(train_config(tmp_path / "b", epochs=3), dataset=small, resume=True)
    assert same_tensors(checkpoint_params(tmp_path / "a" / "checkpoint.pt"), checkpoint_params(tmp_path / "b" / "checkpoint.pt"))
    assert resumed["test_acc"] == straight["test_acc"] and resumed["step"] == straight["step"]
    # the reported accuracy is that of the network a checkpoint hands out (the weight average)
    net = model_from_checkpoint(tmp_path / "b" / "checkpoint.pt")
    assert evaluate(net, small.test_images, small.test_labels)["accuracy"] == resumed["test_acc"]
    # the resumed metrics file reads like the straight one (same step lines, same epochs)
    rows = lambda p: [json.loads(l) for l in open(p / "metrics.jsonl")]
    strip = lambda rs: [{k: v for k, v in r.items() if k != "time"} for r in rs if r["event"] in ("step", "epoch")]
    assert strip(rows(tmp_path / "a")) == strip(rows(tmp_path / "b"))


def test_interrupt_mid_epoch_saves_and_resumes_exactly(tmp_path, small):
    train(train_config(tmp_path / "a"), dataset=small)

    def ctrl_c(event):
        if event["event"] == "step" and event["step"] == 5:  # mid epoch 2 (4 steps per epoch)
            raise KeyboardInterrupt

    stopped = train(train_config(tmp_path / "b"), callbacks=[ctrl_c], dataset=small)
    assert stopped["status"] == "interrupted" and stopped["step"] == 5
    ckpt = load_checkpoint(tmp_path / "b" / "checkpoint.pt")
    assert ckpt["step"] == 5 and ckpt["epoch"] == 1 and not ckpt["finished"]
    done = train(train_config(tmp_path / "b"), dataset=small, resume=True)
    assert done["status"] == "finished" and done["step"] == 8
    assert same_tensors(checkpoint_params(tmp_path / "a" / "checkpoint.pt"), checkpoint_params(tmp_path / "b" / "checkpoint.pt"))


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, small):
    def poison(event):
        if event["event"] == "epoch" and event["epoch"] == 1:
            with torch.no_grad():
                next(event["live_model"].parameters()).fill_(float("nan"))

    with pytest.raises(TrainingDiverged, match="last good checkpoint") as err:
        train(train_config(tmp_path, epochs=3), callbacks=[poison], dataset=small)
    assert "\n" not in str(err.value)
    ckpt = load_checkpoint(tmp_path / "checkpoint.pt")
    assert ckpt["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())


def test_metrics_and_callbacks(tmp_path, small):
    events = []

    def stop_after_two_epochs(event):
        events.append(event)
        if event["event"] == "epoch" and event["epoch"] == 2:
            raise StopTraining

    summary = train(train_config(tmp_path, epochs=5), callbacks=[stop_after_two_epochs], dataset=small)
    assert summary["status"] == "stopped" and summary["epochs"] == 2
    assert isinstance(events[0]["model"], torch.nn.Module)
    rows = [json.loads(l) for l in open(tmp_path / "metrics.jsonl")]
    kinds = [r["event"] for r in rows]
    assert kinds[0] == "start" and kinds[-1] == "end" and kinds.count("epoch") == 2 and kinds.count("step") == 8
    step = next(r for r in rows if r["event"] == "step")
    for key in ("loss", "reward", "baseline", "entropy", "policy_loss", "baseline_loss", "train_acc",
                "images_seen", "time", "lr"):
        assert key in step and step[key] is not None, key
    assert 0 <= step["reward"] <= 1 and 0 < step["baseline"] < 1 and 0 < step["entropy"] <= math.log(10) + 1e-6
    ep = [r for r in rows if r["event"] == "epoch"]
    assert ep[1]["images_seen"] == 2 * 4 * 64 and 0 <= ep[1]["test_acc"] <= 1 and ep[1]["time"] > 0
    assert json.loads(json.dumps(rows[-1]))["status"] == "stopped"


def test_objectives_learn_synthetic(tmp_path):
    ds = data.make_synthetic(384, 200)
    accs = {}
    last = {}
    for obj in ("pg", "pg-no-baseline", "xent"):
        keep = lambda e, obj=obj: last.__setitem__(obj, e) if e["event"] == "epoch" else None
        s = train(train_config(tmp_path / obj, objective=obj, epochs=3, batch_size=32, lr=5e-3, out=None),
                  callbacks=[keep], dataset=ds)
        accs[obj] = s["test_acc"]
    # what an objective does not have is logged as null, not as a fake 0
    assert last["xent"]["reward"] is None and last["xent"]["baseline"] is None
    assert last["pg-no-baseline"]["baseline"] is None and last["pg-no-baseline"]["reward"] > 0.1
    assert 0 < last["pg"]["baseline"] < 1
    # chance is 0.1; measured (seed 0): pg 0.45, pg-no-baseline 0.42, xent 0.70
    assert accs["xent"] > 0.5 and accs["pg"] > 0.25 and accs["pg-no-baseline"] > 0.2, accs


def test_bf16_is_recorded_and_resumes_exactly(tmp_path, small):
    straight = train(train_config(tmp_path / "a", epochs=2, precision="bf16"), dataset=small)
    train(train_config(tmp_path / "b", epochs=1, precision="bf16"), dataset=small)
    resumed = train(train_config(tmp_path / "b", epochs=2, precision="bf16"), dataset=small, resume=True)
    assert straight["precision"] == resumed["precision"] == "bf16"
    assert same_tensors(checkpoint_params(tmp_path / "a" / "checkpoint.pt"), checkpoint_params(tmp_path / "b" / "checkpoint.pt"))
    ckpt = load_checkpoint(tmp_path / "a" / "checkpoint.pt")
    assert ckpt["precision_used"] == "bf16" and ckpt["config"]["precision"] == "bf16"
    start = json.loads(open(tmp_path / "a" / "metrics.jsonl").readline())
    assert start["event"] == "start" and start["precision_used"] == "bf16"
    # another precision on resume is allowed on purpose, and recorded
    again = train(train_config(tmp_path / "b", epochs=3, precision="fp32"), dataset=small, resume=True)
    assert again["precision"] == "fp32"
    rows = [json.loads(l) for l in open(tmp_path / "b" / "metrics.jsonl")]
    assert [r.get("precision_changed_from") for r in rows if r["event"] == "start"][-1] == "bf16"


def test_resume_restores_torchs_global_rng(tmp_path, small):
    """Code that draws from torch's global generator (a callback here) sees the same numbers."""
    def drawer(store):
        return lambda e: store.append(torch.rand(()).item()) if e["event"] == "step" else None

    a, b = [], []
    train(train_config(tmp_path / "a", epochs=2), callbacks=[drawer(a)], dataset=small)
    train(train_config(tmp_path / "b", epochs=1), callbacks=[drawer([])], dataset=small)
    torch.manual_seed(12345)  # whatever happened in between
    train(train_config(tmp_path / "b", epochs=2), callbacks=[drawer(b)], dataset=small, resume=True)
    assert len(a) == 8 and b == a[4:]


def test_nonfinite_buffer_is_never_saved(tmp_path, small):
    """The loss stays finite (BatchNorm uses batch statistics in training), but a running
    variance is infinite: the epoch is not saved, the last good checkpoint stays."""
    def poison(event):
        if event["event"] == "epoch" and event["epoch"] == 1:
            bn = next(m for m in event["live_model"].modules() if isinstance(m, torch.nn.BatchNorm2d))
            bn.running_var.fill_(float("inf"))

    with pytest.raises(TrainingDiverged, match=r"non-finite.*running_var.*epoch 1\)") as err:
        train(train_config(tmp_path, epochs=3), callbacks=[poison], dataset=small)
    assert "\n" not in str(err.value) and "(epoch 2)" in str(err.value)
    assert assert_finite_checkpoint(tmp_path / "checkpoint.pt")["epoch"] == 1
    rows = [json.loads(l) for l in open(tmp_path / "metrics.jsonl")]
    assert [r["epoch"] for r in rows if r["event"] == "epoch"] == [1]  # no row for the lost epoch


def test_a_nonfinite_weight_average_is_divergence(tmp_path):
    """Planted bug: the divergence check skipped the weight average.  The live network stays
    finite, but its average (the network a checkpoint hands out) holds an infinity after
    epoch 1: epoch 2 is not saved, TrainingDiverged names it, the epoch-1 checkpoint stays."""
    ds = data.make_synthetic(64, 32)

    def poison(event):
        if event["event"] == "epoch" and event["epoch"] == 1:
            assert event["model"] is not event["live_model"]  # the run keeps an average
            with torch.no_grad():
                p = next(event["model"].parameters())
                p[(0,) * p.dim()] = float("inf")

    with pytest.raises(TrainingDiverged, match=r"non-finite.*epoch 2\)") as err:
        train(train_config(tmp_path, epochs=3, batch_size=32, model="lenet"), callbacks=[poison], dataset=ds)
    assert "\n" not in str(err.value) and "last good checkpoint (epoch 1) was kept" in str(err.value)
    ckpt = assert_finite_checkpoint(tmp_path / "checkpoint.pt")
    assert ckpt["epoch"] == 1 and ckpt["ema"] is not None
    rows = [json.loads(l) for l in open(tmp_path / "metrics.jsonl")]
    assert [r["epoch"] for r in rows if r["event"] == "epoch"] == [1]  # no row for the lost epoch


def test_huge_lr_never_leaves_infinite_weights(tmp_path):
    ds = data.make_synthetic(256, 64)
    for lr in (1e8, 1e10):
        out = tmp_path / str(lr)
        try:
            s = train(train_config(out, epochs=4, lr=lr), dataset=ds)
            assert s["status"] == "finished"
        except TrainingDiverged:
            pass
        if (out / "checkpoint.pt").exists():
            ckpt = assert_finite_checkpoint(out / "checkpoint.pt")
            net = model_from_checkpoint(ckpt)
            r = evaluate(net, ds.test_images, ds.test_labels)
            json.dumps(r, allow_nan=False)


def test_divergence_at_the_first_step_claims_no_checkpoint(tmp_path, small, monkeypatch):
    real = objectives.objective_step
    def poisoned(*a, **k):
        loss, stats = real(*a, **k)
        return loss * float("nan"), {name: v * float("nan") for name, v in stats.items()}

    monkeypatch.setattr(objectives, "objective_step", poisoned)
    with pytest.raises(TrainingDiverged, match="no checkpoint was written") as err:
        train(train_config(tmp_path), dataset=small)
    assert "epoch 0" not in str(err.value) and not (tmp_path / "checkpoint.pt").exists()


def test_epochs_0_writes_the_checkpoint_it_names(tmp_path, small):
    s = train(train_config(tmp_path, epochs=0), dataset=small)
    assert s["status"] == "finished" and s["step"] == 0
    ckpt = load_checkpoint(s["checkpoint"])
    assert ckpt["epoch"] == 0 and ckpt["finished"]
    assert train(train_config(tmp_path / "none", epochs=0, out=None), dataset=small)["checkpoint"] is None


def test_resume_refuses_other_data(tmp_path, small):
    train(train_config(tmp_path, epochs=1), dataset=small)
    other = data.make_synthetic(256, 128, seed=1)
    with pytest.raises(CheckpointError, match="not the data this run was trained on"):
        train(train_config(tmp_path, epochs=2), dataset=other, resume=True)
    assert train(train_config(tmp_path, epochs=2), dataset=small, resume=True)["epochs"] == 2


def test_resume_refuses_the_same_images_relabelled(tmp_path):
    """Planted bug: the data fingerprint ignored the labels.  The same images with one
    training label changed are other data: resuming on them is refused, the checkpoint kept."""
    ds = data.make_synthetic(64, 32)
    train(train_config(tmp_path, epochs=0), dataset=ds)
    before = (tmp_path / "checkpoint.pt").read_bytes()
    relabelled = data.make_synthetic(64, 32)
    relabelled.train_labels[0] = (relabelled.train_labels[0] + 1) % relabelled.n_classes
    assert torch.equal(relabelled.train_images, ds.train_images)
    with pytest.raises(CheckpointError, match="not the data this run was trained on"):
        train(train_config(tmp_path, epochs=1), dataset=relabelled, resume=True)
    assert (tmp_path / "checkpoint.pt").read_bytes() == before



def test_a_checkpoint_with_the_old_top_level_options_resumes_exactly(tmp_path, small):
    """Checkpoints written before the objectives had their own ``options`` (``samples``,
    ``group_norm``, ``epsilon`` at the config's top level) load and resume bit for bit."""
    opts = {"samples": 2, "group_norm": True}
    train(train_config(tmp_path / "a", objective="rloo", options=opts), dataset=small)
    train(train_config(tmp_path / "b", objective="rloo", options=opts, epochs=1), dataset=small)
    path = tmp_path / "b" / "checkpoint.pt"
    ckpt = torch.load(path, weights_only=True)
    assert ckpt["config"]["options"] == opts
    old = {k: v for k, v in ckpt["config"].items() if k != "options"}
    ckpt.pop("checksum")  # an old checkpoint: written before checksums
    torch.save({**ckpt, "config": {**old, "samples": 2, "group_norm": True, "epsilon": 0.2}}, path)
    assert load_checkpoint(path)["config"]["samples"] == 2
    resumed = train(train_config(tmp_path / "b", objective="rloo", options=opts), dataset=small, resume=True)
    assert resumed["step"] == 8
    assert same_tensors(checkpoint_params(tmp_path / "a" / "checkpoint.pt"), checkpoint_params(path))
    assert load_checkpoint(path)["config"]["options"] == opts  # written back in the new form
    # an old pg checkpoint held every objective's option at its default: they are dropped
    train(train_config(tmp_path / "c", epochs=1), dataset=small)
    path = tmp_path / "c" / "checkpoint.pt"
    ckpt = torch.load(path, weights_only=True)
    old = {k: v for k, v in ckpt["config"].items() if k != "options"}
    ckpt.pop("checksum")  # an old checkpoint: written before checksums
    torch.save({**ckpt, "config": {**old, "samples": 1, "group_norm": False, "epsilon": 0.2}}, path)
    assert train(train_config(tmp_path / "c"), dataset=small, resume=True)["step"] == 8
