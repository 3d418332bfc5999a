"""The trainer: objectives, metrics, exact resume, interrupts, divergence (CPU, synthetic data)."""
import json
import math
import os

import pytest
import torch

from helpers import fail_torch_save

from pgviz import data, models, training
from pgviz.training import StopTraining, TrainConfig, TrainingDiverged, train



@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One intra-op thread: on a shared 2-core machine two spinning OpenMP threads can be
    many times slower than one (the CLI sets OMP_WAIT_POLICY=PASSIVE for the same reason)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def small():
    return data.make_synthetic(256, 128)


def _cfg(tmp_path, **over):
    base = dict(objective="pg", data="synthetic", out=str(tmp_path), epochs=2, batch_size=64,
                lr=3e-3, seed=0, device="cpu", progress=False, warmup_steps=4,
                precision="fp32")  # bf16 runs: test_bf16_*
    base.update(over)
    return TrainConfig(**base)


def _params(path):
    ckpt = training.load_checkpoint(path)
    return {**ckpt["model"], **{"ema." + k: v for k, v in ckpt["ema"].items()}}


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_models_output_policy_plus_baseline():
    x = torch.randn(4, 3, 32, 32)
    for name in models.MODELS:
        out = models.get_model(name, 10)(x)
        assert out.shape == (4, 11)
    with pytest.raises(ValueError, match="unknown model"):
        models.get_model("resnet1000")


def test_resume_two_plus_one_equals_three_straight(tmp_path, small):
    straight = train(_cfg(tmp_path / "a", epochs=3), dataset=small)
    train(_cfg(tmp_path / "b", epochs=2), dataset=small)
    resumed = train(_cfg(tmp_path / "b", epochs=3), dataset=small, resume=True)
    assert _same(_params(tmp_path / "a" / "checkpoint.pt"), _params(tmp_path / "b" / "checkpoint.pt"))
    assert resumed["test_acc"] == straight["test_acc"] and resumed["step"] == straight["step"]
    # the reported accuracy is that of the network a checkpoint hands out (the weight average)
    net = training.model_from_checkpoint(tmp_path / "b" / "checkpoint.pt")
    assert training.evaluate(net, small.test_images, small.test_labels)["accuracy"] == resumed["test_acc"]
    # the resumed metrics file reads like the straight one (same step lines, same epochs)
    rows = lambda p: [json.loads(l) for l in open(p / "metrics.jsonl")]
    strip = lambda rs: [{k: v for k, v in r.items() if k != "time"} for r in rs if r["event"] in ("step", "epoch")]
    assert strip(rows(tmp_path / "a")) == strip(rows(tmp_path / "b"))


