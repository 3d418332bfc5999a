"""Networks with ``n_classes + 1`` outputs: the policy logits, then the baseline logit.

* ``fast``      (default) a small residual-free CNN in the style of the fastest CIFAR-10
                trainers: conv-pool-BatchNorm-GELU groups, widths 32/64/128, channels_last,
                global max pooling.  About 0.3 M parameters; quick on a CPU.
* ``notebook``  the network of the article's companion notebook ({cite}`orr2021notebook`):
                a 7x7 convolution (64 channels), LeakyReLU, an 8x8 convolution with stride 4
                (64 channels), LeakyReLU, one linear layer.  316,747 parameters with 11
                outputs; needs 32 x 32 images.
* ``lenet``     a LeNet-style network (two 5x5 convolutions with max pooling, three fully
                connected layers); about 62 k parameters, needs 32 x 32 images.  It is *not*
                the notebook's network (``shallow``, its old name, still loads it, with a
                warning).

All take float NCHW images (channels_last memory is fine) and return ``[B, n_classes + 1]``:
the policy logits, then the baseline logit.  The notebook gives its network the extra
output only for the policy gradient; here every objective gets it and those that have no
baseline ignore it (a linear layer's initialisation depends on its inputs, not on how many
outputs it has, so the class outputs start out alike either way).
"""
from __future__ import annotations

import warnings

import torch
from torch import nn

__all__ = ["ALIASES", "MODELS", "FastCNN", "LeNet", "NotebookCNN", "canonical_model", "get_model"]


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


class NotebookCNN(nn.Module):
    """The companion notebook's network ({cite}`orr2021notebook`), written for pgviz:
    conv7x7(64, padding 3) - LeakyReLU - conv8x8(64, stride 4, padding 3) - LeakyReLU -
    linear(64 * 8 * 8 -> n_classes + 1).

    A 32 x 32 image keeps its size through the first convolution and comes out of the
    second at ``(32 + 2 * 3 - 8) // 4 + 1 = 8`` x 8; there is no pooling and no
    normalisation layer.  PyTorch's default initialisation, as in the notebook.
    """

    channels = 64
    # Contiguous (NCHW) memory: with its large 7x7 and 8x8 kernels a training step of 128
    # images took 0.33 s against 0.56 s in channels_last on the project's CPU in bfloat16
    # (one thread), and 1.04 s against 1.23 s in float32.
    memory_format = torch.contiguous_format

    def __init__(self, n_classes: int = 10, size: int = 32):
        super().__init__()
        c = self.channels
        side = (size + 2 * 3 - 8) // 4 + 1
        self.features = nn.Sequential(
            nn.Conv2d(3, c, 7, padding=3), nn.LeakyReLU(),
            nn.Conv2d(c, c, 8, stride=4, padding=3), nn.LeakyReLU(),
        )
        self.head = nn.Linear(c * side * side, n_classes + 1)
        self.n_classes = n_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.features(x.contiguous()), 1))


class LeNet(nn.Module):
    """conv5x5(6) - pool - conv5x5(16) - pool - fc120 - fc84 - fc(n_classes + 1), ReLU
    between them (LeNet-5's layout); not the companion notebook's network, which is
    :class:`NotebookCNN`."""

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
    "notebook": NotebookCNN,
    "lenet": LeNet,
}

#: Old names that still load a model, each with a warning: ``shallow`` was the LeNet's
#: name, which wrongly suggested the notebook's network.
ALIASES = {"shallow": "lenet"}


def canonical_model(name: str) -> str:
    """The model's name in :data:`MODELS`: an alias of :data:`ALIASES` becomes its model,
    with a :class:`FutureWarning` saying so; an unknown name raises ``ValueError``."""
    if name in ALIASES:
        new = ALIASES[name]
        warnings.warn(f"model {name!r} is deprecated: it is the LeNet, now called {new!r} "
                      f"(the companion notebook's network is 'notebook')", FutureWarning, stacklevel=3)
        return new
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}")
    return name


def get_model(name: str = "fast", n_classes: int = 10, *, standardize: bool = True) -> nn.Module:
    """A fresh network by name (one of :data:`MODELS`; an old name of :data:`ALIASES` works
    with a warning), in channels_last memory format unless its class says otherwise.

    ``standardize`` is the inputs it is trained on, kept as its attribute ``standardize``:
    per-channel standardised images, or the raw [0, 1] pixels (``False``; see
    :func:`pgviz.data.normalize`); :func:`pgviz.train.predict` feeds it accordingly."""
    cls = MODELS[canonical_model(name)]
    net = cls(n_classes).to(memory_format=getattr(cls, "memory_format", torch.channels_last))
    net.standardize = bool(standardize)
    return net
