"""pgviz.sims.ab: the A/B game (Averaging over time), the article's numbers."""
import math

import pytest
import torch

from pgviz import sims as S

torch.set_num_threads(1)


def test_ab_steps_article_numbers():
    s = S.ab_steps(50.0, 100.0, 0.5, lr=1.0, baseline=0.0)
    assert s["step_a"].tolist() == [25.0, -25.0]
    assert s["step_b"].tolist() == [-50.0, 50.0]
    assert s["expected"].tolist() == [-12.5, 12.5]
    # a baseline changes both steps but not their expectation
    s75 = S.ab_steps(50.0, 100.0, 0.5, lr=1.0, baseline=75.0)
    assert s75["step_a"].tolist() == [-12.5, 12.5] and s75["step_b"].tolist() == [-12.5, 12.5]
    assert s75["expected"].tolist() == [-12.5, 12.5]
    # general p: lr p (1 - p)(r_b - r_a)(-1, +1)
    g = S.ab_steps(30.0, 80.0, 0.2, lr=0.1, baseline=10.0)
    assert g["expected"][1].item() == pytest.approx(0.1 * 0.2 * 0.8 * 50)
    assert g["p_b_after_b"].item() > 0.2 > g["p_b_after_a"].item()


def test_ab_runs_go_the_right_way_on_average():
    r = S.ab_runs(50.0, 100.0, lr=0.01, steps=60, n_runs=4000, seed=0)
    p = r["p_b"]
    assert p.shape == (61, 4000)
    # after one step P(B) takes one of two values, with the single-step probabilities
    s = S.ab_steps(50.0, 100.0, 0.5, lr=0.01)
    vals = torch.stack([s["p_b_after_a"], s["p_b_after_b"]])
    assert torch.all((p[1][:, None] - vals).abs().min(-1).values < 1e-12)
    frac_b = (p[1] > 0.5).double().mean().item()
    assert abs(frac_b - 0.5) < 5 * math.sqrt(0.25 / 4000)
    # on average it goes the right way, close to (a bit below) the exact-gradient path
    mean = p.mean(-1)
    assert mean[-1] > 0.85 and mean[10] > 0.6
    assert mean[-1] < r["p_b_exact"][-1] + 0.01
    # settings broadcast: two baselines at once
    rb = S.ab_runs(50.0, 100.0, lr=0.01, baseline=torch.tensor([0.0, 75.0]), steps=5, n_runs=3)
    assert rb["p_b"].shape == (6, 2, 3) and rb["p_b_exact"].shape == (6, 2)
