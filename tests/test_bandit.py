"""pgviz.bandit: the simulations behind book chapters 02, 03, 04, 07 and 09, checked against exact numbers."""
import math

import matplotlib

matplotlib.use("Agg")
import pytest
import torch
from matplotlib.figure import Figure

from pgviz import bandit as B
from pgviz import estimator as E
from pgviz import plots as P

torch.set_num_threads(1)


# --- policies and rewards ----------------------------------------------------
def test_confident_policy_and_article_policy():
    pi = torch.softmax(B.confident_policy(torch.tensor([0.3, 0.9])), -1)
    assert pi.shape == (2, 10)
    assert pi[:, B.HORSE].tolist() == pytest.approx([0.3, 0.9])
    assert pi[0, B.DOG].item() == pytest.approx(0.7 / 9)
    art = torch.softmax(B.article_policy(eps=0.02), -1)
    assert art.sum().item() == pytest.approx(1.0)
    assert art[B.HORSE].item() == pytest.approx(0.6 * 0.98)
    assert art[B.DOG].item() == pytest.approx(0.3 * 0.98)
    assert art[B.CIFAR10_CLASSES.index("truck")].item() == pytest.approx(0.02 / 6)
    with pytest.raises(ValueError):
        B.confident_policy(1.0)


# --- book/02: Monte Carlo against exact ----------------------------------------
def test_counts_give_the_same_mean_as_explicit_samples():
    logits, rewards = B.article_policy(), B.correct_rewards()
    rewards = rewards + torch.linspace(0, 0.3, 10, dtype=torch.float64)  # a non-0/1 reward too
    pi = torch.softmax(logits, -1)
    actions = torch.multinomial(pi, 500, replacement=True, generator=torch.Generator().manual_seed(1))
    explicit = (rewards[actions] - 0.2)[:, None] * (torch.nn.functional.one_hot(actions, 10) - pi)
    counts = torch.bincount(actions, minlength=10).to(torch.float64)[None]
    via_counts = B.mean_of_estimates_from_counts(logits, rewards, counts, baseline=0.2)[0]
    assert torch.allclose(via_counts, explicit.mean(0), atol=1e-12)


def test_action_counts_are_multinomial():
    pi = torch.softmax(B.article_policy(), -1)
    c = B.action_counts(pi, 1000, 4000, torch.Generator().manual_seed(0))
    assert torch.all(c.sum(-1) == 1000) and torch.all(c >= 0)
    # mean within 5 standard errors of n * pi, per action
    se = (1000 * pi * (1 - pi) / 4000).sqrt()
    assert torch.all((c.mean(0) - 1000 * pi).abs() < 5 * se + 1e-9)


def test_mc_error_shrinks_like_one_over_sqrt_n():
    r = B.mc_error_scaling(B.article_policy(), B.correct_rewards(), ns=(1, 10, 100, 1000, 10_000),
                           repeats=2000, seed=0)
    assert -0.55 < r["slope"] < -0.45
    ratio = r["rms_error"] / r["predicted"]
    assert torch.all((ratio - 1).abs() < 0.1), ratio
    # the exact gradient it is compared with: pi_y (onehot(y) - pi) for the 0/1 reward
    pi = torch.softmax(B.article_policy(), -1)
    expected = pi[B.HORSE] * (torch.nn.functional.one_hot(torch.tensor(B.HORSE), 10) - pi)
    assert torch.allclose(r["exact"], expected, atol=1e-12)
    assert r["exact"][B.HORSE].item() == pytest.approx(0.588 * (1 - 0.588))


def test_loglog_slope():
    n = torch.tensor([1.0, 10, 100, 1000])
    assert B.loglog_slope(n, 3 * n ** -0.5) == pytest.approx(-0.5)


# --- book/03: variance -------------------------------------------------------
def test_measured_variance_matches_exact_and_value_baseline_crossover():
    s = B.variance_study(torch.tensor([0.1, 0.3, 0.6, 0.9]), n_draws=40_000, seed=0)
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
    assert B.value_baseline_crossover(10) == pytest.approx(0.4, abs=1e-8)


def test_variance_closed_form_for_zero_one_reward():
    p = 0.9
    logits, rewards = B.confident_policy(p), B.correct_rewards()
    q = p ** 2 + (1 - p) ** 2 / 9
    s_y = 1 - 2 * p + q  # |onehot(y) - pi|^2
    var0 = p * s_y - p ** 2 * s_y  # second moment minus |grad G|^2 = |p (e_y - pi)|^2
    assert E.exact_variance(logits, rewards, 0.0).item() == pytest.approx(var0, rel=1e-12)
    terms = B.variance_terms(logits, rewards, p)
    assert terms[B.HORSE].item() == pytest.approx(p * (1 - p) ** 2 * s_y, rel=1e-12)


