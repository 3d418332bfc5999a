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


def train_config(folder, /, **over):
    """A small CPU run (synthetic data, 2 epochs of batch 64, float32) written to ``folder``;
    ``over`` changes any setting."""
    from pgviz.train import TrainConfig

    base = dict(objective="pg", data="synthetic", out=str(folder), epochs=2, batch_size=64,
                lr=3e-3, seed=0, device="cpu", progress=False, warmup_steps=4,
                precision="fp32")  # bf16 runs: test_bf16_*
    base.update(over)
    return TrainConfig(**base)


def checkpoint_params(path) -> dict:
    """Every tensor of a checkpoint's network and of its weight average, by name."""
    from pgviz.train import load_checkpoint

    ckpt = load_checkpoint(path)
    return {**ckpt["model"], **{"ema." + k: v for k, v in ckpt["ema"].items()}}


def same_tensors(a: dict, b: dict) -> bool:
    """The same names and bit for bit the same tensors."""
    import torch

    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def assert_finite_checkpoint(path) -> dict:
    """The checkpoint at ``path``, after asserting that no tensor in it is NaN or infinite."""
    from pgviz.train import load_checkpoint
    from pgviz.train.rundir import nonfinite

    ckpt = load_checkpoint(path)
    assert nonfinite(ckpt["model"], ckpt["ema"], ckpt["optimizer"]["state"]) == []
    return ckpt


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


def lenet_config(tmp_path=None, **kw):
    """A small in-memory (or ``tmp_path``) run of the LeNet: pg, 2 epochs of batch 64, no
    warm-up, no progress display; ``kw`` changes any setting."""
    from pgviz.train import TrainConfig

    base = dict(objective="pg", epochs=2, batch_size=64, progress=False, warmup_steps=0, model="lenet",
                out=str(tmp_path) if tmp_path else None)
    base.update(kw)
    return TrainConfig(**base)
