"""pgviz.exact: the finite-action maths, against autograd, sampling and closed forms."""
import math

import pytest
import torch

from pgviz import exact as X
from pgviz import sims as S
from pgviz.estimator import ARTICLE

K = 10
torch.set_num_threads(1)


# --- the article's bars (What does it do?) ------------------------------------

def test_article_grad_log_policy_numbers():
    a = ARTICLE
    probs = torch.tensor(a["probs"], dtype=torch.float64)
    assert probs.sum().item() == pytest.approx(1.0)
    horse, dog = a["labels"].index("horse"), a["labels"].index("dog")
    # horse sampled: it is the true label, reward 1
    g = X.log_policy_grad(probs, horse, reward=1.0, baseline=a["baseline"])
    assert g[horse].item() == pytest.approx(-0.825)
    assert g.abs().sum().item() == pytest.approx(0.825)
    # dog sampled: wrong, reward 0
    g = X.log_policy_grad(probs, dog, reward=0.0, baseline=a["baseline"])
    assert g[dog].item() == pytest.approx(0.175)
    assert g.abs().sum().item() == pytest.approx(0.175)
    assert a["grad_after"] == {"horse": -0.825, "dog": 0.175}


def test_logit_grad_spreads_opposite_sign_proportional_to_probability():
    probs = torch.tensor(ARTICLE["probs"], dtype=torch.float64)
    g = X.logit_grad(probs, 0, reward=1.0, baseline=0.175)
    # horse rewarded: its logit goes up (negative loss gradient), all others go down by 0.825 * pi_k
    assert g[0].item() == pytest.approx(-0.825 * 0.4)
    assert torch.allclose(g[1:], 0.825 * probs[1:])
    assert g.sum().item() == pytest.approx(0.0, abs=1e-12)


# --- the objective and its gradient ---------------------------------------------

def test_exact_gradient_matches_autograd():
    torch.manual_seed(0)
    logits = torch.randn(K, dtype=torch.float64, requires_grad=True)
    R = torch.rand(K, dtype=torch.float64)
    (torch.softmax(logits, 0) * R).sum().backward()
    assert torch.allclose(X.exact_gradient(logits.detach(), R), logits.grad, atol=1e-12)


@pytest.mark.parametrize("baseline", [0.0, 0.4])
def test_mc_mean_converges_to_exact_gradient_within_standard_error(baseline):
    torch.manual_seed(1)
    logits = torch.randn(K, dtype=torch.float64)
    R = (torch.arange(K) == 3).double()
    est = X.score_function_estimates(logits, R, 200_000, baseline, torch.Generator().manual_seed(0))
    mean, se = est.mean(0), est.std(0) / math.sqrt(est.shape[0])
    exact = X.exact_gradient(logits, R)
    z = ((mean - exact) / se).abs()
    assert z.max().item() < 4.5  # 10 coordinates, fixed seed
    # and a *wrong* target (gradient of reward 1 on action 4) is rejected by the same bound
    wrong = X.exact_gradient(logits, (torch.arange(K) == 4).double())
    assert ((mean - wrong) / se).abs().max().item() > 10


def test_derivation_pieces_match_autograd():
    logits = torch.tensor([0.5, -0.2, 1.5, 0.1], dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda t: torch.softmax(t, -1), logits)
    assert X.check("softmax Jacobian", jac, X.softmax_jacobian(logits))
    jac_log = torch.autograd.functional.jacobian(lambda t: torch.log_softmax(t, -1), logits)
    assert X.check("score", jac_log, X.log_softmax_jacobian(logits))
    rewards = torch.tensor([1.0, 0.0, 0.3, 0.0], dtype=torch.float64)
    grad = torch.autograd.functional.jacobian(lambda t: X.objective(t, rewards), logits)
    assert X.check("policy gradient", grad, X.exact_gradient(logits, rewards))
    with pytest.raises(AssertionError):
        X.check("wrong", grad, grad + 1e-6)


# --- the variance and the optimal baseline (Baselines) --------------------------

