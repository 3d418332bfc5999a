"""pgviz.sims.loop: the training-loop simulator is gradient ascent, vectorised over settings."""
import pytest
import torch

from pgviz import exact as X
from pgviz import sims as S

torch.set_num_threads(1)


def test_simulate_exact_is_plain_gradient_ascent():
    logits0, rewards = S.collapse_setup()
    hist = S.simulate(logits0, rewards, lr=0.5, steps=20, entropy_weight=0.05, exact=True)
    theta = logits0.clone()
    for _ in range(20):
        theta = theta + 0.5 * (X.exact_gradient(theta, rewards) + 0.05 * X.entropy_gradient(theta))
    assert hist.shape == (21, 1, 10)
    assert torch.allclose(hist[-1, 0], torch.softmax(theta, -1), atol=1e-12)


def test_simulate_broadcasts_settings():
    logits0, rewards = S.collapse_setup()
    h = S.simulate(logits0, rewards, lr=torch.tensor([0.1, 1.0])[:, None], steps=10,
                   entropy_weight=torch.tensor([0.0, 0.1, 1.0]), n_runs=7, record_every=5)
    assert h.shape == (3, 2, 3, 7, 10)
    assert torch.allclose(h.sum(-1), torch.ones(()).double())
