"""Networks with ``n_classes + 1`` outputs: the policy logits, then the baseline logit.

* ``fast``    (default) a small residual-free CNN in the style of the fastest CIFAR-10
              trainers: conv-pool-BatchNorm-GELU groups, widths 32/64/128, channels_last,
              global max pooling.  About 0.3 M parameters; quick on a CPU.
* ``shallow`` a LeNet-style shallow network (two 5x5 convolutions, three fully connected
              layers), the kind of model the article trains, kept for fidelity.

Both take float NCHW images (channels_last memory is fine) and return ``[B, n_classes + 1]``.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["MODELS", "FastCNN", "ShallowCNN", "get_model"]


def _conv_bn(c_in: int, c_out: int) -> list:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.GELU()]


class FastCNN(nn.Module):
    """stem conv, then three groups of (conv, max-pool, BN, GELU, conv, BN, GELU)."""

    def __init__(self, n_classes: int = 10, widths=(32, 64, 128)):
        super().__init__()
        w0 = widths[0] // 2
        layers = _conv_bn(3, w0)
        c = w0
        for w in widths:
            layers += [nn.Conv2d(c, w, 3, padding=1, bias=False), nn.MaxPool2d(2),
                       nn.BatchNorm2d(w), nn.GELU(), *_conv_bn(w, w)]
            c = w
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c, n_classes + 1)
        self.n_classes = n_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x)
        h = torch.amax(h, dim=(2, 3))  # global max pool
        return self.head(h)


class ShallowCNN(nn.Module):
    """conv5x5(6) - pool - conv5x5(16) - pool - fc120 - fc84 - fc(n_classes + 1)."""

    def __init__(self, n_classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.ReLU(),
            nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, n_classes + 1),
        )
        self.n_classes = n_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


MODELS = {
    "fast": FastCNN,
    "shallow": ShallowCNN,
}


def get_model(name: str = "fast", n_classes: int = 10) -> nn.Module:
    """A fresh network by name (``fast`` or ``shallow``), in channels_last memory format."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}")
    return MODELS[name](n_classes).to(memory_format=torch.channels_last)
