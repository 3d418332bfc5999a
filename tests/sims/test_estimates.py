"""pgviz.sims.estimates: Monte Carlo error and variance (The policy gradient, Baselines), against exact numbers."""
import pytest
import torch

from pgviz import exact as X
from pgviz import sims as S

torch.set_num_threads(1)


def test_counts_give_the_same_mean_as_explicit_samples():
    logits, rewards = S.article_policy(), S.correct_rewards()
    rewards = rewards + torch.linspace(0, 0.3, 10, dtype=torch.float64)  # a non-0/1 reward too
    pi = torch.softmax(logits, -1)
    actions = torch.multinomial(pi, 500, replacement=True, generator=torch.Generator().manual_seed(1))
    explicit = (rewards[actions] - 0.2)[:, None] * (torch.nn.functional.one_hot(actions, 10) - pi)
    counts = torch.bincount(actions, minlength=10).to(torch.float64)[None]
    via_counts = S.mean_of_estimates_from_counts(logits, rewards, counts, baseline=0.2)[0]
    assert torch.allclose(via_counts, explicit.mean(0), atol=1e-12)


def test_action_counts_are_multinomial():
    pi = torch.softmax(S.article_policy(), -1)
    c = S.action_counts(pi, 1000, 4000, torch.Generator().manual_seed(0))
    assert torch.all(c.sum(-1) == 1000) and torch.all(c >= 0)
    # mean within 5 standard errors of n * pi, per action
    se = (1000 * pi * (1 - pi) / 4000).sqrt()
    assert torch.all((c.mean(0) - 1000 * pi).abs() < 5 * se + 1e-9)


def test_mc_error_shrinks_like_one_over_sqrt_n():
    r = S.mc_error_scaling(S.article_policy(), S.correct_rewards(), ns=(1, 10, 100, 1000, 10_000),
                           repeats=2000, seed=0)
    assert -0.55 < r["slope"] < -0.45
    ratio = r["rms_error"] / r["predicted"]
    assert torch.all((ratio - 1).abs() < 0.1), ratio
    # the exact gradient it is compared with: pi_y (onehot(y) - pi) for the 0/1 reward
    pi = torch.softmax(S.article_policy(), -1)
    expected = pi[S.HORSE] * (torch.nn.functional.one_hot(torch.tensor(S.HORSE), 10) - pi)
    assert torch.allclose(r["exact"], expected, atol=1e-12)
    assert r["exact"][S.HORSE].item() == pytest.approx(0.588 * (1 - 0.588))


def test_loglog_slope():
    n = torch.tensor([1.0, 10, 100, 1000])
    assert S.loglog_slope(n, 3 * n ** -0.5) == pytest.approx(-0.5)


def test_measured_variance_matches_exact_and_value_baseline_crossover():
    s = S.variance_study(torch.tensor([0.1, 0.3, 0.6, 0.9]), n_draws=40_000, seed=0)
    for name in ("none", "value", "optimal"):
        rel = (s[f"measured_{name}"] / s[f"exact_{name}"] - 1).abs()
        assert torch.all(rel < 0.05), (name, rel)
    # the value baseline helps an unsure policy and hurts a confident, correct one
    assert s["exact_value"][0] < s["exact_none"][0]
    assert s["exact_value"][3] > 5 * s["exact_none"][3]
    # the optimal baseline is never worse than either
    assert torch.all(s["exact_optimal"] <= s["exact_none"] + 1e-12)
    assert torch.all(s["exact_optimal"] <= s["exact_value"] + 1e-12)
    # analytically, Var(b = pi_y) - Var(0) = pi_y^2 (4 pi_y - 1 - 3 sum pi^2) changes sign where
    # 5 p^2 - 7 p + 2 = 0 for K = 10, i.e. at p = 0.4
    assert S.value_baseline_crossover(10) == pytest.approx(0.4, abs=1e-8)


def test_baseline_slice_is_the_exact_parabola_with_a_measured_point():
    s = S.baseline_slice(0.3, 0.9, n_draws=4000, seed=0)
    logits, rewards = S.confident_policy(0.9), S.correct_rewards()
    assert torch.equal(s["curve"], X.exact_variance(logits, rewards, s["bs"]))
    assert s["bs"][0].item() == pytest.approx(-0.2) and s["bs"][-1].item() == pytest.approx(1.2)
    assert s["b_opt"] == pytest.approx(X.optimal_baseline(logits, rewards).item(), rel=1e-15)
    assert s["var_opt"] <= float(s["curve"].min()) + 1e-12
    assert s["var_value"] == pytest.approx(X.exact_variance(logits, rewards, 0.9).item(), rel=1e-15)
    assert s["var_none"] == pytest.approx(X.exact_variance(logits, rewards, 0.0).item(), rel=1e-15)
    # the measured point: within 10 % of the exact variance at b = 0.3 (4000 draws), and seeded
    assert s["measured"] == pytest.approx(X.exact_variance(logits, rewards, 0.3).item(), rel=0.1)
    assert S.baseline_slice(0.3, 0.9, n_draws=4000, seed=0)["measured"] == s["measured"]
    # the shares: the correct label's and the nine wrong ones' part of the second moment
    terms = X.variance_terms(logits, rewards, 0.3)
    assert s["shares"].tolist() == pytest.approx([terms[S.HORSE].item(), (terms.sum() - terms[S.HORSE]).item()])
    assert s["shares"][0].item() == pytest.approx(0.9 * 0.7 ** 2 * (1 - 2 * 0.9 + 0.81 + 0.01 / 9), rel=1e-12)
    assert s["share_top"] >= float(s["shares"].max())


def test_network_mc_error_scaling_on_a_linear_network():
    """A linear network, logits = W x + c: image i's parameter gradient is (g_i x_i, g_i) / B, so
    the exact variance (eq:impl-variance) is sum_i trVar_i (|x_i|^2 + 1) / B^2 with trVar_i of
    pgviz.exact.exact_variance; sum_i pi(y_i) v_i is the exact gradient; the measured RMS error
    follows sqrt(Var / n) within 25 % and the fitted slope is -1/2 within 0.1."""
    torch.manual_seed(0)
    net = torch.nn.Linear(5, 11)
    with torch.no_grad():
        net.weight.mul_(3.0)
    x = torch.randn(8, 5, generator=torch.Generator().manual_seed(1))
    y = torch.randint(0, 10, (8,), generator=torch.Generator().manual_seed(2))
    r = S.network_mc_error_scaling(net(x), list(net.parameters()), y, ns=(1, 10, 100), repeats=60, seed=0)
    logits = net(x).detach().double()[:, :10]
    want = sum(X.exact_variance(logits[i], torch.eye(10, dtype=torch.float64)[y[i]], 0.0).item()
               * (float(x[i].pow(2).sum()) + 1) for i in range(8)) / 64
    assert float(r["variance"]) == pytest.approx(want, rel=1e-4)
    assert torch.allclose(r["exact_from_v"], r["exact"], atol=1e-6)
    assert set(r) >= {"n", "rms_error", "predicted", "errors", "exact", "variance", "slope"}
    assert r["errors"].shape == (3, 60)
    ratio = r["rms_error"] / r["predicted"]
    assert ((ratio - 1).abs() < 0.25).all(), ratio
    assert r["slope"] == pytest.approx(-0.5, abs=0.1)
