"""Device, precision and the progress display."""
import contextlib

import pytest
import torch

from helpers import train_config

from pgviz.train import ConfigError, cpu_has_native_bf16, resolve_precision, runtime, train


def test_resolve_precision():
    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu) == "fp32"
    assert resolve_precision("bf16", cpu) == "bf16"
    assert resolve_precision("auto", cpu) == ("bf16" if cpu_has_native_bf16() else "fp32")
    # on cuda: bf16 where the GPU has it natively (test_cuda_bf16_only_where_native_else_fp32)
    with pytest.raises(ConfigError, match="precision"):
        resolve_precision("fp16", cpu)


def test_plain_progress_lines_when_not_a_terminal(tmp_path, small, capsys, monkeypatch):
    monkeypatch.setattr(runtime.Progress, "interval", 0.0)
    train(train_config(tmp_path, epochs=1, progress=True), dataset=small)
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 4 and lines[-1].startswith("pgviz: step 4/4 (100%) epoch 1 loss")



# --- CUDA settings, checked with mocks (no GPU here) ---------------------------------
from unittest import mock

from pgviz.train import runtime as _rt


def _flags():
    c, m = torch.backends.cudnn, torch.backends.cuda.matmul
    return (c.deterministic, c.benchmark, c.allow_tf32, m.allow_tf32, torch.are_deterministic_algorithms_enabled())


def test_cuda_fp32_turns_tf32_off_and_determinism_on_and_puts_them_back(monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    before = _flags()
    with _rt.device_settings(torch.device("cuda"), "fp32"):
        assert _flags() == (True, False, False, False, True)
        assert torch.is_deterministic_algorithms_warn_only_enabled()
        import os
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    assert _flags() == before
    with _rt.device_settings(torch.device("cuda"), "bf16"):
        assert _flags()[:2] == (True, False) and _flags()[2] == before[2]  # TF32 is left alone in bf16
    assert _flags() == before


def test_cpu_changes_no_backend_flag():
    before = _flags()
    with _rt.device_settings(torch.device("cpu"), "fp32"):
        assert _flags() == before


def test_evaluation_and_training_run_inside_the_settings(tmp_path):
    seen = []
    real = _rt.device_settings

    def spy(device, precision):
        seen.append((torch.device(device).type, precision))
        return real(device, precision)

    from pgviz.train import evaluation, loop
    with mock.patch.object(evaluation, "device_settings", spy), mock.patch.object(loop, "device_settings", spy):
        from pgviz import data
        from helpers import train_config
        loop.train(train_config(tmp_path, epochs=1), dataset=data.make_synthetic(64, 16))
    assert ("cpu", "fp32") in seen and len(seen) >= 2  # the loop and its evaluation


@pytest.mark.parametrize("native, asked, used", [(True, "auto", "bf16"), (False, "auto", "fp32"),
                                                 (False, "bf16", "fp32"), (True, "fp32", "fp32")])
def test_cuda_bf16_only_where_native_else_fp32(native, asked, used):
    with mock.patch.object(torch.cuda, "is_bf16_supported", lambda including_emulation=True: native and True):
        assert _rt.resolve_precision(asked, torch.device("cuda")) == used


def test_emulated_bf16_does_not_count_and_old_torch_without_the_keyword_works():
    calls = []

    def new(including_emulation=True):
        calls.append(including_emulation)
        return including_emulation  # emulation only
    with mock.patch.object(torch.cuda, "is_bf16_supported", new):
        assert _rt.cuda_has_native_bf16() is False and calls == [False]
    with mock.patch.object(torch.cuda, "is_bf16_supported", lambda: True):
        assert _rt.cuda_has_native_bf16() is True


def test_no_float16_autocast_on_cuda():
    with mock.patch.object(torch.cuda, "is_bf16_supported", lambda including_emulation=True: False):
        assert isinstance(_rt.autocast(torch.device("cuda"), "bf16"), type(contextlib.nullcontext()))


@pytest.mark.parametrize("native, used", [(False, "fp32"), (True, "bf16")])
def test_cpu_auto_is_bf16_only_where_native(tmp_path, small, native, used, monkeypatch):
    """Planted bug: ``--precision auto`` picked bf16 on any CPU.  Emulated bfloat16 is
    slower than float32, so ``auto`` is bf16 on a CPU only where oneDNN runs it natively
    (``cpu_has_native_bf16`` mocked either way): in the rule, in autocast and in a run's record."""
    monkeypatch.setattr(_rt, "cpu_has_native_bf16", lambda: native)
    cpu = torch.device("cpu")
    assert _rt.resolve_precision("auto", cpu) == used
    assert isinstance(_rt.autocast(cpu, "auto"), contextlib.nullcontext) == (used == "fp32")
    assert _rt.resolve_precision("bf16", cpu) == "bf16" and _rt.resolve_precision("fp32", cpu) == "fp32"
    s = train(train_config(tmp_path, epochs=0, precision="auto"), dataset=small)
    assert s["precision"] == used
