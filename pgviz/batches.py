"""Batches on the device: per-channel normalisation, the flip-and-crop augmentation, and
the loader whose order is resumable (its state is saved in every checkpoint).

Split from :mod:`pgviz.data` (which re-exports these names): ``data`` reads and checks data
sets, this module turns their tensors into training batches."""
from __future__ import annotations

from typing import Iterator, Optional

import torch

from .data import CIFAR10_MEAN, CIFAR10_STD

__all__ = ["normalize", "augment", "DeviceLoader"]

# ----------------------------------------------------------------------------
# Batch transforms (on whatever device the batch is on)
# ----------------------------------------------------------------------------
_NORM_CACHE: dict = {}


def _norm_constants(device: torch.device, dtype) -> tuple:
    """``(mean, 1 / std)`` in pixel units on ``device``, made once per (device, dtype): a
    fresh ``torch.tensor(..., device=cuda)`` per batch is a blocking host-to-device copy."""
    key = (str(device), dtype)
    if key not in _NORM_CACHE:
        mean = torch.tensor(CIFAR10_MEAN, device=device, dtype=dtype) * 255
        _NORM_CACHE[key] = (mean, 1.0 / (torch.tensor(CIFAR10_STD, device=device, dtype=dtype) * 255))
    return _NORM_CACHE[key]


def normalize(images: torch.Tensor, dtype=torch.float32, *, standardize: bool = True) -> torch.Tensor:
    """uint8 NHWC -> float NCHW (channels_last memory), standardised per channel with the
    CIFAR-10 training set's mean and deviation; ``standardize=False``: the raw pixels in
    [0, 1] (``pixel / 255``, as torchvision's ``ToTensor`` gives them, the companion
    notebook's inputs)."""
    if not standardize:
        return (images.to(dtype) / 255).permute(0, 3, 1, 2)
    mean, inv_std = _norm_constants(images.device, dtype)
    x = (images.to(dtype) - mean) * inv_std  # still NHWC
    return x.permute(0, 3, 1, 2)  # NCHW view of NHWC memory == channels_last


def augment(images: torch.Tensor, generator: Optional[torch.Generator] = None, pad: int = 4,
            flip: bool = True) -> torch.Tensor:
    """Random horizontal flip and pad-``pad``-then-random-crop on a uint8 NHWC batch.

    One vectorised gather for the whole batch; zero padding, as torchvision's
    ``RandomCrop(32, padding=4)`` does.
    """
    n, h, w, _ = images.shape
    dev = images.device
    if pad > 0:
        padded = torch.nn.functional.pad(images, (0, 0, pad, pad, pad, pad))
        dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=dev)
        dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=dev)
    else:
        padded = images
        dy = dx = torch.zeros(n, dtype=torch.long, device=dev)
    rows = dy[:, None] + torch.arange(h, device=dev)  # [n, h]
    cols = dx[:, None] + torch.arange(w, device=dev)  # [n, w]
    if flip:
        flips = torch.rand(n, generator=generator, device=dev) < 0.5
        cols = torch.where(flips[:, None], cols.flip(1), cols)
    idx = torch.arange(n, device=dev)[:, None, None]
    return padded[idx, rows[:, :, None], cols[:, None, :]]


class DeviceLoader:
    """Batches of ``(normalised float images, labels)`` from a data set held on ``device``
    (``standardize=False``: raw [0, 1] pixels, :func:`normalize`; ``drop_last``: whether a
    training epoch leaves out its last, smaller batch, as it does by default).

    The uint8 images are copied to the device once.  Each epoch draws a permutation with
    ``torch.randperm(generator=...)``; each batch is gathered, augmented and normalised on
    the device.  All randomness comes from ``generator`` (on the device when it can be),
    and :meth:`state_dict` captures the epoch's order and position, so a run can stop
    between any two batches and resume exactly.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, *,
                 device="cpu", train: bool = True, augment: bool = True, seed: int = 0,
                 drop_last: Optional[bool] = None, standardize: bool = True):
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.device = torch.device(device)
        self.images = images.to(self.device, non_blocking=True)
        self.labels = labels.to(self.device, non_blocking=True)
        self.batch_size = batch_size
        self.train = train
        self.augment = augment and train
        self.standardize = standardize
        self.drop_last = train if drop_last is None else drop_last
        if self.drop_last and len(labels) < batch_size:
            self.drop_last = False  # a tiny set still gives one batch per epoch
        gen_device = self.device if self.device.type in ("cpu", "cuda") else torch.device("cpu")
        self.generator = torch.Generator(device=gen_device).manual_seed(seed)
        self._perm: Optional[torch.Tensor] = None
        self._pos = 0

    def __len__(self) -> int:
        n = len(self.labels)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _new_epoch(self):
        n = len(self.labels)
        if self.train:
            perm = torch.randperm(n, generator=self.generator, device=self.generator.device)
            self._perm = perm.to(self.device, non_blocking=True)
        else:
            self._perm = torch.arange(n, device=self.device)
        self._pos = 0

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if self._perm is None:
            self._new_epoch()
        while self._pos < len(self):
            i = self._pos * self.batch_size
            idx = self._perm[i:i + self.batch_size]
            x = self.images[idx]
            if self.augment:
                gen_dev = self.generator.device
                x = augment(x.to(gen_dev), self.generator).to(self.device, non_blocking=True) \
                    if gen_dev != self.device else augment(x, self.generator)
            self._pos += 1
            yield normalize(x, standardize=self.standardize), self.labels[idx]
        self._perm = None  # the next iteration starts a new epoch

    @property
    def position(self) -> int:
        """Batches already served in the current epoch (0 between epochs)."""
        return self._pos if self._perm is not None else 0

    def state_dict(self) -> dict:
        return {
            "generator": self.generator.get_state(),
            "perm": None if self._perm is None else self._perm.cpu(),
            "pos": self._pos if self._perm is not None else 0,
        }

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self._perm = None if state["perm"] is None else state["perm"].to(self.device)
        self._pos = int(state["pos"])
