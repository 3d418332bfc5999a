"""The learning-rate warm-up and the weight average."""
import json

import pytest
import torch
from unittest import mock

from helpers import train_config

from pgviz.train import WeightAverage, train, warmup_lr


def test_weight_average_is_an_exact_lerp():
    live = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        live.weight.fill_(0.0)
    avg = WeightAverage(live, decay=0.99)
    with torch.no_grad():
        live.weight.fill_(1.0)
    avg.update(live)  # d = min(0.99, 2 / 11): avg = d * 0 + (1 - d) * 1
    assert avg.model.weight.item() == pytest.approx(1 - 2 / 11, abs=1e-7)
    avg.update(live)  # d = 3 / 12: avg = d * (9 / 11) + (1 - d) * 1
    assert avg.model.weight.item() == pytest.approx(0.25 * 9 / 11 + 0.75, abs=1e-7)


def test_warmup_starts_at_lr_over_warmup_steps(tmp_path, small):
    assert [warmup_lr(s, 1.0, 4) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert warmup_lr(0, 0.3, 0) == 0.3
    train(train_config(tmp_path, epochs=2, log_every=1), dataset=small)
    rows = [json.loads(l) for l in open(tmp_path / "metrics.jsonl")]
    lrs = [r["lr"] for r in rows if r["event"] == "step"]
    assert lrs == pytest.approx([3e-3 * k / 4 for k in (1, 2, 3, 4)] + [3e-3] * 4)


def test_warmup_lr_is_what_adam_used(tmp_path, small):
    used = []
    real = torch.optim.Adam.step

    def step(self, *a, **k):
        used.append(self.param_groups[0]["lr"])
        return real(self, *a, **k)

    torch.optim.Adam.step = step
    try:
        train(train_config(tmp_path, epochs=1, out=None), dataset=small)
    finally:
        torch.optim.Adam.step = real
    assert used == pytest.approx([3e-3 * k / 4 for k in (1, 2, 3, 4)])



def test_the_weight_average_is_two_foreach_ops_and_equals_the_per_tensor_lerp():
    import copy as _copy

    from torch.profiler import ProfilerActivity, profile

    from pgviz.models import get_model
    from pgviz.train.optim import WeightAverage
    torch.manual_seed(0)
    net = get_model("fast", 10)
    avg = WeightAverage(net, 0.99)
    ref = _copy.deepcopy(avg.model)
    for step in range(1, 4):
        with torch.no_grad():
            for p in net.parameters():
                p.add_(torch.randn_like(p))
            for b in net.buffers():
                if b.is_floating_point():
                    b.add_(1.0)
                else:
                    b.add_(1)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            avg.update(net)
        top = [e.name for e in prof.events() if e.cpu_parent is None and e.name.startswith("aten::")]
        assert sorted(top) == ["aten::_foreach_copy_", "aten::_foreach_lerp_"], top
        d = min(0.99, (1 + step) / (10 + step))
        with torch.no_grad():
            for a, b in zip(ref.state_dict().values(), net.state_dict().values()):
                a.lerp_(b, 1 - d) if a.is_floating_point() else a.copy_(b)
    for (k, a), b in zip(avg.model.state_dict().items(), ref.state_dict().values()):
        assert torch.equal(a, b), k


def test_adam_is_fused_on_cuda_and_foreach_elsewhere():
    from pgviz.train.optim import adam
    w = [torch.nn.Parameter(torch.zeros(3))]
    assert adam(w, 1e-3, torch.device("cpu")).defaults["foreach"] is True
    with mock.patch.object(torch.optim, "Adam", lambda params, **kw: kw):
        assert adam(w, 1e-3, torch.device("cuda")) == {"lr": 1e-3, "fused": True}
