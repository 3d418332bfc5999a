"""Test settings shared by the suite."""
import os

import pytest

# Spin-waiting OpenMP threads are 5-20x slower on a shared CPU; must be set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium per test module (see tests/browsers.py); skips without one,
    fails instead when PGVIZ_BROWSER_TEST is set."""
    from browsers import launch

    with launch() as b:
        yield b
