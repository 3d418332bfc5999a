"""The estimator: the article's numbers, the two implementations agree, unbiasedness, variance."""
import math

import pytest
import torch
import torch.nn as nn

from pgviz import estimator as E
from pgviz import exact as X

K = 10


def _net(seed, in_dim=12, hidden=16):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.Tanh(), nn.Linear(hidden, K + 1)).double()


def _grads(net):
    return torch.cat([p.grad.flatten() for p in net.parameters()])


# --- the article's figures ---------------------------------------------------


def test_article_numbers_through_the_network_loss():
    """pg_loss on the article's policy gives logit gradients (V - R)(onehot - pi), as logit_grad says."""
    a = E.ARTICLE
    probs = torch.tensor(a["probs"] + [1e-12] * (K - 4), dtype=torch.float64)
    probs = probs / probs.sum()
    v = a["baseline"]
    logits = torch.cat([probs.log(), torch.tensor([math.log(v / (1 - v))], dtype=torch.float64)])[None]
    for action, expect in [(0, -0.825), (1, 0.175)]:  # true label: horse (0)
        z = logits.clone().requires_grad_(True)
        res = E.pg_loss(z, torch.tensor([0]), entropy_weight=0.0, actions=torch.tensor([action]))
        assert res.baseline.item() == pytest.approx(v)
        res.loss.backward()
        assert (res.baseline - res.rewards).item() == pytest.approx(expect)
        assert torch.allclose(z.grad[0, :K], X.logit_grad(probs, action, res.rewards.item(), v), atol=1e-9)
        assert z.grad[0, action].item() == pytest.approx(expect * (1 - probs[action].item()))


# --- the two implementations are the same estimator --------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("use_baseline", [True, False])
def test_two_backward_equals_surrogate(seed, use_baseline):
    net = _net(seed)
    x = torch.randn(32, 12, dtype=torch.float64)
    y = torch.randint(0, K, (32,))
    actions = E.sample_actions(E.split_outputs(net(x))[0], torch.Generator().manual_seed(seed))

    net.zero_grad()
    res = E.pg_loss(net(x), y, entropy_weight=0.03, use_baseline=use_baseline, actions=actions)
    res.loss.backward()
    g1 = _grads(net)

    net.zero_grad()
    res2 = E.pg_two_backward(net(x), y, entropy_weight=0.03, use_baseline=use_baseline, actions=actions)
    g2 = _grads(net)

    assert (g1 - g2).abs().max().item() <= 1e-6
    assert g1.abs().max().item() > 1e-3  # not trivially zero
    assert res.loss.item() == pytest.approx(res2.loss.item(), abs=1e-12)
    assert torch.equal(res.rewards, res2.rewards)


def test_no_baseline_leaves_value_head_untrained():
    net = _net(3)
    x, y = torch.randn(8, 12, dtype=torch.float64), torch.randint(0, K, (8,))
    E.pg_loss(net(x), y, use_baseline=False, entropy_weight=0.0).loss.backward()
    last = net[-1]
    assert last.weight.grad[K].abs().max().item() == 0.0
    assert last.weight.grad[:K].abs().max().item() > 0.0


def test_baseline_is_bce_trained_towards_reward():
    z = torch.zeros(4, K + 1, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 1, 2, 3])
    res = E.pg_loss(z, y, actions=torch.tensor([0, 0, 2, 0]), entropy_weight=0.0)
    assert res.rewards.tolist() == [1.0, 0.0, 1.0, 0.0]
    assert res.baseline_loss.item() == pytest.approx(math.log(2))
    res.loss.backward()
    # d BCE / d z_V = (sigmoid(z) - R) / batch
    assert z.grad[:, K].tolist() == pytest.approx([-0.125, 0.125, -0.125, 0.125])


def test_entropy_bonus_pushes_towards_uniform():
    z = torch.zeros(1, K + 1, dtype=torch.float64)
    z[0, 0] = 2.0
    z.requires_grad_(True)
    res = E.pg_loss(z, torch.tensor([5]), actions=torch.tensor([5]), entropy_weight=1.0, use_baseline=False)
    # reward 0, no baseline: only the entropy term has a gradient; it lowers the dominant logit
    res.loss.backward()
    assert z.grad[0, 0].item() > 0
    pi = torch.softmax(z[0, :K].detach(), 0)
    assert res.entropy.item() == pytest.approx(-(pi * pi.log()).sum().item())


def test_matrix_reward_is_pluggable():
    table = torch.tensor([[1.0, -2.0], [-3.0, 0.5]])
    r = E.matrix_reward(table)
    assert r(torch.tensor([0, 1, 0]), torch.tensor([0, 0, 1])).tolist() == [1.0, -2.0, -3.0]
    z = torch.zeros(3, 3, requires_grad=True)
    res = E.pg_loss(z, torch.tensor([0, 0, 1]), reward_fn=r, actions=torch.tensor([0, 1, 0]))
    assert res.rewards.tolist() == [1.0, -2.0, -3.0]


# --- unbiasedness -------------------------------------------------------------


def test_network_estimator_is_unbiased_for_exact_expected_gradient():
    """Mean of many single-sample surrogate gradients -> grad of sum_a pi(a|x) R(a)."""
    net = _net(7)
    x = torch.randn(4, 12, dtype=torch.float64)
    y = torch.tensor([1, 4, 4, 9])
    net.zero_grad()
    (-E.expected_reward(net(x), y)).backward()
    exact = _grads(net)

    gen = torch.Generator().manual_seed(0)
    reps, chunks = 2000, 40
    xs, ys = x.repeat(reps, 1), y.repeat(reps)
    means = []
    for _ in range(chunks):
        net.zero_grad()
        E.pg_loss(net(xs), ys, entropy_weight=0.0, use_baseline=False, generator=gen).loss.backward()
        means.append(_grads(net))
    means = torch.stack(means)
    mc, se = means.mean(0), means.std(0) / math.sqrt(chunks)
    big = exact.abs() > 1e-4
    assert (((mc - exact) / se)[big]).abs().max().item() < 4.5
    assert torch.allclose(mc, exact, atol=5 * se.max().item())


# --- variance ---------------------------------------------------------------


def test_xent_loss_uses_only_policy_columns():
    z = torch.zeros(2, K + 1)
    z[:, -1] = 100.0
    assert E.xent_loss(z, torch.tensor([0, 1])).item() == pytest.approx(math.log(K))
