"""The gradient-noise probe (pgviz.gap): exact expectations on a linear network, the CLI."""
import json
import math
import os
import subprocess
import sys

import pytest
import torch
import torch.nn as nn

from pgviz import data, gap
from pgviz import estimator as E
from pgviz import exact as X

A = 10


def test_logit_estimates_unbiased_and_variances():
    """20000 copies of one image: every estimator's mean is the exact gradient (5 standard
    errors); no-baseline and optimal-constant variances match estimator.exact_variance (5 %)."""
    n = 20000
    logits = torch.tensor([1.0, 0.2, -0.5, 0.0, 0.3, -1.0, 0.1, 0.0, 0.5, -0.2])
    y = torch.full((n,), 3)
    rewards = nn.functional.one_hot(torch.tensor(3), A).double()
    draws = gap.logit_estimates(logits.expand(n, -1), torch.full((n,), 0.4), y, rloo_ks=(2, 4),
                                generator=torch.Generator().manual_seed(1))
    exact = X.exact_gradient(logits.double(), rewards)
    for name, d in draws.items():
        d = d.double()
        se = d.std(0) / math.sqrt(n)
        assert ((d.mean(0) - exact).abs() <= 5 * se + 1e-9).all(), name
    tr = {k: v.double().var(0).sum().item() for k, v in draws.items()}
    assert tr["no-baseline"] == pytest.approx(X.exact_variance(logits.double(), rewards, 0.0).item(), rel=0.05)
    b_star = X.optimal_baseline(logits.double(), rewards)
    assert tr["optimal-constant"] == pytest.approx(X.exact_variance(logits.double(), rewards, b_star).item(), rel=0.05)
    assert tr["rloo-2"] == pytest.approx(X.rloo_exact_moments(logits, rewards, 2)[1].item(), rel=0.05)
    assert tr["rloo-4"] < tr["rloo-2"] < tr["no-baseline"]


def test_one_sample_estimators_share_their_draw():
    """no-baseline, learned-V and optimal-constant use one sampled action per image: with
    V = 0 learned-V equals no-baseline exactly; where the sampled label is right, optimal-constant is no-baseline
    times (1 - b*)."""
    logits = torch.randn(50, A, generator=torch.Generator().manual_seed(0))
    y = torch.randint(0, A, (50,), generator=torch.Generator().manual_seed(1))
    d = gap.logit_estimates(logits, torch.zeros(50), y, rloo_ks=(2,), generator=torch.Generator().manual_seed(2))
    assert torch.equal(d["learned-V"], d["no-baseline"])
    b_star = X.optimal_baseline(logits, nn.functional.one_hot(y, A).float())
    score_nb = d["no-baseline"]
    score_oc = d["optimal-constant"]
    # both are (R - b)(e_a - pi) with the same a: where R = 1 their ratio is (1 - b*) on every label
    ratio = score_oc / score_nb.where(score_nb != 0, torch.ones_like(score_nb))
    hit = score_nb.abs().sum(1) > 0  # images whose sampled label was right (R = 1)
    assert hit.any()
    r = ratio[hit]
    assert torch.allclose(r, r[:, :1].expand_as(r), atol=1e-5)  # (1 - b*) / 1 on every label
    assert torch.allclose(r[:, 0], 1 - b_star[hit], atol=1e-5)


def test_the_draws_happen_on_the_generators_device(monkeypatch):
    """Under MPS the probe's generator is a CPU one (torch has no MPS generator) while the
    logits are on MPS, and torch.multinomial refuses a generator on another device than its
    input.  Emulated on the CPU: a generator that reports another device ('meta') and a
    multinomial that refuses a mismatch as torch does."""
    real = torch.Generator().manual_seed(0)

    class Elsewhere:
        device = torch.device("meta")

    seen = []

    def multinomial(probs, n, replacement=False, *, generator=None):
        if generator is not None and probs.device != generator.device:
            raise RuntimeError(f"Expected a '{probs.device.type}' device type for generator "
                               f"but found '{generator.device.type}'")
        seen.append(probs.device.type)
        return torch.randint(0, probs.shape[1], (probs.shape[0], n), generator=real)

    monkeypatch.setattr(torch, "multinomial", multinomial)
    logits, y = torch.randn(5, 4), torch.tensor([0, 1, 2, 3, 0])
    d = gap.logit_estimates(logits, torch.zeros(5), y, rloo_ks=(2, 4), generator=Elsewhere())
    assert seen == ["meta"] * 3  # the shared draw and one group per rloo-K
    assert set(d) == {"no-baseline", "learned-V", "optimal-constant", "rloo-2", "rloo-4"}
    for v in d.values():  # back on the logits' device
        assert v.device == logits.device and v.shape == (5, 4) and torch.isfinite(v).all()


