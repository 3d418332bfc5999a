"""pgviz.figures.estimates: the Monte Carlo and variance figures respond to their controls."""
import numpy as np
import pytest
from matplotlib.figure import Figure

from pgviz import figures as F
from pgviz import sims as S

from helpers import bar_heights, lines_data


def test_baseline_slider_redraws_for_another_baseline():
    f1, f2 = Figure(), Figure()
    F.draw_baseline_slider(f1, S.baseline_slice(0.0, 0.9, n_draws=500))
    F.draw_baseline_slider(f2, S.baseline_slice(0.9, 0.9, n_draws=500))
    assert lines_data(f1) != lines_data(f2)


def test_baseline_slider_draws_the_slice_it_is_given():
    s = S.baseline_slice(0.3, 0.9, n_draws=500)
    fig = F.draw_baseline_slider(Figure(), s)
    ax, shares = fig.axes
    curve = [ln for ln in ax.lines if ln.get_label() == "exact variance"][0]
    assert np.allclose(curve.get_ydata(), s["curve"].numpy()) and np.allclose(curve.get_xdata(), s["bs"].numpy())
    star = [ln for ln in ax.lines if ln.get_label().startswith("minimum")][0]
    assert star.get_xydata().tolist() == [[s["b_opt"], s["var_opt"]]]
    assert bar_heights(shares) == [round(float(v), 6) for v in s["shares"]]
    assert shares.get_ylim()[1] == pytest.approx(s["share_top"] * 1.15)
    (legend,) = fig.legends  # below the panels, not inside the curve's axes, and legible
    assert ax.get_legend() is None and len(legend.get_texts()) == 5
    assert all(t.get_fontsize() >= 9 for t in legend.get_texts())
