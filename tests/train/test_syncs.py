"""No hidden host-device sync in a training step: counted on the CPU with the profiler
(``aten::_local_scalar_dense`` is what ``.item()``, ``bool(tensor)`` and C++ checks call) and
with a hook on ``torch.tensor(..., device=...)`` (a blocking copy from the host on a GPU)."""
import pytest
import torch
from torch.profiler import ProfilerActivity, profile

from pgviz import data, objectives


def _steps(objective, n=3, **options):
    ds = data.make_synthetic(256, 16)
    loader = data.DeviceLoader(ds.train_images, ds.train_labels, 64, seed=0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, ds.n_classes + 1))
    gen = torch.Generator().manual_seed(1)
    it = iter(loader)
    x, y = next(it)  # warm-up outside the count
    made = []
    real = torch.tensor

    def counting(*a, **k):
        if k.get("device") is not None:
            made.append(k["device"])
        return real(*a, **k)

    torch.tensor = counting
    try:
        with profile(activities=[ProfilerActivity.CPU], with_stack=True) as prof:
            for _ in range(n):
                x, y = next(it)
                loss, stats = objectives.objective_step(objective, net(x), y, generator=gen, entropy_weight=0.0,
                                                        **options)
                loss.backward()
    finally:
        torch.tensor = real
    reads = [e for e in prof.events() if e.name == "aten::_local_scalar_dense" and not _cpu_only(e)]
    return len(reads), made


def _cpu_only(event):
    """A label range check (objectives.check_labels, estimator._check_labels) or the outputs'
    finiteness check (estimator.check_outputs), which run only on the CPU and only when
    objective_step's check_range asks (the trainer skips them: no read-back per step)."""
    p = event.cpu_parent
    while p is not None:
        if "check_labels" in p.name or "check_outputs" in p.name:
            return True
        p = p.cpu_parent
    return False


@pytest.mark.parametrize("objective, options", [("pg", {}), ("xent", {}), ("rloo", {"samples": 4})])
def test_a_step_reads_nothing_back_from_the_device(objective, options):
    options = objectives.resolve_options(objective, options)
    reads, made = _steps(objective, **options)
    assert reads == 0, f"{reads} values read back in 3 steps of {objective}"
    assert made == [], f"torch.tensor(..., device=...) per step: {made}"
