"""pgviz.figures.gap: the gap chapter's figures draw the probe rows and runs they are given."""
import pytest
from matplotlib.figure import Figure

from pgviz import figures as F


def _fake_probe(epoch, scale):
    est = {n: {"trace_cov": scale * (i + 1), "cosine": 0.1 * (i + 1), "cosine_of_mean": 0.5, "snr": 1.0,
               "reward_queries": 1}
           for i, n in enumerate(["no-baseline", "learned-V", "optimal-constant", "rloo-2"])}
    return {"event": "probe", "epoch": epoch, "step": 10 * epoch, "batch_size": 8, "samples": 4,
            "exact_norm": 1.0, "expected_reward": 0.1 * epoch, "accuracy": 0.2, "estimators": est}


def test_gap_figures_and_slider():
    probes = [_fake_probe(e, s) for e, s in ((1, 2.0), (5, 1.0), (10, 0.5))]
    fig = F.gap_noise(probes, 5, fig=Figure())
    ax_t, ax_c = fig.axes
    assert len(ax_t.get_lines()) == 6  # 4 estimators, |g*|^2 and the epoch marker
    assert list(ax_t.get_lines()[0].get_ydata()) == [2.0, 1.0, 0.5]
    assert [round(p.get_width(), 6) for p in ax_c.patches] == [0.1, 0.2, 0.3, 0.4]
    assert "epoch 5" in ax_c.get_title()
    s = F.probe_slider(probes)
    assert s.n_frames == 3 and s.controls["epoch"].values == [1, 5, 10] and s.controls["epoch"].value == 10
    html = s.to_html()
    assert "pgviz-frames" in html and html.count("data:image/png") >= 1
    runs = {"pg": [{"epochs": [{"epoch": 1, "images_seen": 100, "test_acc": 0.2},
                               {"epoch": 2, "images_seen": 200, "test_acc": 0.4}]}],
            "xent": [{"epochs": [{"epoch": 1, "images_seen": 100, "test_acc": 0.5},
                                 {"epoch": 2, "images_seen": 200, "test_acc": 0.6}]}]}
    fig = F.gap_curves(runs, {"pg": 4, "xent": None}, order=["xent", "pg"], fig=Figure())
    ax_e, ax_q = fig.axes
    assert len(ax_e.get_lines()) == 2 and len(ax_q.get_lines()) == 1  # xent has no reward queries
    assert list(ax_q.get_lines()[0].get_xdata()) == [400.0, 800.0]
    (legend,) = fig.legends  # one legend shared by both panels, legible
    assert [t.get_text() for t in legend.get_texts()] == ["xent (1 seeds)", "pg (1 seeds)"]
    assert all(t.get_fontsize() >= 9 for t in legend.get_texts())
    runs["grpo-4"] = runs["pg"]
    fig = F.gap_curves(runs, {"pg": 1, "grpo-4": 4, "xent": None}, order=["pg", "grpo-4"], fig=Figure())
    styles = [l.get_linestyle() for l in fig.axes[0].get_lines()]
    assert styles == ["-", "--"]  # grpo-4 dashed (F.LINESTYLES)
    fig = F.gap_directions([0.5, 0.3, 0.2], 1, fig=Figure())
    bars = [p.get_height() for p in fig.axes[1].patches]
    assert bars == pytest.approx([0.3 * -0.5, 0.3 * 0.7, 0.3 * -0.2])
