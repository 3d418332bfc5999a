"""The trainer: objectives, metrics, exact resume, interrupts, divergence (CPU, synthetic data)."""
import json
import math

import pytest
import torch

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
