"""The gap chapter's objectives: pg-exact, rloo (with group norm) and the value function."""
import itertools
import math

import pytest
import torch
import torch.nn as nn

from pgviz import estimator as E
from pgviz import exact as X
from pgviz import objectives as O
from pgviz.train import ConfigError, TrainConfig

A = 5  # actions in the small synthetic problems


def _net(seed, in_dim=6, hidden=8, n=A):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.Tanh(), nn.Linear(hidden, n + 1)).double()


def _batch(seed, b=7, in_dim=6, n=A):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, in_dim, generator=g, dtype=torch.float64), torch.randint(0, n, (b,), generator=g)


def _no_v(out):
    """The outputs with the V column detached: a loss then backpropagates its policy part only."""
    return torch.cat([out[:, :-1], out[:, -1:].detach()], 1)


def _param_grad(net, loss):
    return torch.cat([g.flatten() for g in torch.autograd.grad(loss, list(net.parameters()))])


# --- pg-exact ----------------------------------------------------------------
def test_pg_exact_logit_gradient_is_exact_gradient():
    """d policy_loss / d z = -exact_gradient / B, row by row (eq:exact-pg)."""
    x, y = _batch(0)
    z = (torch.randn(7, A + 1, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
         ).requires_grad_()
    r = E.pg_exact_loss(z, y, entropy_weight=0.0)
    (gz,) = torch.autograd.grad(r.loss, z)
    for i in range(len(y)):
        rewards = (torch.arange(A) == y[i]).double()
        expect = -X.exact_gradient(z[i, :-1].detach(), rewards) / len(y)
        torch.testing.assert_close(gz[i, :-1], expect, rtol=1e-12, atol=1e-14)
    # the V column: BCE towards pi_y, d / d v = (sigmoid(v) - pi_y) / B
    pi_y = torch.softmax(z[:, :-1].detach(), 1).gather(1, y[:, None]).squeeze(1)
    torch.testing.assert_close(gz[:, -1], (torch.sigmoid(z[:, -1].detach()) - pi_y) / len(y))
    # and it is pi_y (onehot(y) - pi) in closed form
    pi = torch.softmax(z[:, :-1].detach(), 1)
    pi_y = pi.gather(1, y[:, None])
    onehot = torch.nn.functional.one_hot(y, A).double()
    torch.testing.assert_close(gz[:, :-1], -(pi_y * (onehot - pi)) / len(y), rtol=1e-12, atol=1e-14)


def test_pg_exact_parameter_gradient_equals_expected_reward_gradient_and_weighted_xent():
    net = _net(2)
    x, y = _batch(3)
    out = net(x)
    r = E.pg_exact_loss(_no_v(out), y, entropy_weight=0.0)
    g_pg = _param_grad(net, r.loss)
    g_exact = _param_grad(net, -E.expected_reward(net(x), y))  # autograd of sum_a pi_a R_a
    torch.testing.assert_close(g_pg, g_exact, rtol=1e-10, atol=1e-13)
    # = cross-entropy weighted by the detached pi_y
    out = net(x)
    logp = torch.log_softmax(out[:, :-1], 1).gather(1, y[:, None]).squeeze(1)
    xent_w = (torch.nn.functional.cross_entropy(out[:, :-1], y, reduction="none") * logp.exp().detach()).mean()
    torch.testing.assert_close(g_pg, _param_grad(net, xent_w), rtol=1e-10, atol=1e-13)
    # and its reward statistic is the expected reward, its V head trains towards pi_y
    assert r.rewards.mean().item() == pytest.approx(E.expected_reward(out.detach(), y).item(), rel=1e-12)


def test_pg_exact_objective_step_stats():
    out = torch.zeros(4, A + 1)
    y = torch.tensor([0, 1, 2, 3])
    loss, stats = O.objective_step("pg-exact", out, y, entropy_weight=0.0)
    s = {k: v.item() for k, v in stats.items()}
    assert s["reward"] == pytest.approx(1 / A)  # uniform policy: pi_y = 1/5
    assert s["policy_loss"] == pytest.approx(-(1 / A) * math.log(1 / A))
    assert s["baseline"] == pytest.approx(0.5)
    assert s["baseline_loss"] == pytest.approx(-(0.2 * math.log(0.5) + 0.8 * math.log(0.5)))


# --- rloo ----------------------------------------------------------------------
def test_rloo_advantages_leave_one_out():
    r = torch.tensor([[1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    adv = E.rloo_advantages(r)
    torch.testing.assert_close(adv[0], torch.tensor([1.0, -1 / 3, -1 / 3, -1 / 3]))
    torch.testing.assert_close(adv[1], torch.tensor([2 / 3, 2 / 3, -2 / 3, -2 / 3]))
    assert adv[2].abs().max().item() == 0.0
    # explicit leave-one-out means agree
    for row, a in zip(r, adv):
        for k in range(4):
            others = torch.cat([row[:k], row[k + 1:]])
            assert a[k].item() == pytest.approx(row[k].item() - others.mean().item())


def test_group_norm_divides_by_group_std():
    r = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    adv = E.rloo_advantages(r, group_norm=True, eps=1e-4)
    std = r[0].std().item()  # sqrt(1/4 * ... ) unbiased: 0.5
    assert std == pytest.approx(0.5)
    torch.testing.assert_close(adv[0], E.rloo_advantages(r)[0] / (0.5 + 1e-4))
    assert adv[1].abs().max().item() == 0.0  # an all-equal group gives no signal, no NaN
    with pytest.raises(ValueError):
        E.rloo_advantages(torch.ones(3, 1))


@pytest.mark.parametrize("k", [2, 3, 4])
def test_rloo_unbiased_exactly_over_all_tuples(k):
    logits = torch.tensor([0.3, -0.2, 1.1, 0.0], dtype=torch.float64)
    rewards = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=torch.float64)
    mean, var = X.rloo_exact_moments(logits, rewards, k)
    torch.testing.assert_close(mean, X.exact_gradient(logits, rewards), rtol=1e-12, atol=1e-14)
    # a graded (non 0/1) reward too
    graded = torch.tensor([0.5, -1.0, 2.0, 0.25], dtype=torch.float64)
    mean, _ = X.rloo_exact_moments(logits, graded, k)
    torch.testing.assert_close(mean, X.exact_gradient(logits, graded), rtol=1e-12, atol=1e-14)


def test_rloo_variance_below_one_sample_estimator():
    logits = torch.tensor([0.3, -0.2, 1.1, 0.0], dtype=torch.float64)
    rewards = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=torch.float64)
    one = X.exact_variance(logits, rewards, 0.0).item()
    best_constant = X.exact_variance(logits, rewards, X.optimal_baseline(logits, rewards)).item()
    vs = [X.rloo_exact_moments(logits, rewards, k)[1].item() for k in (2, 3, 4)]
    assert vs[0] < one  # K = 2 beats one sample without a baseline (0.128 < 0.152 here)
    assert vs[0] > vs[1] > vs[2] > 0  # and more samples keep helping
    # ... but an oracle per-image constant b* with K independent samples does better still:
    # the leave-one-out baseline is itself estimated from K - 1 noisy rewards
    for k, v in zip((2, 3, 4), vs):
        assert v > best_constant / k
    assert vs == pytest.approx([0.128243119, 0.059271247, 0.037897394], rel=1e-8)
    # K = 2 in closed form: (R1 - R2)^2 / 4 |(e_a1 - e_a2)|^2 / ... checked by brute force below
    pi = torch.softmax(logits, 0)
    tot, m2 = torch.zeros(4, dtype=torch.float64), 0.0
    for a, b in itertools.product(range(4), repeat=2):
        e = torch.eye(4, dtype=torch.float64)
        est = 0.5 * ((rewards[a] - rewards[b]) * (e[a] - pi) + (rewards[b] - rewards[a]) * (e[b] - pi))
        tot += pi[a] * pi[b] * est
        m2 += (pi[a] * pi[b] * (est * est).sum()).item()
    assert m2 - (tot * tot).sum().item() == pytest.approx(vs[0], rel=1e-12)


def test_rloo_monte_carlo_matches_exact_moments():
    """Monte Carlo, n = 200000 estimates: the mean lies within 5 standard errors of exact."""
    logits = torch.tensor([0.3, -0.2, 1.1, 0.0, -1.0], dtype=torch.float64)
    rewards = torch.tensor([0.0, 1.0, 0.0, 0.0, 0.0], dtype=torch.float64)
    n = 200_000
    est = X.rloo_estimates(logits, rewards, 4, n, generator=torch.Generator().manual_seed(0))
    se = est.std(0) / math.sqrt(n)
    err = (est.mean(0) - X.exact_gradient(logits, rewards)).abs()
    assert (err < 5 * se + 1e-12).all()
    exact_var = X.exact_variance(logits, rewards, 0.0).item()
    assert est.var(0).sum().item() < exact_var


def test_rloo_loss_logit_gradient_matches_formula():
    z = torch.randn(3, A + 1, dtype=torch.float64, generator=torch.Generator().manual_seed(5)).requires_grad_()
    y = torch.tensor([0, 2, 4])
    actions = torch.tensor([[0, 1, 0], [3, 3, 2], [1, 1, 1]])
    r = E.rloo_loss(_no_v(z), y, samples=3, actions=actions, entropy_weight=0.0)
    (gz,) = torch.autograd.grad(r.loss, z)
    pi = torch.softmax(z[:, :-1].detach(), 1)
    rew = (actions == y[:, None]).double()
    adv = E.rloo_advantages(rew)
    expect = -(adv[..., None] * (torch.nn.functional.one_hot(actions, A).double() - pi[:, None])).mean(1) / 3
    torch.testing.assert_close(gz[:, :-1], expect, rtol=1e-12, atol=1e-14)
    assert r.rewards.tolist() == [[1.0, 0.0, 1.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]]


def test_rloo_k1_refused():
    with pytest.raises(ValueError, match="samples >= 2"):
        E.rloo_loss(torch.zeros(2, A + 1), torch.tensor([0, 1]), samples=1)
    with pytest.raises(ConfigError, match="rloo needs --samples K >= 2"):
        TrainConfig(objective="rloo", options={"samples": 1}).validate()
    with pytest.raises(ConfigError, match="rloo needs --samples K >= 2"):
        TrainConfig(objective="rloo").validate()  # no default K
    with pytest.raises(ConfigError, match="applies to --objective rloo only"):
        TrainConfig(objective="pg", options={"samples": 4}).validate()
    with pytest.raises(ConfigError, match="--group-norm applies"):
        TrainConfig(objective="xent", options={"group_norm": True}).validate()
    with pytest.raises(ConfigError, match="samples must be a whole number"):
        TrainConfig(objective="rloo", options={"samples": 2.5}).validate()
    assert TrainConfig(objective="rloo", options={"samples": 2, "group_norm": True}).validate().options == \
        {"samples": 2, "group_norm": True}
    assert TrainConfig(objective="value").validate().options == {"epsilon": 0.2}
    assert TrainConfig(objective="pg").validate().options == {}


def test_rloo_objective_step_stats_and_determinism():
    out = torch.zeros(64, A + 1)
    y = torch.zeros(64, dtype=torch.long)
    l1, s1 = O.objective_step("rloo", out, y, samples=4, generator=torch.Generator().manual_seed(0))
    l2, s2 = O.objective_step("rloo", out, y, samples=4, generator=torch.Generator().manual_seed(0))
    assert s1.keys() == s2.keys() and all(torch.equal(s1[k], s2[k]) for k in s1)
    s = {k: v.item() for k, v in s1.items()}
    assert 0.1 < s["reward"] < 0.3  # 256 draws of a uniform 1-in-5 guess
    assert s["baseline"] == pytest.approx(0.5)


# --- the value function ----------------------------------------------------------
def test_value_loss_trains_only_the_taken_action():
    z = torch.zeros(2, A + 1, requires_grad=True)
    y = torch.tensor([1, 3])
    r = E.value_loss(z, y, actions=torch.tensor([1, 0]))
    assert r.rewards.tolist() == [1.0, 0.0]
    assert r.loss.item() == pytest.approx(math.log(2))  # sigmoid(0) = 1/2 for both
    (gz,) = torch.autograd.grad(r.loss, z)
    expect = torch.zeros(2, A + 1)
    expect[0, 1] = (0.5 - 1.0) / 2  # d BCE / d logit = sigmoid - R, mean over 2
    expect[1, 0] = (0.5 - 0.0) / 2
    torch.testing.assert_close(gz, expect)


def test_value_policy_is_epsilon_greedy():
    z = torch.zeros(4000, A + 1)
    z[:, 2] = 5.0  # action 2 looks best everywhere
    y = torch.full((4000,), 2)
    g = torch.Generator().manual_seed(0)
    greedy = E.value_loss(z, y, epsilon=0.0, generator=g)
    assert (greedy.actions == 2).all()
    eps = E.value_loss(z, y, epsilon=0.2, generator=g)
    share = (eps.actions != 2).float().mean().item()
    assert share == pytest.approx(0.2 * (A - 1) / A, abs=0.02)  # explore, then miss 4 of 5 times
    loss, stats = O.objective_step("value", z, y, epsilon=0.2, generator=g)
    s = {k: v.item() for k, v in stats.items()}
    assert s["train_acc"] == 1.0 and "entropy" not in s and "baseline" not in s  # not measured
    with pytest.raises(ConfigError, match="epsilon"):
        TrainConfig(objective="value", options={"epsilon": 1.5}).validate()


@pytest.mark.parametrize("n", [2, A, 10])
def test_value_exploration_tries_every_action(n):
    """Planted bug: the random action drawn one short (``randint(0, n - 1)``) never tries the
    last action.  With epsilon = 1 every action is random: over 3,000 seeded draws each of
    the ``n`` actions appears, about 3,000 / n times (within 5 standard deviations)."""
    b = 3000
    z = torch.zeros(b, n + 1)
    z[:, 0] = 5.0  # greedy would always take action 0
    r = E.value_loss(z, torch.zeros(b, dtype=torch.long), epsilon=1.0, generator=torch.Generator().manual_seed(0))
    counts = torch.bincount(r.actions, minlength=n)
    assert len(counts) == n and int(counts.sum()) == b
    assert sorted(set(r.actions.tolist())) == list(range(n))  # the last action n - 1 included
    sd = math.sqrt(b * (1 / n) * (1 - 1 / n))
    assert (counts.double() - b / n).abs().max() < 5 * sd, counts.tolist()


def test_every_objective_declares_the_statistics_its_step_returns_and_its_queries():
    out = torch.randn(16, 11)
    y = torch.randint(0, 10, (16,))
    given = {"rloo": {"samples": 2}, "teacher-student": {"teacher": "teacher.pt"}}
    for name, entry in O.OBJECTIVES.items():
        options = O.resolve_options(name, given.get(name, {}))
        kw = {}
        if entry.prepare is not None:  # teacher-student: a stand-in teacher, uniform over the classes
            kw = {"inputs": torch.zeros(16, 3, 32, 32),
                  "prepared": {"teacher_probs": lambda x: torch.full((len(x), 10), 0.1)}}
        _, stats = O.objective_step(name, out, y, generator=torch.Generator().manual_seed(0), **kw, **options)
        assert set(stats) == O.measured(name) == {"loss", "train_acc", *entry.stats}, name
        assert O.stat_names(name)[:len(O.STAT_NAMES)] == O.STAT_NAMES
        assert O.color(name).startswith("#") and entry.label
    assert O.reward_queries("rloo", {"samples": 8}) == 8 and O.reward_queries("pg") == 1
    assert O.reward_queries("pg-exact") == 10 and O.reward_queries("xent") is None
    # a saved config, as the gap chapter reads it: new format and the old top-level one
    assert O.reward_queries({"objective": "rloo", "options": {"samples": 4}}) == 4
    assert O.reward_queries({"objective": "rloo", "samples": 8, "group_norm": True, "epsilon": 0.2}) == 8
    assert O.reward_queries({"objective": "pg", "samples": 1, "group_norm": False, "epsilon": 0.2}) == 1
    assert O.reward_queries(TrainConfig(objective="rloo", options={"samples": 2})) == 2


def test_colours_of_objectives_and_their_settings():
    """The gap chapter's colours, one per setting, the same in every figure."""
    assert O.color("xent") == "#000000" and O.color("pg") == "#1f77b4" and O.color("pg-no-baseline") == "#9a9a9a"
    assert O.color("pg-exact") == "#8c564b" and O.color("value") == "#17becf"
    assert [O.color(f"rloo-{k}") for k in (2, 4, 8)] == ["#c5b0d5", "#9467bd", "#5b2c86"]
    assert O.color("grpo-4") == "#e377c2"
    assert O.color("no-baseline") == "#9a9a9a" and O.color("learned-V") == "#1f77b4"
    assert O.color("optimal-constant") == "#2ca02c"
    assert O.color("nope") is None and O.color("nope", "C3") == "C3"


@pytest.mark.parametrize("objective,extra", [("pg-exact", {}), ("rloo", {"samples": 2}),
                                             ("rloo", {"samples": 3, "group_norm": True}), ("value", {})])
def test_new_objectives_train_on_synthetic(objective, extra):
    from pgviz.data import load_dataset
    from pgviz.train import train

    ds = load_dataset("synthetic")
    s = train(TrainConfig(objective=objective, epochs=1, batch_size=64, progress=False, options=extra),
              dataset=ds)
    assert s["status"] == "finished" and s["objective"] == objective and s["step"] > 0


def test_pg_no_baseline_leaves_the_baseline_untrained():
    out = torch.randn(8, 11, requires_grad=True)
    y = torch.randint(0, 10, (8,))
    loss, stats = O.objective_step("pg-no-baseline", out, y)
    loss.backward()
    assert torch.all(out.grad[:, -1] == 0)
    assert "baseline" not in stats and stats["baseline_loss"].item() == 0  # no baseline, no BCE
    loss, stats = O.objective_step("pg", out, y)
    assert stats["baseline_loss"].item() > 0 and 0 < stats["baseline"].item() < 1


def test_objective_step_and_pg_loss_reject_bad_input():
    out = torch.randn(4, 11)
    y = torch.tensor([0, 1, 2, 3])
    with pytest.raises(ValueError, match="unknown objective"):
        O.objective_step("nope", out, y)
    for labels, match in [(torch.tensor([0, 1, 2, -1]), "0..9"), (torch.tensor([0, 1, 2, 10]), "0..9"),
                          (y.float(), "integer"), (y[:, None], "shape")]:
        with pytest.raises(ValueError, match=match):
            E.pg_loss(out, labels)
        with pytest.raises(ValueError, match=match):
            O.objective_step("pg", out, labels)


# --- the registry: an objective added through its entry alone ------------------
def _toy_step(outputs, labels, *, entropy_weight, generator, scale, hard):
    """A toy objective: REINFORCE without baseline on one sampled label, scaled."""
    log_probs = torch.log_softmax(outputs[:, :-1], 1)
    actions = torch.multinomial(log_probs.detach().exp(), 1, generator=generator).squeeze(1)
    rewards = (actions == labels).float()
    loss = -scale * (rewards * log_probs.gather(1, actions[:, None]).squeeze(1)).mean()
    if hard:
        loss = loss * 2
    return loss, {"reward": rewards.mean(), "toy_stat": scale * rewards.mean()}


@pytest.fixture
def toy():
    entry = O.register(O.Objective(
        "toy", _toy_step, ("reward", "toy_stat"), color="#123456", label="a toy",
        options=(O.Option("scale", 1.0, "toy: loss scale (> 0)",
                          check=lambda v: None if v > 0 else f"scale must be > 0, got {v}"),
                 O.Option("hard", False, "toy: double the loss")),
        queries=lambda options, n_actions: 3, bench={"toy_half": {"scale": 0.5}},
        variants={"toy-hard": "#654321"}))
    yield entry
    O.unregister("toy")


def test_an_objective_added_by_its_entry_alone_trains_resumes_benches_and_has_a_colour(
        toy, tmp_path, capfd, monkeypatch, request):
    import json

    from pgviz.cli import _build_parser, main
    from pgviz.train import load_checkpoint
    from pgviz.train.bench import bench

    import numpy as np

    from pgviz import data
    ds = data.make_synthetic(256, 64)
    npz = tmp_path / "small.npz"
    np.savez(npz, images=torch.cat([ds.train_images, ds.test_images]).numpy(),
             labels=torch.cat([ds.train_labels, ds.test_labels]).numpy().astype(np.uint8))
    monkeypatch.setenv("PGVIZ_DATA", str(npz))
    request.addfinalizer(lambda n=torch.get_num_threads(): torch.set_num_threads(n))
    torch.set_num_threads(1)  # small runs on a shared CPU: one thread is faster

    def cli(*argv):
        capfd.readouterr()
        code = main([str(a) for a in argv])
        out, err = capfd.readouterr()
        return code, out, err

    common = ["--objective", "toy", "--scale", "0.5", "--hard", "--device", "cpu", "--quiet",
              "--batch-size", "64", "--precision", "fp32"]
    code, out, err = cli("train", *common, "--epochs", 2, "--out", tmp_path / "straight")
    assert code == 0, err
    assert json.loads(out.splitlines()[-1])["objective"] == "toy"
    code, _, err = cli("train", *common, "--epochs", 1, "--out", tmp_path / "resumed")
    assert code == 0, err
    code, out, err = cli("train", "--out", tmp_path / "resumed", "--resume", "--epochs", 2, "--quiet",
                         "--device", "cpu", "--precision", "fp32", "--scale", "0.5")
    assert code == 0, err
    a, b = (load_checkpoint(tmp_path / d / "checkpoint.pt") for d in ("straight", "resumed"))
    assert b["config"]["options"] == {"scale": 0.5, "hard": True} and b["step"] == a["step"] > 0
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])  # bit-exact resume
    rows = [json.loads(l) for l in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()]
    epoch = [r for r in rows if r["event"] == "epoch"][-1]
    assert epoch["toy_stat"] == pytest.approx(0.5 * epoch["reward"]) and epoch["baseline"] is None
    # its option's resume rule and its checks, from the entry
    code, _, err = cli("train", "--out", tmp_path / "resumed", "--resume", "--epochs", 3, "--scale", "0.7")
    assert code == 2 and "--scale 0.7 differs from the checkpoint's 0.5" in err
    code, _, err = cli("train", "--objective", "pg", "--scale", "2", "--out", tmp_path / "x")
    assert code == 2 and "--scale 2.0 applies to --objective toy only (got pg)" in err
    code, _, err = cli("train", "--objective", "toy", "--scale", "-1", "--out", tmp_path / "x")
    assert code == 2 and "scale must be > 0, got -1.0" in err and len(err.strip().splitlines()) == 1
    help_text = _build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    assert "--scale" in help_text and "toy: loss scale" in help_text and "--hard" in help_text
    # the benchmark times it, the figures colour it, the gap chapter counts its queries
    r = bench("cpu", batch_size=8, steps=1, repeats=1, warmup=0)
    assert r["images_per_second"]["toy_half"] > 0
    assert O.color("toy") == "#123456" and O.color("toy-hard") == "#654321"
    assert O.reward_queries(b["config"]) == 3
