"""The networks: every one outputs the policy's logits plus the baseline's."""
import pytest
import torch

from pgviz import models


def test_models_output_policy_plus_baseline():
    x = torch.randn(4, 3, 32, 32)
    for name in models.MODELS:
        out = models.get_model(name, 10)(x)
        assert out.shape == (4, 11)
    with pytest.raises(ValueError, match="unknown model"):
        models.get_model("resnet1000")
