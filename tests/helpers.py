"""Small helpers shared by several test files (imported as ``from helpers import ...``)."""
from __future__ import annotations

import importlib.util
from pathlib import Path


def load_file(name: str, path: Path):
    """The Python file ``path`` imported as a module called ``name`` (a script or a Sphinx
    extension that is not on ``sys.path``)."""
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def fail_torch_save(monkeypatch, on_call: int = 2) -> list:
    """Make ``torch.save`` raise ``OSError`` ENOSPC ("No space left on device") on its
    ``on_call``-th call (the others save as usual); returns the list of files it was given."""
    import torch

    real, calls = torch.save, []

    def full_disk(obj, f, *a, **k):
        calls.append(f)
        if len(calls) == on_call:
            raise OSError(28, "No space left on device")
        return real(obj, f, *a, **k)

    monkeypatch.setattr(torch, "save", full_disk)
    return calls


def bar_heights(ax) -> list:
    """The heights of the bars drawn in ``ax``, rounded to 6 decimals."""
    return [round(float(r.get_height()), 6) for r in ax.patches]


def bar_colors(ax) -> list:
    """The fill colours of the bars drawn in ``ax``, as ``#rrggbb``."""
    from matplotlib.colors import to_hex

    return [to_hex(r.get_facecolor()) for r in ax.patches]


def lines_data(fig) -> list:
    """Every line's data in every Axes of ``fig``: what changes when a slider redraws it."""
    return [tuple(map(tuple, ln.get_xydata().tolist())) for ax in fig.axes for ln in ax.lines]
