"""pgviz.figures.learning: the smoothing drawn over the live panel's per-step curves."""
import numpy as np
import pytest

from pgviz import figures as F


def test_smooth_is_a_debiased_moving_average():
    assert F.smooth([2.0, 2.0, 2.0], 0.9) == pytest.approx([2.0, 2.0, 2.0])
    # m1 = 0.5 * 0 / (1 - 0.5) = 0; m2 = (0.5 * 0 + 0.5 * 1) / (1 - 0.25) = 2/3
    assert F.smooth([0.0, 1.0], 0.5) == pytest.approx([0.0, 2 / 3])
    out = F.smooth([1.0, None, 3.0], 0.5)  # a missing value is skipped
    assert np.isnan(out[1]) and out[2] == pytest.approx((0.25 * 1 + 0.5 * 3) / 0.75)
    assert F.smooth([4.0, 1.0], 0.0) == pytest.approx([4.0, 1.0])  # no smoothing
    with pytest.raises(ValueError):
        F.smooth([1.0], 1.0)


def test_snapshot_bar_labels_are_legible_and_mark_the_true_label():
    import types

    import torch

    import matplotlib
    from matplotlib.figure import Figure

    rec = types.SimpleNamespace(snapshots=[np.full((2, 10), 0.1)], labels=torch.tensor([7, 3]),
                                images=torch.zeros(2, 32, 32, 3, dtype=torch.uint8), epochs=[6])
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    fig = Figure()
    F.draw_snapshot(fig, rec, names, 0)
    for ax, true in ((fig.axes[2], 7), (fig.axes[3], 3)):  # the bar rows
        ticks = ax.get_xticklabels()
        assert [t.get_text() for t in ticks][true] == names[true][:4]
        assert all(t.get_fontsize() >= 9 and t.get_rotation() == 90 for t in ticks)
        assert ticks[true].get_fontweight() == "bold" and ticks[0].get_fontweight() != "bold"
        assert matplotlib.colors.same_color(ticks[true].get_color(), F.style.REWARD)