def test_trace_interval_and_ratio_read_old_rows():
    old = {"estimators": {"no-baseline": {"trace_cov": 2.0}, "learned-V": {"trace_cov": 1.0}}}
    assert gap.trace_interval(old, "no-baseline") == (2.0, None)
    assert gap.trace_ratio(old, "learned-V", "no-baseline") == (0.5, None)
    new = {"estimators": {"a": {"trace_cov": 2.0, "trace_cov_se": 0.2}, "b": {"trace_cov": 1.0, "trace_cov_se": 0.1}}}
    r, se = gap.trace_ratio(new, "b", "a")
    assert r == 0.5 and se == pytest.approx(0.5 * math.sqrt(0.02))


class Linear(nn.Module):
    """logits = W x + c on the normalised pixels: the parameter gradient is (1/B) sum_i G_i (x_i, 1)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(3 * 8 * 8, A + 1)
        with torch.no_grad():
            self.fc.weight.mul_(3.0)

    def forward(self, x):
        return self.fc(x.reshape(len(x), -1))


def _images(b, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randint(0, 256, (b, 8, 8, 3), generator=g, dtype=torch.uint8),
            torch.randint(0, A, (b,), generator=g))


def test_probe_matches_exact_trace_on_a_linear_network():
    """For a linear network, trace Cov = (1/B^2) sum_i trVar_i (|x_i|^2 + 1) exactly, with trVar_i
    the logit-space variance of estimator.exact_variance / rloo_exact_moments.  The probe's
    estimate from M = 300 redraws lies within 15 % of it; the exact gradient's norm is exact."""
    net = Linear()
    images, labels = _images(8)
    r = gap.probe(net, images, labels, samples=300, rloo_ks=(2,), seed=0)
    x = data.normalize(images).reshape(8, -1).double()
    with torch.no_grad():
        logits = net(data.normalize(images)).double()[:, :-1]
    feat = (x * x).sum(1) + 1.0
    rewards = nn.functional.one_hot(labels, A).double()
    expect = {"no-baseline": 0.0, "optimal-constant": 0.0, "rloo-2": 0.0}
    for i in range(8):
        expect["no-baseline"] += X.exact_variance(logits[i], rewards[i], 0.0).item() * feat[i].item()
        b = X.optimal_baseline(logits[i], rewards[i])
        expect["optimal-constant"] += X.exact_variance(logits[i], rewards[i], b).item() * feat[i].item()
        expect["rloo-2"] += X.rloo_exact_moments(logits[i], rewards[i], 2)[1].item() * feat[i].item()
    for name, v in expect.items():
        assert r["estimators"][name]["trace_cov"] == pytest.approx(v / 64, rel=0.15), name
    # |g*|: the autograd gradient of the expected reward
    net.zero_grad()
    E.expected_reward(net(data.normalize(images)), labels).backward()
    g = torch.cat([p.grad.flatten() for p in net.parameters()])
    assert r["exact_norm"] == pytest.approx(g.norm().item(), rel=1e-5)
    assert r["expected_reward"] == pytest.approx(torch.softmax(logits, 1).gather(1, labels[:, None]).mean().item(), rel=1e-5)
    for name, e in r["estimators"].items():
        assert -1 <= e["cosine"] <= e["cosine_of_mean"] <= 1, name  # averaging M draws points closer
        assert e["snr"] == pytest.approx(r["exact_norm"] ** 2 / e["trace_cov"])
    assert r["estimators"]["rloo-2"]["reward_queries"] == 2 and r["estimators"]["learned-V"]["reward_queries"] == 1


def test_probe_standard_error_matches_the_spread_over_seeds():
    """The reported trace_cov_se is the spread of trace_cov over independent probes: over 40
    seeds with M = 32 redraws, the standard deviation of the traces is within 35 % of the
    mean reported error, for no baseline and for rloo-2."""
    net = Linear()
    images, labels = _images(8)
    rows = [gap.probe(net, images, labels, samples=32, rloo_ks=(2,), seed=s) for s in range(40)]
    for name in ("no-baseline", "rloo-2"):
        traces = torch.tensor([r["estimators"][name]["trace_cov"] for r in rows])
        ses = torch.tensor([r["estimators"][name]["trace_cov_se"] for r in rows])
        assert float(traces.std()) == pytest.approx(float(ses.mean()), rel=0.35), name
    assert rows[0]["samples"] == 32


class Bias(nn.Module):
    """Outputs one learned row ``c`` for every image: the parameter gradient of a logit
    direction ``G`` on one image is ``G`` itself (and 0 for the value column)."""

    def __init__(self, n=2):
        super().__init__()
        self.c = nn.Parameter(torch.zeros(n + 1))

    def forward(self, x):
        return self.c.expand(len(x), -1)


