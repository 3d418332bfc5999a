"""pgviz.figures.collapse: the collapse figures show the simulations they are given."""
import numpy as np
import pytest
from matplotlib.figure import Figure

from pgviz import figures as F
from pgviz import sims as S
from pgviz.widgets import Control, interactive

from helpers import bar_colors, bar_heights, lines_data


def test_collapse_runs_redraw_for_another_entropy_weight():
    sweep = S.collapse_sweep((0.0, 3.0), n_seeds=20, steps=50, record_every=5)
    f1, f2 = Figure(), Figure()
    F.draw_collapse_runs(f1, sweep, 0.0)
    F.draw_collapse_runs(f2, sweep, 3.0)
    assert lines_data(f1) != lines_data(f2)


def test_collapse_slider_redraws_when_it_moves():
    sweep = S.collapse_sweep((0.0, 3.0), n_seeds=20, steps=50, record_every=5)
    w = interactive(lambda fig, lam: F.draw_collapse_runs(fig, sweep, lam),
                    {"lam": Control([0.0, 3.0], value=0.0)})
    before = lines_data(w.figure)
    w.sliders["lam"].value = 3.0
    assert lines_data(w.figure) != before


def test_dog_horse_figures_show_the_simulation():
    sim = S.dog_horse_simulate((0.0, 0.1), n_runs=20, steps=200, feature_step=100)
    exact = S.dog_horse_simulate((0.0, 0.1), exact=True, steps=200, feature_step=100)
    f0, f1 = Figure(), Figure()
    F.draw_dog_horse_runs(f0, sim, 0.0, exact)
    F.draw_dog_horse_runs(f1, sim, 0.1, exact)
    for fig, i in ((f0, 0), (f1, 1)):
        ax, bars = fig.axes
        assert bar_heights(bars) == [round(float(sim[k][i]), 6) for k in ("collapsed", "learned", "between")]
        assert bar_colors(bars) == [F.DOG_COLOR, F.HORSE_COLOR, F.MUTED]
        mean = [ln for ln in ax.lines if ln.get_label().startswith("P(horse | horse image), mean")][0]
        assert np.allclose(mean.get_ydata(), sim["p_horse_horse"][:, i].mean(-1).numpy())
        dashed = [ln for ln in ax.lines if "exact" in ln.get_label()][0]
        assert np.allclose(dashed.get_ydata(), exact["p_horse_horse"][:, i, 0].numpy())
        assert any(ln.get_xdata()[0] == 100 for ln in ax.lines)    # the feature step, dotted
    ax = F.draw_dog_horse_summary(None, sim, exact)
    lines = {ln.get_label(): ln.get_ydata() for ln in ax.lines}
    assert np.allclose(lines["runs that never say horse (P < 0.1)"], sim["collapsed"].numpy())
    assert np.allclose(lines[r"optimum $\mathrm{softmax}(R/\lambda)$"], [1.0, 1 / (1 + 9 * np.exp(-10))])
