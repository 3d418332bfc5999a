"""pgviz.figures.article: the article's figures carry the article's numbers and colours."""
import numpy as np
import pytest
from matplotlib.figure import Figure

from pgviz import figures as F
from pgviz.estimator import ARTICLE
from pgviz.widgets import interactive

from helpers import bar_colors, bar_heights


def test_policy_bars_article_numbers():
    ax = F.policy_bars()
    assert bar_heights(ax) == [0.6, 0.3, 0.05, 0.05]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["horse", "dog", "airplane", "cat"]
    assert set(bar_colors(ax)) == {F.POLICY}


def test_article_pairs_horse_and_dog():
    fig = F.article_pair("horse", fig=Figure())
    left, right = fig.axes
    assert bar_heights(left) == [0.175, 1.0]
    assert bar_colors(left) == [F.BASELINE, F.REWARD]
    assert bar_heights(right) == [-0.825, 0.0, 0.0, 0.0]
    assert set(bar_colors(right)) == {F.GRADIENT}

    fig = F.article_pair("dog", fig=Figure())
    left, right = fig.axes
    assert bar_heights(left) == [0.175, 0.0]
    assert bar_heights(right) == [0.0, 0.175, 0.0, 0.0]
    assert bar_heights(right)[1] == ARTICLE["grad_after"]["dog"]


def test_spread_panels_sum_to_zero_and_step_direction():
    fig = F.spread_panels("dog", fig=Figure())
    g_logp, g_z, policy = fig.axes
    assert bar_heights(g_logp) == [0.0, 0.175, 0.0, 0.0]
    gz = np.array(bar_heights(g_z))
    assert gz.sum() == pytest.approx(0.0, abs=1e-5)  # log-softmax gradient sums to zero
    assert gz[1] > 0 and (gz[[0, 2, 3]] < 0).all()  # dog pushed down, every other class up
    before, after = np.array(bar_heights(policy)[:4]), np.array(bar_heights(policy)[4:])
    assert before.tolist() == [0.6, 0.3, 0.05, 0.05]
    assert after[1] < before[1] and after.sum() == pytest.approx(1.0, abs=1e-5)


def test_horse_and_policy_shows_image():
    img = np.zeros((32, 32, 3), np.uint8)
    fig = F.horse_and_policy(img, fig=Figure())
    assert fig.axes[0].images[0].get_array().shape == (32, 32, 3)
    assert bar_heights(fig.axes[1]) == [0.6, 0.3, 0.05, 0.05]
    # CHW input is accepted too
    ax = F.image(np.zeros((3, 8, 8)), ax=Figure().add_subplot())
    assert ax.images[0].get_array().shape == (8, 8, 3)


def test_set_probability():
    q = F.set_probability(ARTICLE["probs"], 0, 0.2)
    assert q.sum() == pytest.approx(1.0)
    assert q[0] == 0.2
    assert q[1] / q[2] == pytest.approx(0.3 / 0.05)


def test_article_pair_in_a_widget():
    f = interactive(
        lambda fig, action, baseline: F.article_pair(action, baseline=baseline, fig=fig),
        {"action": ["horse", "dog"], "baseline": [0.0, 0.175, 0.5]},
    )
    assert bar_heights(f.figure.axes[1]) == [-0.825, 0.0, 0.0, 0.0]
    f.sliders["action"].value = "dog"
    assert bar_heights(f.figure.axes[1]) == [0.0, 0.175, 0.0, 0.0]
    f.sliders["baseline"].value = 0.5
    assert bar_heights(f.figure.axes[1]) == [0.0, 0.5, 0.0, 0.0]
    assert bar_heights(f.figure.axes[0]) == [0.5, 0.0]


def test_ten_label_view_has_the_articles_numbers_in_cifar10_order():
    order = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    expected = [0.05, 0, 0, 0.05, 0, 0.3, 0, 0.6, 0, 0]
    assert F.ten_class_probs().tolist() == expected
    ax = F.policy_bars_ten()
    assert [t.get_text() for t in ax.get_xticklabels()] == order
    assert bar_heights(ax) == expected
    assert set(bar_colors(ax)) == {F.POLICY}
    fig = F.policy_views()
    four, ten = fig.axes
    assert [t.get_text() for t in four.get_xticklabels()] == ARTICLE["labels"]
    assert bar_heights(four) == ARTICLE["probs"] and bar_heights(ten) == expected
    assert sum(bar_heights(four)) == pytest.approx(1.0) and sum(bar_heights(ten)) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        F.ten_class_probs([1.0], ["zebra"])
