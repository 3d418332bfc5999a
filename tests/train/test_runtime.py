"""Device, precision and the progress display."""
import pytest
import torch

from helpers import train_config

from pgviz.train import ConfigError, cpu_has_native_bf16, resolve_precision, runtime, train


def test_resolve_precision():
    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu) == "fp32"
    assert resolve_precision("bf16", cpu) == "bf16"
    assert resolve_precision("auto", cpu) == ("bf16" if cpu_has_native_bf16() else "fp32")
    assert resolve_precision("auto", torch.device("cuda")) == "bf16"
    with pytest.raises(ConfigError, match="precision"):
        resolve_precision("fp16", cpu)


def test_plain_progress_lines_when_not_a_terminal(tmp_path, small, capsys, monkeypatch):
    monkeypatch.setattr(runtime.Progress, "interval", 0.0)
    train(train_config(tmp_path, epochs=1, progress=True), dataset=small)
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 4 and lines[-1].startswith("pgviz: step 4/4 (100%) epoch 1 loss")

