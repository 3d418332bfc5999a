"""Plumbing the simulations share (private to :mod:`pgviz.sims`): float64 tensors, one
intra-op thread for tiny tensors, and a seeded generator."""
from __future__ import annotations

import contextlib
from typing import Optional, Sequence, Union

import torch

from ..exact import DTYPE

TensorLike = Union[float, Sequence[float], torch.Tensor]


def _t(x: TensorLike) -> torch.Tensor:
    return torch.as_tensor(x, dtype=DTYPE)


@contextlib.contextmanager
def one_thread():
    """Run small-tensor loops on one intra-op thread, then restore the caller's setting.

    The simulator's tensors are tiny ([settings x runs x 10]); on a busy machine extra
    threads only add synchronisation cost (measured: 7x slower with 2 threads under load).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def generator(seed: Optional[int]) -> torch.Generator:
    """A CPU generator seeded with ``seed`` (0 when ``None``): every simulation's own stream."""
    g = torch.Generator()
    g.manual_seed(0 if seed is None else int(seed))
    return g
