"""Fixtures of the trainer's tests."""
import pytest
import torch

from pgviz import data


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One intra-op thread: on a shared 2-core machine two spinning OpenMP threads can be
    many times slower than one (the CLI sets OMP_WAIT_POLICY=PASSIVE for the same reason)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def small():
    """256 training and 128 test images of the synthetic data set."""
    return data.make_synthetic(256, 128)
