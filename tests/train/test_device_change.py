"""A run moves between device types: CUDA-shaped generator states resume on the CPU."""
import json

import torch

from pgviz.train.rundir import checkpoint_digest

from helpers import train_config

from pgviz.train import load_checkpoint, train
from pgviz.train.portable import portable_seed, recorded_device


def _make_cuda_shaped(path):
    """Rewrite a CPU checkpoint as one written on a GPU: 16-byte generator states, device cuda."""
    ckpt = torch.load(path, weights_only=False)
    ckpt["loader"]["generator"] = torch.zeros(16, dtype=torch.uint8)
    ckpt["action_rng"] = torch.zeros(16, dtype=torch.uint8)
    ckpt["device_used"] = "cuda"
    ckpt["config"]["device"] = "cuda"
    ckpt.pop("checksum", None)
    ckpt["checksum"] = checkpoint_digest(ckpt)  # a GPU's checkpoint carries its own valid checksum
    torch.save(ckpt, path)


def test_a_cuda_checkpoint_resumes_on_the_cpu_and_records_the_change(tmp_path, small):
    out = tmp_path / "run"
    train(train_config(out, epochs=1), dataset=small)
    ck = out / "checkpoint.pt"
    assert load_checkpoint(ck)["device_used"] == "cpu"
    _make_cuda_shaped(ck)
    summary = train(train_config(out, epochs=2, device="cpu"), dataset=small, resume=True)
    assert summary["status"] == "finished" and summary["epochs"] == 2
    start = [json.loads(l) for l in open(out / "metrics.jsonl") if '"start"' in l][-1]
    assert start["device_changed_from"] == "cuda" and start["generators_reseeded"] is True
    assert load_checkpoint(ck)["device_used"] == "cpu"


def test_the_cli_resumes_a_cuda_checkpoint_with_exit_0(tmp_path, small):
    from pgviz.cli import main
    npz = tmp_path / "d.npz"
    import numpy as np
    np.savez(npz, images=small.train_images.numpy(), labels=small.train_labels.numpy(),
             test_images=small.test_images.numpy(), test_labels=small.test_labels.numpy())
    out = tmp_path / "run"
    base = ["train", "--data", str(npz), "--out", str(out), "--device", "cpu", "--batch-size", "64"]
    assert main(base + ["--epochs", "1"]) == 0
    _make_cuda_shaped(out / "checkpoint.pt")
    assert main(base + ["--epochs", "2", "--resume"]) == 0


def test_the_reseed_depends_on_seed_step_and_stream_only():
    assert portable_seed(0, 5, "loader") == portable_seed(0, 5, "loader")
    assert len({portable_seed(0, 5, "loader"), portable_seed(0, 6, "loader"), portable_seed(1, 5, "loader"),
                portable_seed(0, 5, "actions")}) == 4
    assert recorded_device({"loader": {"generator": torch.zeros(16, dtype=torch.uint8)}}) == "cuda"
    assert recorded_device({"loader": {"generator": torch.get_rng_state()}}) == "cpu"