def test_optimal_baseline_is_the_minimum():
    logits, rewards = B.confident_policy(0.7), B.correct_rewards()
    b = E.optimal_baseline(logits, rewards).item()
    v = lambda x: E.exact_variance(logits, rewards, x).item()  # noqa: E731
    assert v(b) < v(b - 1e-3) and v(b) < v(b + 1e-3)


# --- book/04 and 07: the simulator --------------------------------------------
def test_entropy_gradient_and_regularised_optimum():
    logits = torch.tensor([0.3, -1.0, 2.0, 0.0], dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(B.entropy(logits), logits)
    assert torch.allclose(g, B.entropy_gradient(logits.detach()), atol=1e-12)
    rewards = torch.tensor([1.0, 0.5, 0.0, 0.0], dtype=torch.float64)
    for lam in (0.1, 1.0, 3.0):
        pi_star = B.regularised_optimum(rewards, lam)
        theta = pi_star.log()
        total = E.exact_gradient(theta, rewards) + lam * B.entropy_gradient(theta)
        assert total.abs().max().item() < 1e-12


def test_simulate_exact_is_plain_gradient_ascent():
    logits0, rewards = B.collapse_setup()
    hist = B.simulate(logits0, rewards, lr=0.5, steps=20, entropy_weight=0.05, exact=True)
    theta = logits0.clone()
    for _ in range(20):
        theta = theta + 0.5 * (E.exact_gradient(theta, rewards) + 0.05 * B.entropy_gradient(theta))
    assert hist.shape == (21, 1, 10)
    assert torch.allclose(hist[-1, 0], torch.softmax(theta, -1), atol=1e-12)


def test_simulate_broadcasts_settings():
    logits0, rewards = B.collapse_setup()
    h = B.simulate(logits0, rewards, lr=torch.tensor([0.1, 1.0])[:, None], steps=10,
                   entropy_weight=torch.tensor([0.0, 0.1, 1.0]), n_runs=7, record_every=5)
    assert h.shape == (3, 2, 3, 7, 10)
    assert torch.allclose(h.sum(-1), torch.ones(()).double())


def test_collapse_story_outcomes_at_extreme_entropy_weights():
    s = B.collapse_sweep((0.0, 0.1, 3.0), n_seeds=300, seed=0)
    # no entropy bonus: a sizeable share of runs lock onto the partial answer "dog"
    assert 0.15 < s["locked"][0].item() < 0.5
    # although the exact-gradient path finds "horse"
    assert s["exact_history"][-1, 0, B.HORSE].item() > 0.99
    # a moderate bonus: every run finds "horse"
    assert s["found"][1].item() == 1.0
    # a large bonus: every run stays spread out, near softmax(R / lambda)
    assert s["spread"][2].item() == 1.0
    opt = s["optimum"][2]
    assert opt[B.HORSE].item() == pytest.approx(math.exp(1 / 3) / (math.exp(1 / 3) + math.exp(0.5 / 3) + 8))
    assert (s["mean_final"][2] - opt).abs().max().item() < 0.03


def test_value_baseline_removes_most_collapse():
    s = B.collapse_sweep((0.0,), baseline="value", n_seeds=300, seed=0, steps=600)
    lagging = B.collapse_sweep((0.0,), n_seeds=300, seed=0, steps=600)
    assert s["locked"][0] < 0.5 * lagging["locked"][0]


# --- book/04: the article's story, dogs and horses that look alike at first -----
@pytest.fixture(scope="module")
def dog_horse():
    lams = (0.0, 0.1)
    return (B.dog_horse_simulate(lams, n_runs=100, seed=0),
            B.dog_horse_simulate(lams, exact=True))


def test_dog_horse_collapses_without_entropy_and_learns_with_it(dog_horse):
    s, exact = dog_horse
    p_hh = s["p_horse_horse"][-1]                                    # [L, runs] at step 2,500
    assert s["steps"][-1].item() == B.DOG_HORSE["steps"] == 2500
    # lambda = 0: most runs never learn to say "horse" for a horse image
    assert s["collapsed"][0].item() > 0.7
    assert p_hh[0].median().item() < 0.1
    # ... and neither does exact gradient ascent: the pile-up on "dog" is in the gradient
    assert exact["p_horse_horse"][-1, 0, 0].item() < 0.1
    assert exact["p_dog_dog"][-1, 0, 0].item() > 0.99       # dogs it learned to call "dog"
    # lambda = 0.1: every run ends above 0.5, all but none above 0.9
    assert p_hh[1].min().item() > 0.5
    assert s["learned"][1].item() == 1.0 and s["collapsed"][1].item() == 0.0
    assert exact["p_horse_horse"][-1, 1, 0].item() > 0.99
    # before the feature, lambda = 0 piled onto "dog" for horse images too
    before = B.DOG_HORSE["feature_step"] // 10
    assert s["p_dog_horse"][before, 0].mean().item() > 0.9
    assert s["p_dog_horse"][before, 1].mean().item() < 0.7


def test_dog_horse_is_deterministic_per_seed():
    again = B.dog_horse_simulate((0.0, 0.1), n_runs=100, seed=0, steps=300, feature_step=100)
    other = B.dog_horse_simulate((0.0, 0.1), n_runs=100, seed=1, steps=300, feature_step=100)
    first = B.dog_horse_simulate((0.0, 0.1), n_runs=100, seed=0, steps=300, feature_step=100)
    assert torch.equal(again["p_horse_horse"], first["p_horse_horse"])
    assert not torch.equal(other["p_horse_horse"], first["p_horse_horse"])


def test_dog_horse_images_look_alike_until_the_feature():
    s = B.dog_horse_simulate((0.0, 0.3), n_runs=5, steps=40, feature_step=40, record_every=4)
    pol = s["final_policy"]                                          # [L, runs, 2 kinds, K]
    assert torch.equal(pol[..., 0, :], pol[..., 1, :])              # w never moved
    # the recorded P(dog | horse image) is then the P(dog) of the dog images' policy too
    assert torch.equal(s["p_dog_horse"][-1], pol[..., 1, B.DOG])


def test_dog_horse_exact_step_by_hand():
    # one exact step before the feature: u += lr * 1/2 sum_kind pi * (R_kind - G_kind)
    lr, p0 = 0.7, 0.6
    s = B.dog_horse_simulate(0.0, exact=True, steps=1, feature_step=5, lr=lr, p_dog0=p0,
                             record_every=1)
    pi = torch.full((10,), 0.4 / 9, dtype=torch.float64)
    pi[B.DOG] = p0
    g = torch.zeros(10, dtype=torch.float64)
    for label in (B.DOG, B.HORSE):
        r = torch.nn.functional.one_hot(torch.tensor(label), 10).double()
        g += 0.5 * pi * (r - (pi * r).sum())
    after = torch.softmax(pi.log() + lr * g, -1)
    assert s["p_dog_horse"][1, 0, 0].item() == pytest.approx(after[B.DOG].item(), abs=1e-14)
    assert s["p_horse_horse"][1, 0, 0].item() == pytest.approx(after[B.HORSE].item(), abs=1e-14)
    # the baseline moves towards the mean reward (p_dog + p_horse) / 2 = 0.3222...
    g_mean = 0.5 * (p0 + 0.4 / 9)
    assert s["v_horse"][1, 0, 0].item() == pytest.approx(0.1 + 0.3 * (g_mean - 0.1), abs=1e-14)


def test_dog_horse_baseline_learns_the_value_of_a_horse_image(dog_horse):
    _, exact = dog_horse
    v, p = exact["v_horse"][-1, :, 0], exact["p_horse_horse"][-1, :, 0]
    assert torch.allclose(v, p, atol=1e-3)                          # V(horse image) = E[R | horse]


def test_dog_horse_optimum_and_bad_input():
    opt = B.dog_horse_optimum(torch.tensor([0.0, 1.0, 0.1]))
    assert opt.tolist() == pytest.approx([1.0, math.e / (math.e + 9), 1 / (1 + 9 * math.exp(-10))])
    with pytest.raises(ValueError):
        B.dog_horse_simulate(0.0, p_dog0=1.0)


# --- book/07: A/B -------------------------------------------------------------
def test_ab_steps_article_numbers():
    s = B.ab_steps(50.0, 100.0, 0.5, lr=1.0, baseline=0.0)
    assert s["step_a"].tolist() == [25.0, -25.0]
    assert s["step_b"].tolist() == [-50.0, 50.0]
    assert s["expected"].tolist() == [-12.5, 12.5]
    # a baseline changes both steps but not their expectation
    s75 = B.ab_steps(50.0, 100.0, 0.5, lr=1.0, baseline=75.0)
    assert s75["step_a"].tolist() == [-12.5, 12.5] and s75["step_b"].tolist() == [-12.5, 12.5]
    assert s75["expected"].tolist() == [-12.5, 12.5]
    # general p: lr p (1 - p)(r_b - r_a)(-1, +1)
    g = B.ab_steps(30.0, 80.0, 0.2, lr=0.1, baseline=10.0)
    assert g["expected"][1].item() == pytest.approx(0.1 * 0.2 * 0.8 * 50)
    assert g["p_b_after_b"].item() > 0.2 > g["p_b_after_a"].item()


def test_ab_runs_go_the_right_way_on_average():
    r = B.ab_runs(50.0, 100.0, lr=0.01, steps=60, n_runs=4000, seed=0)
    p = r["p_b"]
    assert p.shape == (61, 4000)
    # after one step P(B) takes one of two values, with the single-step probabilities
    s = B.ab_steps(50.0, 100.0, 0.5, lr=0.01)
    vals = torch.stack([s["p_b_after_a"], s["p_b_after_b"]])
    assert torch.all((p[1][:, None] - vals).abs().min(-1).values < 1e-12)
    frac_b = (p[1] > 0.5).double().mean().item()
    assert abs(frac_b - 0.5) < 5 * math.sqrt(0.25 / 4000)
    # on average it goes the right way, close to (a bit below) the exact-gradient path
    mean = p.mean(-1)
    assert mean[-1] > 0.85 and mean[10] > 0.6
    assert mean[-1] < r["p_b_exact"][-1] + 0.01
    # settings broadcast: two baselines at once
    rb = B.ab_runs(50.0, 100.0, lr=0.01, baseline=torch.tensor([0.0, 75.0]), steps=5, n_runs=3)
    assert rb["p_b"].shape == (6, 2, 3) and rb["p_b_exact"].shape == (6, 2)


# --- book/09 ------------------------------------------------------------------
def test_derivation_pieces_match_autograd():
    logits = torch.tensor([0.5, -0.2, 1.5, 0.1], dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda t: torch.softmax(t, -1), logits)
    assert B.check("softmax Jacobian", jac, B.softmax_jacobian(logits))
    jac_log = torch.autograd.functional.jacobian(lambda t: torch.log_softmax(t, -1), logits)
    assert B.check("score", jac_log, B.log_softmax_jacobian(logits))
    rewards = torch.tensor([1.0, 0.0, 0.3, 0.0], dtype=torch.float64)
    grad = torch.autograd.functional.jacobian(lambda t: B.objective(t, rewards), logits)
    assert B.check("policy gradient", grad, E.exact_gradient(logits, rewards))
    with pytest.raises(AssertionError):
        B.check("wrong", grad, grad + 1e-6)


# --- drawing (pgviz.plots.draw_*, fed with these simulations) ------------------------------------------------------------------
def _lines_data(fig):
    return [tuple(map(tuple, ln.get_xydata().tolist())) for ax in fig.axes for ln in ax.lines]


def test_draw_functions_respond_to_their_controls():
    sweep = B.collapse_sweep((0.0, 3.0), n_seeds=20, steps=50, record_every=5)
    f1, f2 = Figure(), Figure()
    P.draw_collapse_runs(f1, sweep, 0.0)
    P.draw_collapse_runs(f2, sweep, 3.0)
    assert _lines_data(f1) != _lines_data(f2)
    f1, f2 = Figure(), Figure()
    P.draw_ab_steps(f1, 50, 100, 0)
    P.draw_ab_steps(f2, 25, 100, 0)
    h1 = [p.get_height() for p in f1.axes[0].patches]
    h2 = [p.get_height() for p in f2.axes[0].patches]
    assert h1[:2] == pytest.approx([-0.5, 1.0]) and h2[:2] == pytest.approx([-0.25, 1.0])
    f1, f2 = Figure(), Figure()
    P.draw_baseline_slider(f1, 0.0, 0.9, n_draws=500)
    P.draw_baseline_slider(f2, 0.9, 0.9, n_draws=500)
    assert _lines_data(f1) != _lines_data(f2)


def test_table_renders_numbers_and_html():
    t = P.table(["n", "error"], [[10, torch.tensor(-0.0)], [100, 0.25]], fmt=["{:,}", "{:.3f}"])
    assert t.rows == [["10", "0.000"], ["100", "0.250"]]
    html = t._repr_html_()
    assert html.count("<tr>") == 3 and "error</th>" in html
    assert "| 100 | 0.250 |" in t._repr_markdown_()


def test_chapter_widgets_redraw_when_a_slider_moves():
    from pgviz.widgets import Control, interactive

    sweep = B.collapse_sweep((0.0, 3.0), n_seeds=20, steps=50, record_every=5)
    w = interactive(lambda fig, lam: P.draw_collapse_runs(fig, sweep, lam),
                    {"lam": Control([0.0, 3.0], value=0.0)})
    before = _lines_data(w.figure)
    w.sliders["lam"].value = 3.0
    assert _lines_data(w.figure) != before
    ab = B.ab_sweep(r_a=(25.0, 50.0), r_b=(100.0,), lr=(0.01,), baseline=(0.0, 75.0), steps=10, n_runs=5)
    w = interactive(lambda fig, r_a, b: P.draw_ab_runs(fig, ab, r_a=r_a, r_b=100.0, lr=0.01, baseline=b),
                    {"r_a": [25.0, 50.0], "b": Control([0.0, 75.0], value=0.0)})
    before = _lines_data(w.figure)
    w.sliders["b"].value = 75.0
    assert _lines_data(w.figure) != before