def test_exact_variance_matches_measured_and_optimal_baseline_minimises_it():
    torch.manual_seed(2)
    logits = torch.randn(K, dtype=torch.float64) * 2
    R = (torch.arange(K) == 0).double()
    for b in [0.0, 0.5, float(torch.softmax(logits, 0)[0])]:
        est = X.score_function_estimates(logits, R, 100_000, b, torch.Generator().manual_seed(1))
        measured = est.var(0).sum().item()
        assert measured == pytest.approx(X.exact_variance(logits, R, b).item(), rel=0.03)
    b_star = X.optimal_baseline(logits, R)
    grid = torch.linspace(-1, 2, 3001, dtype=torch.float64)
    curve = X.exact_variance(logits, R, grid)
    assert curve.shape == grid.shape
    assert grid[curve.argmin()].item() == pytest.approx(b_star.item(), abs=2e-3)
    assert X.exact_variance(logits, R, b_star).item() <= curve.min().item() + 1e-12


def test_value_baseline_raises_variance_for_confident_correct_policy():
    """The honest caveat the book shows: for 0/1 reward and pi_y near 1, V = pi_y is worse than b = 0."""
    logits = torch.zeros(K, dtype=torch.float64)
    logits[0] = 8.0  # pi_y ~ 0.997
    R = (torch.arange(K) == 0).double()
    pi_y = torch.softmax(logits, 0)[0]
    assert X.exact_variance(logits, R, pi_y) > X.exact_variance(logits, R, 0.0)
    # while for an unsure policy the value baseline helps
    logits = torch.zeros(K, dtype=torch.float64)
    pi_y = torch.softmax(logits, 0)[0]
    assert X.exact_variance(logits, R, pi_y) < X.exact_variance(logits, R, 0.0)


def test_variance_closed_form_for_zero_one_reward():
    p = 0.9
    logits, rewards = S.confident_policy(p), S.correct_rewards()
    q = p ** 2 + (1 - p) ** 2 / 9
    s_y = 1 - 2 * p + q  # |onehot(y) - pi|^2
    var0 = p * s_y - p ** 2 * s_y  # second moment minus |grad G|^2 = |p (e_y - pi)|^2
    assert X.exact_variance(logits, rewards, 0.0).item() == pytest.approx(var0, rel=1e-12)
    terms = X.variance_terms(logits, rewards, p)
    assert terms[S.HORSE].item() == pytest.approx(p * (1 - p) ** 2 * s_y, rel=1e-12)


def test_optimal_baseline_is_the_minimum():
    logits, rewards = S.confident_policy(0.7), S.correct_rewards()
    b = X.optimal_baseline(logits, rewards).item()
    v = lambda x: X.exact_variance(logits, rewards, x).item()  # noqa: E731
    assert v(b) < v(b - 1e-3) and v(b) < v(b + 1e-3)


def test_optimal_baseline_row_by_row_equals_one_image_at_a_time():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, K, generator=g, dtype=torch.float64)
    y = torch.randint(0, K, (6,), generator=g)
    rewards = torch.nn.functional.one_hot(y, K).double()
    b = X.optimal_baseline(logits, rewards)
    assert b.shape == (6,)
    for i in range(6):
        assert b[i].item() == pytest.approx(X.optimal_baseline(logits[i], rewards[i]).item(), rel=1e-12)
    # and the exact variance row by row, too
    v = X.exact_variance(logits, rewards, b)
    for i in range(6):
        assert v[i].item() == pytest.approx(X.exact_variance(logits[i], rewards[i], b[i]).item(), rel=1e-12)


# --- entropy and the regularised optimum (Policy regularisation) ----------------

def test_entropy_gradient_and_regularised_optimum():
    logits = torch.tensor([0.3, -1.0, 2.0, 0.0], dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(X.entropy(logits), logits)
    assert torch.allclose(g, X.entropy_gradient(logits.detach()), atol=1e-12)
    rewards = torch.tensor([1.0, 0.5, 0.0, 0.0], dtype=torch.float64)
    for lam in (0.1, 1.0, 3.0):
        pi_star = X.regularised_optimum(rewards, lam)
        theta = pi_star.log()
        total = X.exact_gradient(theta, rewards) + lam * X.entropy_gradient(theta)
        assert total.abs().max().item() < 1e-12