def test_probe_trace_is_the_unbiased_one_of_known_draws(monkeypatch):
    """Planted bug: the covariance trace divided by M instead of M - 1.  Three known draws
    g = (1, 0), (3, 0), (2, 3) (one image, a network whose parameter gradient is the draw):
    mean (2, 1), squared deviations d = 2, 2, 4, so trace_cov = 8 / (3 - 1) = 4 (not 8 / 3),
    trace_cov_se = 3/2 * sd(d) / sqrt(3) = 3/2 * sqrt(4/3) / sqrt(3) = 1, snr = |g*|^2 / 4."""
    known = iter([[1.0, 0.0], [3.0, 0.0], [2.0, 3.0]])

    def draws(logits, baseline, labels, *, rloo_ks, generator):
        g = torch.tensor([next(known)])
        return {name: g for name in gap.ESTIMATORS}

    monkeypatch.setattr(gap, "logit_estimates", draws)
    images, labels = torch.zeros(1, 8, 8, 3, dtype=torch.uint8), torch.tensor([0])
    r = gap.probe(Bias(), images, labels, samples=3, rloo_ks=(), seed=0)
    # g* on one image with logits 0: pi = (1/2, 1/2), R = e_0, so g* = pi_0 (e_0 - pi) = (1/4, -1/4)
    assert r["exact_norm"] == pytest.approx(math.sqrt(1 / 8))
    for name in gap.ESTIMATORS:
        e = r["estimators"][name]
        assert e["trace_cov"] == pytest.approx(4.0), name
        assert e["trace_cov_se"] == pytest.approx(1.0), name
        assert e["snr"] == pytest.approx((1 / 8) / 4.0), name
        # cos(mean, g*) = ((2, 1) . (1, -1)) / (sqrt(5) sqrt(2)) = 1 / sqrt(10)
        assert e["cosine_of_mean"] == pytest.approx(1 / math.sqrt(10)), name


