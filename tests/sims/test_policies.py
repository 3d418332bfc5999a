"""pgviz.sims.policies: the chapters' policies carry the article's numbers."""
import pytest
import torch

from pgviz import sims as S
from pgviz.data import CIFAR10_CLASSES

torch.set_num_threads(1)


def test_confident_policy_and_article_policy():
    pi = torch.softmax(S.confident_policy(torch.tensor([0.3, 0.9])), -1)
    assert pi.shape == (2, 10)
    assert pi[:, S.HORSE].tolist() == pytest.approx([0.3, 0.9])
    assert pi[0, S.DOG].item() == pytest.approx(0.7 / 9)
    art = torch.softmax(S.article_policy(eps=0.02), -1)
    assert art.sum().item() == pytest.approx(1.0)
    assert art[S.HORSE].item() == pytest.approx(0.6 * 0.98)
    assert art[S.DOG].item() == pytest.approx(0.3 * 0.98)
    assert art[CIFAR10_CLASSES.index("truck")].item() == pytest.approx(0.02 / 6)
    with pytest.raises(ValueError):
        S.confident_policy(1.0)
