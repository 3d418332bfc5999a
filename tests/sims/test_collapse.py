"""pgviz.sims.collapse: the two collapse stories (Policy regularisation), checked against exact numbers."""
import math

import pytest
import torch

from pgviz import sims as S

torch.set_num_threads(1)


def test_collapse_story_outcomes_at_extreme_entropy_weights():
    s = S.collapse_sweep((0.0, 0.1, 3.0), n_seeds=300, seed=0)
    # no entropy bonus: a sizeable share of runs lock onto the partial answer "dog"
    assert 0.15 < s["locked"][0].item() < 0.5
    # although the exact-gradient path finds "horse"
    assert s["exact_history"][-1, 0, S.HORSE].item() > 0.99
    # a moderate bonus: every run finds "horse"
    assert s["found"][1].item() == 1.0
    # a large bonus: every run stays spread out, near softmax(R / lambda)
    assert s["spread"][2].item() == 1.0
    opt = s["optimum"][2]
    assert opt[S.HORSE].item() == pytest.approx(math.exp(1 / 3) / (math.exp(1 / 3) + math.exp(0.5 / 3) + 8))
    assert (s["mean_final"][2] - opt).abs().max().item() < 0.03


def test_value_baseline_removes_most_collapse():
    s = S.collapse_sweep((0.0,), baseline="value", n_seeds=300, seed=0, steps=600)
    lagging = S.collapse_sweep((0.0,), n_seeds=300, seed=0, steps=600)
    assert s["locked"][0] < 0.5 * lagging["locked"][0]


# --- the article's story, dogs and horses that look alike at first -------------
@pytest.fixture(scope="module")
def dog_horse():
    lams = (0.0, 0.1)
    return (S.dog_horse_simulate(lams, n_runs=100, seed=0),
            S.dog_horse_simulate(lams, exact=True))


def test_dog_horse_collapses_without_entropy_and_learns_with_it(dog_horse):
    s, exact = dog_horse
    p_hh = s["p_horse_horse"][-1]                                    # [L, runs] at step 2,500
    assert s["steps"][-1].item() == S.DOG_HORSE["steps"] == 2500
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
    before = S.DOG_HORSE["feature_step"] // 10
    assert s["p_dog_horse"][before, 0].mean().item() > 0.9
    assert s["p_dog_horse"][before, 1].mean().item() < 0.7


def test_dog_horse_is_deterministic_per_seed():
    again = S.dog_horse_simulate((0.0, 0.1), n_runs=100, seed=0, steps=300, feature_step=100)
    other = S.dog_horse_simulate((0.0, 0.1), n_runs=100, seed=1, steps=300, feature_step=100)
    first = S.dog_horse_simulate((0.0, 0.1), n_runs=100, seed=0, steps=300, feature_step=100)
    assert torch.equal(again["p_horse_horse"], first["p_horse_horse"])
    assert not torch.equal(other["p_horse_horse"], first["p_horse_horse"])


def test_dog_horse_images_look_alike_until_the_feature():
    s = S.dog_horse_simulate((0.0, 0.3), n_runs=5, steps=40, feature_step=40, record_every=4)
    pol = s["final_policy"]                                          # [L, runs, 2 kinds, K]
    assert torch.equal(pol[..., 0, :], pol[..., 1, :])              # w never moved
    # the recorded P(dog | horse image) is then the P(dog) of the dog images' policy too
    assert torch.equal(s["p_dog_horse"][-1], pol[..., 1, S.DOG])


def test_dog_horse_exact_step_by_hand():
    # one exact step before the feature: u += lr * 1/2 sum_kind pi * (R_kind - G_kind)
    lr, p0 = 0.7, 0.6
    s = S.dog_horse_simulate(0.0, exact=True, steps=1, feature_step=5, lr=lr, p_dog0=p0,
                             record_every=1)
    pi = torch.full((10,), 0.4 / 9, dtype=torch.float64)
    pi[S.DOG] = p0
    g = torch.zeros(10, dtype=torch.float64)
    for label in (S.DOG, S.HORSE):
        r = torch.nn.functional.one_hot(torch.tensor(label), 10).double()
        g += 0.5 * pi * (r - (pi * r).sum())
    after = torch.softmax(pi.log() + lr * g, -1)
    assert s["p_dog_horse"][1, 0, 0].item() == pytest.approx(after[S.DOG].item(), abs=1e-14)
    assert s["p_horse_horse"][1, 0, 0].item() == pytest.approx(after[S.HORSE].item(), abs=1e-14)
    # the baseline moves towards the mean reward (p_dog + p_horse) / 2 = 0.3222...
    g_mean = 0.5 * (p0 + 0.4 / 9)
    assert s["v_horse"][1, 0, 0].item() == pytest.approx(0.1 + 0.3 * (g_mean - 0.1), abs=1e-14)


def test_dog_horse_baseline_learns_the_value_of_a_horse_image(dog_horse):
    _, exact = dog_horse
    v, p = exact["v_horse"][-1, :, 0], exact["p_horse_horse"][-1, :, 0]
    assert torch.allclose(v, p, atol=1e-3)                          # V(horse image) = E[R | horse]


def test_dog_horse_optimum_and_bad_input():
    opt = S.dog_horse_optimum(torch.tensor([0.0, 1.0, 0.1]))
    assert opt.tolist() == pytest.approx([1.0, math.e / (math.e + 9), 1 / (1 + 9 * math.exp(-10))])
    with pytest.raises(ValueError):
        S.dog_horse_simulate(0.0, p_dog0=1.0)


def test_dog_horse_collapsed_means_p_horse_below_one_tenth():
    """Planted bug: "collapsed" at P(horse | horse image) < 0.01 instead of 0.1.  With no
    steps the final policy is the starting one, P(horse | horse) = (1 - p_dog0) / 9: 0.05
    (p_dog0 = 0.55) is collapsed, 0.11 (p_dog0 = 0.01) is neither collapsed nor learned."""
    for p_dog0, p_hh, collapsed in ((0.55, 0.05, 1.0), (0.91, 0.01, 1.0), (0.01, 0.11, 0.0)):
        r = S.dog_horse_simulate([0.0, 0.1], steps=0, p_dog0=p_dog0, n_runs=3)
        assert r["final_policy"][..., 1, S.HORSE].flatten().tolist() == pytest.approx([p_hh] * 6)
        assert r["collapsed"].tolist() == [collapsed] * 2, p_dog0
        assert r["learned"].tolist() == [0.0, 0.0]
        assert r["between"].tolist() == [1.0 - collapsed] * 2