def test_interrupt_mid_epoch_saves_and_resumes_exactly(tmp_path, small):
    train(_cfg(tmp_path / "a"), dataset=small)

    def ctrl_c(event):
        if event["event"] == "step" and event["step"] == 5:  # mid epoch 2 (4 steps per epoch)
            raise KeyboardInterrupt

    stopped = train(_cfg(tmp_path / "b"), callbacks=[ctrl_c], dataset=small)
    assert stopped["status"] == "interrupted" and stopped["step"] == 5
    ckpt = training.load_checkpoint(tmp_path / "b" / "checkpoint.pt")
    assert ckpt["step"] == 5 and ckpt["epoch"] == 1 and not ckpt["finished"]
    done = train(_cfg(tmp_path / "b"), dataset=small, resume=True)
    assert done["status"] == "finished" and done["step"] == 8
    assert _same(_params(tmp_path / "a" / "checkpoint.pt"), _params(tmp_path / "b" / "checkpoint.pt"))


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, small):
    def poison(event):
        if event["event"] == "epoch" and event["epoch"] == 1:
            with torch.no_grad():
                next(event["live_model"].parameters()).fill_(float("nan"))

    with pytest.raises(TrainingDiverged, match="last good checkpoint") as err:
        train(_cfg(tmp_path, epochs=3), callbacks=[poison], dataset=small)
    assert "\n" not in str(err.value)
    ckpt = training.load_checkpoint(tmp_path / "checkpoint.pt")
    assert ckpt["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())


def test_metrics_and_callbacks(tmp_path, small):
    events = []

    def stop_after_two_epochs(event):
        events.append(event)
        if event["event"] == "epoch" and event["epoch"] == 2:
            raise StopTraining

    summary = train(_cfg(tmp_path, epochs=5), callbacks=[stop_after_two_epochs], dataset=small)
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
        s = train(_cfg(tmp_path / obj, objective=obj, epochs=3, batch_size=32, lr=5e-3, out=None),
                  callbacks=[keep], dataset=ds)
        accs[obj] = s["test_acc"]
    # what an objective does not have is logged as null, not as a fake 0
    assert last["xent"]["reward"] is None and last["xent"]["baseline"] is None
    assert last["pg-no-baseline"]["baseline"] is None and last["pg-no-baseline"]["reward"] > 0.1
    assert 0 < last["pg"]["baseline"] < 1
    # chance is 0.1; measured (seed 0): pg 0.45, pg-no-baseline 0.42, xent 0.70
    assert accs["xent"] > 0.5 and accs["pg"] > 0.25 and accs["pg-no-baseline"] > 0.2, accs


def test_pg_no_baseline_leaves_the_baseline_untrained():
    out = torch.randn(8, 11, requires_grad=True)
    y = torch.randint(0, 10, (8,))
    loss, stats = training.objective_step("pg-no-baseline", out, y)
    loss.backward()
    assert torch.all(out.grad[:, -1] == 0)
    assert math.isnan(stats[2].item()) and stats[5].item() == 0  # no baseline, no BCE
    loss, stats = training.objective_step("pg", out, y)
    assert stats[5].item() > 0


def test_evaluate_matches_a_manual_count(small):
    torch.manual_seed(0)
    model = models.get_model("fast", 10)
    r = training.evaluate(model, small.test_images, small.test_labels, batch_size=50)
    model.eval()
    with torch.no_grad():
        pred = model(data.normalize(small.test_images))[:, :10].argmax(1)
    assert r["n"] == 128 and r["accuracy"] == pytest.approx((pred == small.test_labels).float().mean().item())
    assert model.training is False


@pytest.mark.parametrize("over, match", [
    ({"objective": "sarsa"}, "objective"), ({"lr": -1.0}, "learning rate"), ({"lr": float("nan")}, "learning rate"),
    ({"entropy_weight": -0.1}, "entropy"), ({"batch_size": 0}, "batch size"), ({"epochs": -1}, "epochs"),
    ({"model": "vgg"}, "model"), ({"device": "tpu"}, "device"),
])
def test_bad_config(tmp_path, over, match):
    with pytest.raises(training.ConfigError, match=match):
        train(_cfg(tmp_path, **over), dataset=data.make_synthetic(16, 8))


def test_foreign_checkpoint_is_refused(tmp_path):
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(training.CheckpointError, match="not a pgviz checkpoint"):
        training.load_checkpoint(tmp_path / "other.pt")
    (tmp_path / "junk.pt").write_bytes(b"\x00junk")
    with pytest.raises(training.CheckpointError, match="not a readable checkpoint"):
        training.load_checkpoint(tmp_path / "junk.pt")


# ---------------------------------------------------------------------------
# Precision
# ---------------------------------------------------------------------------
def test_bf16_is_recorded_and_resumes_exactly(tmp_path, small):
    straight = train(_cfg(tmp_path / "a", epochs=2, precision="bf16"), dataset=small)
    train(_cfg(tmp_path / "b", epochs=1, precision="bf16"), dataset=small)
    resumed = train(_cfg(tmp_path / "b", epochs=2, precision="bf16"), dataset=small, resume=True)
    assert straight["precision"] == resumed["precision"] == "bf16"
    assert _same(_params(tmp_path / "a" / "checkpoint.pt"), _params(tmp_path / "b" / "checkpoint.pt"))
    ckpt = training.load_checkpoint(tmp_path / "a" / "checkpoint.pt")
    assert ckpt["precision_used"] == "bf16" and ckpt["config"]["precision"] == "bf16"
    start = json.loads(open(tmp_path / "a" / "metrics.jsonl").readline())
    assert start["event"] == "start" and start["precision_used"] == "bf16"
    # another precision on resume is allowed on purpose, and recorded
    again = train(_cfg(tmp_path / "b", epochs=3, precision="fp32"), dataset=small, resume=True)
    assert again["precision"] == "fp32"
    rows = [json.loads(l) for l in open(tmp_path / "b" / "metrics.jsonl")]
    assert [r.get("precision_changed_from") for r in rows if r["event"] == "start"][-1] == "bf16"


def test_resolve_precision():
    cpu = torch.device("cpu")
    assert training.resolve_precision("fp32", cpu) == "fp32"
    assert training.resolve_precision("bf16", cpu) == "bf16"
    assert training.resolve_precision("auto", cpu) == ("bf16" if training.cpu_has_native_bf16() else "fp32")
    assert training.resolve_precision("auto", torch.device("cuda")) == "bf16"
    with pytest.raises(training.ConfigError, match="precision"):
        training.resolve_precision("fp16", cpu)


def test_evaluation_is_fp32_unless_asked(small):
    torch.manual_seed(0)
    model = models.get_model("fast", 10)
    model.eval()
    with torch.no_grad():
        ref = torch.log_softmax(model(data.normalize(small.test_images[:32]))[:, :10].float(), 1).exp()
    probs, _ = training.predict(model, small.test_images[:32])  # auto: float32 on every machine
    assert torch.equal(probs, ref)
    low, _ = training.predict(model, small.test_images[:32], precision="bf16")
    assert not torch.equal(low, ref) and torch.allclose(low, ref, atol=0.05)


# ---------------------------------------------------------------------------
# Item 10: tests that fail on plausible bugs
# ---------------------------------------------------------------------------
def test_weight_average_is_an_exact_lerp():
    live = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        live.weight.fill_(0.0)
    avg = training.WeightAverage(live, decay=0.99)
    with torch.no_grad():
        live.weight.fill_(1.0)
    avg.update(live)  # d = min(0.99, 2 / 11): avg = d * 0 + (1 - d) * 1
    assert avg.model.weight.item() == pytest.approx(1 - 2 / 11, abs=1e-7)
    avg.update(live)  # d = 3 / 12: avg = d * (9 / 11) + (1 - d) * 1
    assert avg.model.weight.item() == pytest.approx(0.25 * 9 / 11 + 0.75, abs=1e-7)


def test_warmup_starts_at_lr_over_warmup_steps(tmp_path, small):
    assert [training.warmup_lr(s, 1.0, 4) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert training.warmup_lr(0, 0.3, 0) == 0.3
    train(_cfg(tmp_path, epochs=2, log_every=1), dataset=small)
    rows = [json.loads(l) for l in open(tmp_path / "metrics.jsonl")]
    lrs = [r["lr"] for r in rows if r["event"] == "step"]
    assert lrs == pytest.approx([3e-3 * k / 4 for k in (1, 2, 3, 4)] + [3e-3] * 4)


def test_warmup_lr_is_what_adam_used(tmp_path, small):
    used = []
    real = torch.optim.Adam.step

    def step(self, *a, **k):
        used.append(self.param_groups[0]["lr"])
        return real(self, *a, **k)

    torch.optim.Adam.step = step
    try:
        train(_cfg(tmp_path, epochs=1, out=None), dataset=small)
    finally:
        torch.optim.Adam.step = real
    assert used == pytest.approx([3e-3 * k / 4 for k in (1, 2, 3, 4)])


def test_resume_restores_torchs_global_rng(tmp_path, small):
    """Code that draws from torch's global generator (a callback here) sees the same numbers."""
    def drawer(store):
        return lambda e: store.append(torch.rand(()).item()) if e["event"] == "step" else None

    a, b = [], []
    train(_cfg(tmp_path / "a", epochs=2), callbacks=[drawer(a)], dataset=small)
    train(_cfg(tmp_path / "b", epochs=1), callbacks=[drawer([])], dataset=small)
    torch.manual_seed(12345)  # whatever happened in between
    train(_cfg(tmp_path / "b", epochs=2), callbacks=[drawer(b)], dataset=small, resume=True)
    assert len(a) == 8 and b == a[4:]


# ---------------------------------------------------------------------------
# Failure modes (issue 11)
# ---------------------------------------------------------------------------
def _assert_finite_checkpoint(path):
    ckpt = training.load_checkpoint(path)
    assert training._nonfinite(ckpt["model"], ckpt["ema"], ckpt["optimizer"]["state"]) == []
    return ckpt


def test_nonfinite_buffer_is_never_saved(tmp_path, small):
    """The loss stays finite (BatchNorm uses batch statistics in training), but a running
    variance is infinite: the epoch is not saved, the last good checkpoint stays."""
    def poison(event):
        if event["event"] == "epoch" and event["epoch"] == 1:
            bn = next(m for m in event["live_model"].modules() if isinstance(m, torch.nn.BatchNorm2d))
            bn.running_var.fill_(float("inf"))

    with pytest.raises(TrainingDiverged, match=r"non-finite.*running_var.*epoch 1\)") as err:
        train(_cfg(tmp_path, epochs=3), callbacks=[poison], dataset=small)
    assert "\n" not in str(err.value) and "(epoch 2)" in str(err.value)
    assert _assert_finite_checkpoint(tmp_path / "checkpoint.pt")["epoch"] == 1
    rows = [json.loads(l) for l in open(tmp_path / "metrics.jsonl")]
    assert [r["epoch"] for r in rows if r["event"] == "epoch"] == [1]  # no row for the lost epoch


def test_huge_lr_never_leaves_infinite_weights(tmp_path):
    ds = data.make_synthetic(256, 64)
    for lr in (1e8, 1e10):
        out = tmp_path / str(lr)
        try:
            s = train(_cfg(out, epochs=4, lr=lr), dataset=ds)
            assert s["status"] == "finished"
        except TrainingDiverged:
            pass
        if (out / "checkpoint.pt").exists():
            ckpt = _assert_finite_checkpoint(out / "checkpoint.pt")
            net = training.model_from_checkpoint(ckpt)
            r = training.evaluate(net, ds.test_images, ds.test_labels)
            json.dumps(r, allow_nan=False)


def test_divergence_at_the_first_step_claims_no_checkpoint(tmp_path, small, monkeypatch):
    real = training.objective_step
    monkeypatch.setattr(training, "objective_step",
                        lambda *a, **k: (lambda l, s: (l * float("nan"), s * float("nan")))(*real(*a, **k)))
    with pytest.raises(TrainingDiverged, match="no checkpoint was written") as err:
        train(_cfg(tmp_path), dataset=small)
    assert "epoch 0" not in str(err.value) and not (tmp_path / "checkpoint.pt").exists()


def test_epochs_0_writes_the_checkpoint_it_names(tmp_path, small):
    s = train(_cfg(tmp_path, epochs=0), dataset=small)
    assert s["status"] == "finished" and s["step"] == 0
    ckpt = training.load_checkpoint(s["checkpoint"])
    assert ckpt["epoch"] == 0 and ckpt["finished"]
    assert train(_cfg(tmp_path / "none", epochs=0, out=None), dataset=small)["checkpoint"] is None


def test_a_busy_output_folder_is_refused(tmp_path, small):
    with training._OutputDir(tmp_path):
        with pytest.raises(training.ConfigError, match="in use by another pgviz run"):
            train(_cfg(tmp_path), dataset=small)
        assert not (tmp_path / "metrics.jsonl").exists()
    assert train(_cfg(tmp_path, epochs=1), dataset=small)["status"] == "finished"  # free again


def test_temporary_names_are_unique(tmp_path, small):
    (tmp_path / "checkpoint.pt.tmp").mkdir()  # another writer's fixed temp name in the way
    train(_cfg(tmp_path, epochs=1), dataset=small)
    assert (tmp_path / "checkpoint.pt").is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == ["checkpoint.pt.tmp"]


def test_output_folder_is_checked_before_the_data(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    cfg = _cfg(blocker / "out", data=str(tmp_path / "missing.npz"))
    with pytest.raises(training.ConfigError, match="cannot be written"):
        train(cfg)  # not a DataError about the missing file: the folder is checked first


def test_a_failed_write_keeps_the_old_checkpoint(tmp_path, small, monkeypatch):
    fail_torch_save(monkeypatch, on_call=2)
    with pytest.raises(training.OutputError, match="No space left.*checkpoint \\(epoch 1\\) was kept") as err:
        train(_cfg(tmp_path, epochs=3), dataset=small)
    assert "\n" not in str(err.value)
    assert training.load_checkpoint(tmp_path / "checkpoint.pt")["epoch"] == 1
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_the_metrics_row_is_written_before_the_checkpoint(tmp_path, small, monkeypatch):
    """A kill just after the rename must not lose the epoch's row."""
    real = os.replace

    def replace_then_die(src, dst):
        real(src, dst)
        if training.load_checkpoint(dst)["epoch"] == 2:
            raise SystemExit("killed")

    monkeypatch.setattr(training.os, "replace", replace_then_die)
    with pytest.raises(SystemExit):
        train(_cfg(tmp_path, epochs=3), dataset=small)
    rows = [json.loads(l) for l in open(tmp_path / "metrics.jsonl")]
    assert [r["epoch"] for r in rows if r["event"] == "epoch"] == [1, 2]


def test_resume_refuses_other_data(tmp_path, small):
    train(_cfg(tmp_path, epochs=1), dataset=small)
    other = data.make_synthetic(256, 128, seed=1)
    with pytest.raises(training.CheckpointError, match="not the data this run was trained on"):
        train(_cfg(tmp_path, epochs=2), dataset=other, resume=True)
    assert train(_cfg(tmp_path, epochs=2), dataset=small, resume=True)["epochs"] == 2


def test_crafted_checkpoints_are_refused(tmp_path, small):
    train(_cfg(tmp_path / "ok", epochs=1), dataset=small)
    good = torch.load(tmp_path / "ok" / "checkpoint.pt", weights_only=True)
    for name, change, match in [
        ("noconfig", lambda c: c.pop("config"), "no config"),
        ("strlr", lambda c: c["config"].__setitem__("lr", "0.1"), "learning rate"),
        ("noclasses", lambda c: c.pop("n_classes"), "class count"),
        ("nooptim", lambda c: c.pop("optimizer"), "cannot resume"),
    ]:
        bad = {**good, "config": dict(good["config"])}
        change(bad)
        (tmp_path / name).mkdir()
        torch.save(bad, tmp_path / name / "checkpoint.pt")
        with pytest.raises(training.CheckpointError, match=match):
            train(_cfg(tmp_path / name, epochs=2), dataset=small, resume=True)


def test_plain_progress_lines_when_not_a_terminal(tmp_path, small, capsys, monkeypatch):
    monkeypatch.setattr(training._Progress, "interval", 0.0)
    train(_cfg(tmp_path, epochs=1, progress=True), dataset=small)
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 4 and lines[-1].startswith("pgviz: step 4/4 (100%) epoch 1 loss")


def test_lenet_model_needs_32x32_images(tmp_path):
    ds = data.make_synthetic(64, 32, size=16)
    with pytest.raises(data.DataError, match="cannot take 16x16 images"):
        train(_cfg(tmp_path, model="lenet"), dataset=ds)
    assert train(_cfg(tmp_path / "f", epochs=1, model="fast"), dataset=ds)["status"] == "finished"


@pytest.mark.parametrize("over, match", [
    ({"seed": "x"}, "seed"), ({"seed": 2 ** 63}, "seed"), ({"seed": -1}, "seed"),
    ({"epochs": True}, "epochs"), ({"epochs": 2.0}, "epochs"), ({"lr": "0.1"}, "learning rate|lr"),
    ({"lr": True}, "lr"), ({"batch_size": 64.0}, "batch size"), ({"augment": "yes"}, "augment"),
    ({"ema": None}, "ema"), ({"objective": 3}, "objective"), ({"out": 5}, "out"),
])
def test_bad_config_types(tmp_path, over, match):
    with pytest.raises(training.ConfigError, match=match):
        _cfg(tmp_path, **over).validate()


def test_numpy_numbers_are_accepted(tmp_path):
    import numpy as np
    c = _cfg(tmp_path, epochs=np.int64(3), lr=np.float32(0.5)).validate()
    assert type(c.epochs) is int and c.epochs == 3 and type(c.lr) is float


def test_objective_step_and_pg_loss_reject_bad_input():
    out = torch.randn(4, 11)
    y = torch.tensor([0, 1, 2, 3])
    with pytest.raises(ValueError, match="unknown objective"):
        training.objective_step("nope", out, y)
    from pgviz import estimator
    for labels, match in [(torch.tensor([0, 1, 2, -1]), "0..9"), (torch.tensor([0, 1, 2, 10]), "0..9"),
                          (y.float(), "integer"), (y[:, None], "shape")]:
        with pytest.raises(ValueError, match=match):
            estimator.pg_loss(out, labels)
        with pytest.raises(ValueError, match=match):
            training.objective_step("pg", out, labels)
