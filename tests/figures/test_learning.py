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