def test_probe_leaves_the_network_alone_and_is_seeded():
    from pgviz.models import get_model

    torch.manual_seed(0)
    net = get_model("fast").eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    images, labels = _images(4)
    images = torch.randint(0, 256, (4, 32, 32, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    r1 = gap.probe(net, images, labels, samples=2, rloo_ks=(2,), seed=3)
    r2 = gap.probe(net, images, labels, samples=2, rloo_ks=(2,), seed=3)
    assert r1 == r2
    assert not net.training
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k
    with pytest.raises(ValueError, match="samples >= 2"):
        gap.probe(net, images, labels, samples=1)


def test_parse_epochs():
    assert gap.parse_epochs("5,1, 10,5") == [1, 5, 10]
    for bad in ("", "0,1", "a", "1;2"):
        with pytest.raises(ValueError):
            gap.parse_epochs(bad)


def test_probe_recorder_during_training(tmp_path):
    from pgviz.train import TrainConfig, train

    ds = data.make_synthetic(128, 32)
    rec = gap.ProbeRecorder([2], ds.test_images[:8], ds.test_labels[:8], out=tmp_path, samples=2, rloo_ks=(2,))
    train(TrainConfig(objective="pg", epochs=2, batch_size=64, progress=False, out=str(tmp_path)),
          [rec], dataset=ds)
    rows = gap.read_probes(tmp_path / "metrics.jsonl")
    assert [r["epoch"] for r in rows] == [2] and len(rec.rows) == 1
    assert rows[0]["step"] == 4 and rows[0]["batch_size"] == 8
    assert set(rows[0]["estimators"]) == {"no-baseline", "learned-V", "optimal-constant", "rloo-2"}


ENV = {**os.environ, "PGVIZ_DATA": "synthetic", "OMP_NUM_THREADS": "2", "OMP_WAIT_POLICY": "PASSIVE"}


def _pgviz(*args):
    return subprocess.run([sys.executable, "-m", "pgviz", *map(str, args)], capture_output=True, text=True,
                          env=ENV, timeout=300)


def test_cli_probe_and_bad_input(tmp_path):
    out = tmp_path / "run"
    r = _pgviz("train", "--objective", "rloo", "--samples", 2, "--data", "synthetic", "--out", out,
               "--epochs", 1, "--batch-size", 64, "--quiet", "--probe-epochs", "1")
    assert r.returncode == 0, r.stderr
    assert len(gap.read_probes(out)) == 1
    r = _pgviz("probe", "--checkpoint", out / "checkpoint.pt", "--data", "synthetic", "--samples", 2,
               "--batch-size", 8, "--rloo", "2")
    assert r.returncode == 0, r.stderr
    row = json.loads(r.stdout.strip().splitlines()[-1])
    assert row["batch_size"] == 8 and row["samples"] == 2 and row["objective"] == "rloo" and row["epoch"] == 1
    assert set(row["estimators"]) == {"no-baseline", "learned-V", "optimal-constant", "rloo-2"}
    for args in (["--samples", 1], ["--rloo", "1"], ["--rloo", "x"], ["--batch-size", 0]):
        r = _pgviz("probe", "--checkpoint", out / "checkpoint.pt", *args)
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, args
    r = _pgviz("probe", "--checkpoint", tmp_path / "missing.pt")
    assert r.returncode == 2 and "checkpoint not found" in r.stderr
    r = _pgviz("train", "--objective", "rloo", "--samples", 1, "--out", tmp_path / "x")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "samples K >= 2" in r.stderr


def test_difference_of_settings():
    rows = [{"setting": "xent", "test_acc_mean": 0.75, "test_acc_std": 0.03, "seeds": 3},
            {"setting": "pg", "test_acc_mean": 0.60, "test_acc_std": 0.04, "seeds": 3}]
    pts, se = gap.difference(rows, "xent", "pg")
    assert pts == pytest.approx(15.0)
    assert se == pytest.approx(100 * math.sqrt((0.03 ** 2 + 0.04 ** 2) / 3))
    with pytest.raises(KeyError, match="rloo-2"):
        gap.difference(rows, "xent", "rloo-2")


def _live_and_average_differ(folder):
    """A checkpoint (an untrained run, 0 epochs) whose weight average is not its live
    network: every float tensor of the average scaled by 0.5.  Returns its path and the two."""
    from helpers import train_config

    from pgviz.models import get_model
    from pgviz.train import train

    train(train_config(folder, epochs=0, model="lenet"), dataset=data.make_synthetic(64, 32))
    path = folder / "checkpoint.pt"
    ckpt = torch.load(path, weights_only=True)
    ckpt.pop("checksum")  # crafted, as an old checkpoint (no checksum) would be
    ckpt["ema"] = {k: v * 0.5 if v.is_floating_point() else v for k, v in ckpt["model"].items()}
    torch.save(ckpt, path)
    nets = []
    for sd in (ckpt["model"], ckpt["ema"]):
        net = get_model(ckpt["config"]["model"], ckpt["n_classes"])
        net.load_state_dict(sd)
        nets.append(net.eval())
    return path, nets[0], nets[1]


def test_probe_measures_the_live_weights_not_the_average(tmp_path, capsys):
    """Planted bug: ``pgviz probe`` measured the weight average.  The probe is about the
    gradient of the network being trained, so its numbers are those of the live weights of
    a checkpoint whose live weights and average differ."""
    from pgviz.cli import main

    path, live, average = _live_and_average_differ(tmp_path)
    assert main(["probe", "--checkpoint", str(path), "--data", "synthetic", "--device", "cpu",
                 "--samples", "2", "--batch-size", "8", "--rloo", "2", "--seed", "1"]) == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    ds = data.load_dataset("synthetic")
    images, labels = ds.test_images[:8], ds.test_labels[:8]
    want = gap.probe(live, images, labels, samples=2, rloo_ks=(2,), seed=1)
    with torch.no_grad():  # the two networks differ on these images
        x = data.normalize(images)
        assert not torch.allclose(live(x), average(x), rtol=1e-3, atol=1e-3)
    assert row["exact_norm"] == pytest.approx(want["exact_norm"], rel=1e-5)
    assert row["expected_reward"] == pytest.approx(want["expected_reward"], rel=1e-5)
    for name, e in want["estimators"].items():
        assert row["estimators"][name]["trace_cov"] == pytest.approx(e["trace_cov"], rel=1e-4), name


def test_probe_recorder_measures_the_live_network(tmp_path):
    """The training callback probes ``live_model`` (the network being trained), not ``model``
    (the weight average the epoch's accuracy is measured on)."""
    _, live, average = _live_and_average_differ(tmp_path)
    images, labels = _images(4)
    images = torch.randint(0, 256, (4, 32, 32, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    rec = gap.ProbeRecorder([1], images, labels, samples=2, rloo_ks=(2,), seed=5)
    rec({"event": "epoch", "epoch": 1, "step": 4, "model": average, "live_model": live})
    want = gap.probe(live, images, labels, samples=2, rloo_ks=(2,), seed=6)  # seed + epoch
    with torch.no_grad():  # the two networks differ on these images
        x = data.normalize(images)
        assert not torch.allclose(live(x), average(x), rtol=1e-3, atol=1e-3)
    (row,) = rec.rows
    assert row["epoch"] == 1 and row["step"] == 4
    assert row["exact_norm"] == pytest.approx(want["exact_norm"], rel=1e-6)
    for name, e in want["estimators"].items():
        assert row["estimators"][name]["trace_cov"] == pytest.approx(e["trace_cov"], rel=1e-6), name
