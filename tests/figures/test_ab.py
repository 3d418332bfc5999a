"""pgviz.figures.ab: the A/B figures show the steps and runs they are given."""
import pytest
from matplotlib.figure import Figure

from pgviz import figures as F
from pgviz import sims as S
from pgviz.widgets import Control, interactive

from helpers import lines_data


def test_ab_steps_redraw_for_other_rewards():
    f1, f2 = Figure(), Figure()
    F.draw_ab_steps(f1, 50, 100, 0)
    F.draw_ab_steps(f2, 25, 100, 0)
    h1 = [p.get_height() for p in f1.axes[0].patches]
    h2 = [p.get_height() for p in f2.axes[0].patches]
    assert h1[:2] == pytest.approx([-0.5, 1.0]) and h2[:2] == pytest.approx([-0.25, 1.0])


def test_ab_slider_redraws_when_it_moves():
    ab = S.ab_sweep(r_a=(25.0, 50.0), r_b=(100.0,), lr=(0.01,), baseline=(0.0, 75.0), steps=10, n_runs=5)
    w = interactive(lambda fig, r_a, b: F.draw_ab_runs(fig, ab, r_a=r_a, r_b=100.0, lr=0.01, baseline=b),
                    {"r_a": [25.0, 50.0], "b": Control([0.0, 75.0], value=0.0)})
    before = lines_data(w.figure)
    w.sliders["b"].value = 75.0
    assert lines_data(w.figure) != before
