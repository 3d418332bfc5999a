"""The trainer's contract under faults: a full disk, damaged or crafted checkpoints, a
damaged metrics log.  Each failure is one line and an exit code (2 bad input, 3 failed
write), and the last good checkpoint survives."""
import json
import os
import shutil
import subprocess

import pytest
import torch

from helpers import train_config

from pgviz.cli import main
from pgviz.train import CheckpointError, OutputError, load_checkpoint, train


def fail_torch_save_runtime(monkeypatch, on_call=2):
    """``torch.save`` raising what it raises on a full disk (a RuntimeError, not OSError)."""
    real, calls = torch.save, []

    def full(obj, f, *a, **k):
        calls.append(f)
        if len(calls) == on_call:
            raise RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 64 vs 0\n"
                               "PytorchStreamWriter failed writing file data/3: file write failed")
        return real(obj, f, *a, **k)
    monkeypatch.setattr(torch, "save", full)


def one_error_line(err: str) -> str:
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def cli_train(out, *extra):
    return main(["train", "--data", "synthetic", "--out", str(out), "--batch-size", "256", "--quiet",
                 "--device", "cpu", "--precision", "fp32", *extra])


@pytest.fixture(scope="module")
def trained(tmp_path_factory, small):
    out = tmp_path_factory.mktemp("ok")
    train(train_config(out, epochs=1), dataset=small)
    return out / "checkpoint.pt"


def test_a_full_disk_inside_torch_save_exits_3_and_keeps_the_checkpoint(tmp_path, monkeypatch, capsys):
    assert cli_train(tmp_path, "--epochs", "1") == 0
    before = (tmp_path / "checkpoint.pt").read_bytes()
    fail_torch_save_runtime(monkeypatch, on_call=1)
    capsys.readouterr()
    assert cli_train(tmp_path, "--epochs", "2", "--resume") == 3
    line = one_error_line(capsys.readouterr().err)
    assert "file write failed" in line and "epoch 1" in line
    assert (tmp_path / "checkpoint.pt").read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("mount"), reason="needs root to mount a tmpfs")
def test_a_real_full_disk_exits_3(tmp_path, small):
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(disk)]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        with pytest.raises(OutputError) as err:
            train(train_config(disk / "run", epochs=3, model="linear" if False else "fast"), dataset=small)
        assert "\n" not in str(err.value)
    finally:
        subprocess.run(["umount", "-l", str(disk)])


def test_a_checkpoint_carries_a_checksum_that_is_checked(tmp_path, trained, capsys):
    ckpt = torch.load(trained, weights_only=True)
    assert len(ckpt["checksum"]) == 64
    t = ckpt["model"][next(iter(ckpt["model"]))]
    t[(0,) * t.dim()] += 1.0  # one flipped weight
    torch.save(ckpt, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="do not match its checksum"):
        load_checkpoint(tmp_path / "bad.pt")
    assert main(["eval", "--checkpoint", str(tmp_path / "bad.pt"), "--data", "synthetic", "--device", "cpu"]) == 2
    assert "checksum" in one_error_line(capsys.readouterr().err)
    del ckpt["checksum"]  # a checkpoint written before checksums still loads
    torch.save(ckpt, tmp_path / "old.pt")
    assert load_checkpoint(tmp_path / "old.pt")["epoch"] == 1


def test_every_start_row_and_segment_survives_resumes(tmp_path, small):
    train(train_config(tmp_path, epochs=1, precision="bf16"), dataset=small)
    train(train_config(tmp_path, epochs=2, precision="fp32"), dataset=small, resume=True)
    train(train_config(tmp_path, epochs=3, precision="bf16"), dataset=small, resume=True)
    rows = [json.loads(l) for l in open(tmp_path / "metrics.jsonl")]
    starts = [r for r in rows if r["event"] == "start"]
    assert [s["resumed_from_step"] for s in starts] == [None, 4, 8]
    assert [s.get("precision_changed_from") for s in starts] == [None, "bf16", "fp32"]
    assert [r["epoch"] for r in rows if r["event"] == "epoch"] == [1, 2, 3]
    assert [r["step"] for r in rows if r["event"] == "end"] == [4, 8, 12]


@pytest.mark.parametrize("junk", [b"[1,2]\n", b"\x89\xfe\x00garbage\xff\n"])
def test_damaged_metrics_lines_are_moved_aside_on_resume(tmp_path, small, junk, capsys):
    train(train_config(tmp_path, epochs=1), dataset=small)
    with open(tmp_path / "metrics.jsonl", "ab") as f:
        f.write(junk)
    n_before = sum(1 for _ in open(tmp_path / "metrics.jsonl", "rb"))
    train(train_config(tmp_path, epochs=2), dataset=small, resume=True)
    assert "moved to" in one_error_line(capsys.readouterr().err)
    aside = (tmp_path / "metrics.jsonl.corrupt").read_bytes()
    assert aside.strip() == junk.decode("utf-8", "replace").strip().encode()
    rows = [json.loads(l) for l in open(tmp_path / "metrics.jsonl")]  # every line parses now
    assert len(rows) > n_before - 1


