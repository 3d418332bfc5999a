"""pgviz.plots: the article's figures carry the article's numbers and colours."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

from pgviz import plots
from pgviz.estimator import ARTICLE
from pgviz.widgets import interactive


def heights(ax):
    return [round(float(r.get_height()), 6) for r in ax.patches]


def colors(ax):
    return [to_hex(r.get_facecolor()) for r in ax.patches]


@pytest.fixture(autouse=True)
def close_all():
    yield
    plt.close("all")


def test_palette():
    assert plots.COLORS["policy"] == plots.COLORS["baseline"] == plots.POLICY
    assert len({plots.POLICY, plots.REWARD, plots.GRADIENT}) == 3


def test_policy_bars_article_numbers():
    ax = plots.policy_bars()
    assert heights(ax) == [0.6, 0.3, 0.05, 0.05]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["horse", "dog", "airplane", "cat"]
    assert set(colors(ax)) == {plots.POLICY}


def test_article_pairs_horse_and_dog():
    fig = plots.article_pair("horse", fig=Figure())
    left, right = fig.axes
    assert heights(left) == [0.175, 1.0]
    assert colors(left) == [plots.BASELINE, plots.REWARD]
    assert heights(right) == [-0.825, 0.0, 0.0, 0.0]
    assert set(colors(right)) == {plots.GRADIENT}

    fig = plots.article_pair("dog", fig=Figure())
    left, right = fig.axes
    assert heights(left) == [0.175, 0.0]
    assert heights(right) == [0.0, 0.175, 0.0, 0.0]
    assert heights(right)[1] == ARTICLE["grad_after"]["dog"]


def test_spread_panels_sum_to_zero_and_step_direction():
    fig = plots.spread_panels("dog", fig=Figure())
    g_logp, g_z, policy = fig.axes
    assert heights(g_logp) == [0.0, 0.175, 0.0, 0.0]
    gz = np.array(heights(g_z))
    assert gz.sum() == pytest.approx(0.0, abs=1e-5)  # log-softmax gradient sums to zero
    assert gz[1] > 0 and (gz[[0, 2, 3]] < 0).all()  # dog pushed down, every other class up
    before, after = np.array(heights(policy)[:4]), np.array(heights(policy)[4:])
    assert before.tolist() == [0.6, 0.3, 0.05, 0.05]
    assert after[1] < before[1] and after.sum() == pytest.approx(1.0, abs=1e-5)


def test_horse_and_policy_shows_image():
    img = np.zeros((32, 32, 3), np.uint8)
    fig = plots.horse_and_policy(img, fig=Figure())
    assert fig.axes[0].images[0].get_array().shape == (32, 32, 3)
    assert heights(fig.axes[1]) == [0.6, 0.3, 0.05, 0.05]
    # CHW input is accepted too
    ax = plots.image(np.zeros((3, 8, 8)), ax=Figure().add_subplot())
    assert ax.images[0].get_array().shape == (8, 8, 3)


def test_generic_helpers():
    ax = plots.bar_chart([1, -2, 3], ["a", "b", "c"], highlight=1)
    assert heights(ax) == [1, -2, 3]
    assert ax.patches[1].get_linewidth() == 2.0
    ax = plots.curves([1, 10, 100], {"err": [1, 0.3, 0.1], "1/sqrt(n)": [1, 0.316, 0.1]}, logx=True, logy=True)
    assert len(ax.lines) == 2 and ax.get_xscale() == "log"
    ax = plots.runs(np.arange(5), np.random.default_rng(0).random((10, 5)))
    assert len(ax.lines) == 11  # 10 runs + mean
    ax = plots.histogram(np.random.default_rng(0).normal(size=100), mark={"mean": 0.0})
    assert len(ax.lines) == 1


def test_set_probability():
    q = plots.set_probability(ARTICLE["probs"], 0, 0.2)
    assert q.sum() == pytest.approx(1.0)
    assert q[0] == 0.2
    assert q[1] / q[2] == pytest.approx(0.3 / 0.05)


def test_article_pair_in_a_widget():
    f = interactive(
        lambda fig, action, baseline: plots.article_pair(action, baseline=baseline, fig=fig),
        {"action": ["horse", "dog"], "baseline": [0.0, 0.175, 0.5]},
    )
    assert heights(f.figure.axes[1]) == [-0.825, 0.0, 0.0, 0.0]
    f.sliders["action"].value = "dog"
    assert heights(f.figure.axes[1]) == [0.0, 0.175, 0.0, 0.0]
    f.sliders["baseline"].value = 0.5
    assert heights(f.figure.axes[1]) == [0.0, 0.5, 0.0, 0.0]
    assert heights(f.figure.axes[0]) == [0.5, 0.0]


def test_running_mean_and_convergence():
    ax = plots.running_mean([1, 0, 1, 1], expected=0.75, sd=0.43)
    assert ax.lines[0].get_ydata().tolist() == [1.0, 0.5, 2 / 3, 0.75]
    assert len(ax.lines) == 4  # average, expected value, two band edges
    # the band is expected +- sd / sqrt(n): one standard error of an n-sample mean
    n = np.arange(1, 5)
    assert np.allclose(ax.lines[2].get_ydata(), 0.75 + 0.43 / np.sqrt(n))
    assert np.allclose(ax.lines[3].get_ydata(), 0.75 - 0.43 / np.sqrt(n))
    assert ax.lines[2].get_xdata().tolist() == n.tolist()
    ax = plots.convergence([1, 4, 16], [1.0, 0.5, 0.25])
    fitted = ax.lines[1].get_ydata()
    assert np.allclose(fitted, [1.0, 0.5, 0.25])  # exactly 1/sqrt(n): c = 1
    assert ax.get_xscale() == ax.get_yscale() == "log"


def test_dog_horse_figures_show_the_simulation():
    from pgviz import bandit

    sim = bandit.dog_horse_simulate((0.0, 0.1), n_runs=20, steps=200, feature_step=100)
    exact = bandit.dog_horse_simulate((0.0, 0.1), exact=True, steps=200, feature_step=100)
    f0, f1 = Figure(), Figure()
    plots.draw_dog_horse_runs(f0, sim, 0.0, exact)
    plots.draw_dog_horse_runs(f1, sim, 0.1, exact)
    for fig, i in ((f0, 0), (f1, 1)):
        ax, bars = fig.axes
        assert heights(bars) == [round(float(sim[k][i]), 6) for k in ("collapsed", "learned", "between")]
        assert colors(bars) == [plots.DOG_COLOR, plots.HORSE_COLOR, plots.MUTED]
        mean = [ln for ln in ax.lines if ln.get_label().startswith("P(horse | horse image), mean")][0]
        assert np.allclose(mean.get_ydata(), sim["p_horse_horse"][:, i].mean(-1).numpy())
        dashed = [ln for ln in ax.lines if "exact" in ln.get_label()][0]
        assert np.allclose(dashed.get_ydata(), exact["p_horse_horse"][:, i, 0].numpy())
        assert any(ln.get_xdata()[0] == 100 for ln in ax.lines)    # the feature step, dotted
    ax = plots.draw_dog_horse_summary(None, sim, exact)
    lines = {ln.get_label(): ln.get_ydata() for ln in ax.lines}
    assert np.allclose(lines["runs that never say horse (P < 0.1)"], sim["collapsed"].numpy())
    assert np.allclose(lines[r"optimum $\mathrm{softmax}(R/\lambda)$"], [1.0, 1 / (1 + 9 * np.exp(-10))])


def test_ten_label_view_has_the_articles_numbers_in_cifar10_order():
    order = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    expected = [0.05, 0, 0, 0.05, 0, 0.3, 0, 0.6, 0, 0]
    assert plots.ten_class_probs().tolist() == expected
    ax = plots.policy_bars_ten()
    assert [t.get_text() for t in ax.get_xticklabels()] == order
    assert heights(ax) == expected
    assert set(colors(ax)) == {plots.POLICY}
    fig = plots.policy_views()
    four, ten = fig.axes
    assert [t.get_text() for t in four.get_xticklabels()] == ARTICLE["labels"]
    assert heights(four) == ARTICLE["probs"] and heights(ten) == expected
    assert sum(heights(four)) == pytest.approx(1.0) and sum(heights(ten)) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        plots.ten_class_probs([1.0], ["zebra"])
