"""pgviz.figures.charts: the generic charts draw what they are given."""
import numpy as np
import pytest

from pgviz import figures as F

from helpers import bar_heights


def test_generic_helpers():
    ax = F.bar_chart([1, -2, 3], ["a", "b", "c"], highlight=1)
    assert bar_heights(ax) == [1, -2, 3]
    assert ax.patches[1].get_linewidth() == 2.0
    ax = F.curves([1, 10, 100], {"err": [1, 0.3, 0.1], "1/sqrt(n)": [1, 0.316, 0.1]}, logx=True, logy=True)
    assert len(ax.lines) == 2 and ax.get_xscale() == "log"
    ax = F.runs(np.arange(5), np.random.default_rng(0).random((10, 5)))
    assert len(ax.lines) == 11  # 10 runs + mean
    ax = F.histogram(np.random.default_rng(0).normal(size=100), mark={"mean": 0.0})
    assert len(ax.lines) == 1


def test_running_mean_and_convergence():
    ax = F.running_mean([1, 0, 1, 1], expected=0.75, sd=0.43)
    assert ax.lines[0].get_ydata().tolist() == [1.0, 0.5, 2 / 3, 0.75]
    assert len(ax.lines) == 4  # average, expected value, two band edges
    # the band is expected +- sd / sqrt(n): one standard error of an n-sample mean
    n = np.arange(1, 5)
    assert np.allclose(ax.lines[2].get_ydata(), 0.75 + 0.43 / np.sqrt(n))
    assert np.allclose(ax.lines[3].get_ydata(), 0.75 - 0.43 / np.sqrt(n))
    assert ax.lines[2].get_xdata().tolist() == n.tolist()
    ax = F.convergence([1, 4, 16], [1.0, 0.5, 0.25])
    fitted = ax.lines[1].get_ydata()
    assert np.allclose(fitted, [1.0, 0.5, 0.25])  # exactly 1/sqrt(n): c = 1
    assert ax.get_xscale() == ax.get_yscale() == "log"