def _set_first(t, v):
    t[(0,) * t.dim()] = v


def _crafted(tmp_path, trained, name, change):
    ckpt = torch.load(trained, weights_only=True)
    ckpt.pop("checksum")  # crafted: as an old checkpoint (no checksum) would be
    ckpt["config"] = dict(ckpt["config"])
    change(ckpt)
    (tmp_path / name).mkdir()
    torch.save(ckpt, tmp_path / name / "checkpoint.pt")
    return tmp_path / name


@pytest.mark.parametrize("name,change,match", [
    ("elapsed", lambda c: c.__setitem__("elapsed", float("nan")), "elapsed"),
    ("history", lambda c: c.__setitem__("history", "x"), "history"),
    ("sums", lambda c: c.__setitem__("sums", torch.zeros(2, dtype=torch.float64)), "running sums"),
    ("perm", lambda c: c["loader"].update(perm=torch.arange(256) * 7, pos=0), "permutation"),
    ("pos", lambda c: c["loader"].update(perm=torch.randperm(256), pos=10 ** 6), "position"),
    ("ema", lambda c: _set_first(next(iter(c["ema"].values())), float("nan")), "weight average"),
    ("adam", lambda c: _set_first(c["optimizer"]["state"][0]["exp_avg_sq"], float("inf")),
     "Adam"),
    ("version", lambda c: c.__setitem__("version", "1"), "version '1'"),
])
def test_crafted_run_state_is_refused_at_load(tmp_path, trained, small, name, change, match, capsys):
    folder = _crafted(tmp_path, trained, name, change)
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint(folder / "checkpoint.pt")
    assert main(["eval", "--checkpoint", str(folder / "checkpoint.pt"), "--data", "synthetic",
                 "--device", "cpu"]) == 2
    one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize("key", ["objective", "batch_size"])
def test_a_checkpoint_config_lacking_a_key_is_refused(tmp_path, trained, small, key, capsys):
    folder = _crafted(tmp_path, trained, key, lambda c: c["config"].pop(key))
    for cmd in (["eval"], ["probe", "--samples", "2", "--batch-size", "8"]):
        assert main([*cmd, "--checkpoint", str(folder / "checkpoint.pt"), "--data", "synthetic",
                     "--device", "cpu"]) == 2
        assert f"lacks {key}" in one_error_line(capsys.readouterr().err)
    assert cli_train(folder, "--epochs", "2", "--resume") == 2
    assert f"lacks {key}" in one_error_line(capsys.readouterr().err)


def test_a_killed_writers_temporary_file_is_removed_when_the_folder_is_locked(tmp_path, small):
    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid that is gone
    stale = tmp_path / f".checkpoint.pt.{dead.pid}.0123456789ab.tmp"
    live = tmp_path / f".checkpoint.pt.{os.getppid()}.0123456789ab.tmp"  # a living process's: kept
    stale.write_bytes(b"half")
    live.write_bytes(b"busy")
    train(train_config(tmp_path, epochs=1), dataset=small)
    assert not stale.exists() and live.exists()


@pytest.mark.parametrize("argv,flag", [
    (["bench", "--batch-size", "10000000"], "--batch-size"),
    (["probe", "--checkpoint", "x.pt", "--samples", "1000000"], "--samples"),
    (["probe", "--checkpoint", "x.pt", "--rloo", "2,100000"], "--rloo"),
])
def test_sizes_over_their_bound_are_refused(argv, flag, capsys):
    assert main(argv) == 2
    line = one_error_line(capsys.readouterr().err)
    assert flag in line and "at most" in line


def test_empty_data_a_dangling_link_and_a_refused_run_leave_no_folder(tmp_path, capsys):
    assert cli_train(tmp_path / "a", "--epochs", "1", "--data", "") == 2
    assert "empty string" in one_error_line(capsys.readouterr().err)
    assert cli_train(tmp_path / "b", "--epochs", "1", "--data", str(tmp_path / "missing.npz")) == 2
    one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "b").exists()  # created for the run, refused: removed again
    (tmp_path / "link").symlink_to(tmp_path / "nowhere")
    assert cli_train(tmp_path / "link", "--epochs", "1") == 2
    assert "symbolic link" in one_error_line(capsys.readouterr().err)
