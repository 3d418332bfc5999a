"""The command line, run as a subprocess (``python -m pgviz``), as a user would."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from helpers import fail_torch_save

from pgviz import data

ENV = {**os.environ, "PGVIZ_DATA": "synthetic", "OMP_NUM_THREADS": "2", "OMP_WAIT_POLICY": "PASSIVE"}


def pgviz(*args, **kw):
    return subprocess.run([sys.executable, "-m", "pgviz", *map(str, args)], capture_output=True, text=True,
                          env=ENV, timeout=kw.pop("timeout", 120), **kw)


def last_json(stdout):
    return json.loads(stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def tiny_npz(tmp_path_factory):
    """A small CIFAR-shaped .npz (synthetic images) in the shared data format."""
    ds = data.make_synthetic(200, 40)
    path = tmp_path_factory.mktemp("npz") / "tiny.npz"
    imgs = torch.cat([ds.train_images, ds.test_images]).numpy()
    labels = torch.cat([ds.train_labels, ds.test_labels]).numpy().astype(np.uint8)
    np.savez(path, images=imgs, labels=labels, label_names=np.array(data.CIFAR10_CLASSES))
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_npz):
    out = tmp_path_factory.mktemp("run")
    r = pgviz("train", "--objective", "pg", "--data", tiny_npz, "--out", out, "--epochs", 2,
              "--batch-size", 32, "--seed", 1, "--device", "cpu", "--quiet")
    return out, r


def test_train_writes_checkpoint_metrics_and_summary(trained):
    out, r = trained
    assert r.returncode == 0, r.stderr
    summary = last_json(r.stdout)
    assert summary["status"] == "finished" and summary["epochs"] == 2 and summary["objective"] == "pg"
    assert summary["n_test"] == 48 and 0 <= summary["test_acc"] <= 1  # fixed 20 % of 240 held out
    assert (out / "checkpoint.pt").is_file()
    rows = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["event"] for r in rows].count("epoch") == 2 and rows[-1]["event"] == "end"


def test_eval_uses_every_image_of_an_npz(trained, tiny_npz):
    out, _ = trained
    r = pgviz("eval", "--checkpoint", out / "checkpoint.pt", "--data", tiny_npz, "--device", "cpu")
    assert r.returncode == 0, r.stderr
    res = last_json(r.stdout)
    assert res["n"] == 240 and 0 <= res["accuracy"] <= 1


def test_resume_extends_a_finished_run_and_never_overwrites_it(trained, tiny_npz):
    out, _ = trained
    before = (out / "checkpoint.pt").read_bytes()
    again = pgviz("train", "--data", tiny_npz, "--out", out, "--epochs", 2, "--device", "cpu")
    assert again.returncode == 2 and "--resume" in again.stderr and len(again.stderr.strip().splitlines()) == 1
    assert (out / "checkpoint.pt").read_bytes() == before
    clash = pgviz("train", "--resume", "--objective", "xent", "--out", out, "--epochs", 3)
    assert clash.returncode == 2 and "objective" in clash.stderr
    r = pgviz("train", "--resume", "--out", out, "--epochs", 3, "--device", "cpu", "--quiet")
    assert r.returncode == 0, r.stderr
    assert last_json(r.stdout)["epochs"] == 3


def test_bad_input_exits_2_with_one_line(tmp_path, tiny_npz, capfd, monkeypatch):
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"not a zip at all")
    shape = tmp_path / "shape.npz"
    np.savez(shape, images=np.zeros((5, 3, 32, 32), np.uint8), labels=np.zeros(5, np.uint8))
    labels = tmp_path / "labels.npz"
    np.savez(labels, images=np.zeros((5, 32, 32, 3), np.uint8), labels=np.full(5, 12, np.uint8),
             label_names=np.array(data.CIFAR10_CLASSES))
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x80\x04junk")
    out = tmp_path / "o"
    cases = {
        "objective": ["train", "--objective", "reinforce", "--out", out],
        "missing npz": ["train", "--data", tmp_path / "missing.npz", "--out", out],
        "corrupt npz": ["train", "--data", corrupt, "--out", out],
        "wrong shape": ["train", "--data", shape, "--out", out],
        "labels": ["eval", "--checkpoint", junk, "--data", labels],
        "labels train": ["train", "--data", labels, "--out", out],
        "negative lr": ["train", "--lr", "-0.1", "--out", out],
        "negative entropy": ["train", "--entropy-weight", "-1", "--out", out],
        "batch 0": ["train", "--batch-size", "0", "--out", out],
        "negative epochs": ["train", "--epochs", "-2", "--out", out],
        "foreign ckpt": ["eval", "--checkpoint", foreign, "--data", tiny_npz],
        "unreadable ckpt": ["eval", "--checkpoint", junk, "--data", tiny_npz],
        "missing ckpt": ["eval", "--checkpoint", tmp_path / "none.pt", "--data", tiny_npz],
    }
    # Every case through the real entry point in this process (fast) ...
    for name, argv in cases.items():
        code, stdout, stderr = _main_in_process(capfd, monkeypatch, argv)
        lines = stderr.strip().splitlines()
        assert code == 2, (name, stderr)
        assert len(lines) == 1 and lines[0].startswith("pgviz: error: "), (name, stderr)
        assert "Traceback" not in stderr and stdout == "", name
    # ... and a sample of them as separate processes, as a user would meet them.
    sample = ["objective", "corrupt npz", "labels train", "negative lr", "unreadable ckpt"]
    procs = {k: subprocess.Popen([sys.executable, "-m", "pgviz", *map(str, cases[k])], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, env=ENV) for k in sample}
    for name, p in procs.items():
        stdout, stderr = p.communicate(timeout=120)
        lines = stderr.strip().splitlines()
        assert p.returncode == 2, (name, stderr)
        assert len(lines) == 1 and lines[0].startswith("pgviz: error: "), (name, stderr)
        assert "Traceback" not in stderr and stdout == "", name
    assert not (out / "checkpoint.pt").exists()


def _main_in_process(capfd, monkeypatch, argv):
    from pgviz.cli import main
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    capfd.readouterr()
    code = main([str(a) for a in argv])
    out, err = capfd.readouterr()
    return code, out, err


def _signal_training(out, sig, exit_code, status):
    """``pgviz train`` (synthetic data, 50 epochs, into ``out``) in a subprocess, sent ``sig``
    once its first step is logged: it exits with ``exit_code``, no traceback, a ``--resume``
    hint and a JSON summary with ``status`` after step 1 or later; returns that summary."""
    p = subprocess.Popen([sys.executable, "-m", "pgviz", "train", "--data", "synthetic", "--out", str(out),
                          "--epochs", "50", "--batch-size", "64", "--device", "cpu", "--quiet"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    metrics = out / "metrics.jsonl"
    deadline = time.time() + 90
    while time.time() < deadline and not (metrics.exists() and '"event": "step"' in metrics.read_text()):
        time.sleep(0.2)
    p.send_signal(sig)
    stdout, stderr = p.communicate(timeout=60)
    assert p.returncode == exit_code, stderr
    assert "Traceback" not in stderr and "--resume" in stderr
    summary = last_json(stdout)
    assert summary["status"] == status and summary["step"] >= 1
    return summary


def test_ctrl_c_saves_and_resume_finishes(tmp_path):
    out = tmp_path / "run"
    _signal_training(out, signal.SIGINT, 130, "interrupted")
    r = pgviz("train", "--out", out, "--resume", "--epochs", 1, "--quiet")
    assert r.returncode == 0, r.stderr
    assert last_json(r.stdout)["epochs"] == 1 and last_json(r.stdout)["step"] == 1000 // 64


def test_console_script_entry_point_is_declared():
    import tomllib
    from pathlib import Path
    meta = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert meta["project"]["scripts"]["pgviz"] == "pgviz.__main__:run"  # the process's entry (signals first)
    from pgviz.cli import main
    assert main(["bench", "--batch-size", "0"]) == 2


# ---------------------------------------------------------------------------
# Bad input, exit codes and signals: one line on stderr, never a traceback
# ---------------------------------------------------------------------------
def _crafted_checkpoint(path, **change):
    from dataclasses import asdict

    from pgviz.models import get_model
    from pgviz.train import CHECKPOINT_FORMAT, CHECKPOINT_VERSION, TrainConfig
    cfg = asdict(TrainConfig(model=change.pop("model", "fast"), data="synthetic"))
    ckpt = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "config": cfg, "n_classes": 10,
            "model": get_model(cfg["model"], 10).state_dict(), "ema": None, "epoch": 1, "step": 1}
    for k, v in change.items():
        if v is None:
            ckpt.pop(k)
        elif k == "lr":
            ckpt["config"]["lr"] = v
        else:
            ckpt[k] = v
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, path)
    return path


def test_more_bad_input_exits_2_with_one_line(tmp_path, capfd, monkeypatch):
    one_name = tmp_path / "one.npz"
    np.savez(one_name, images=np.zeros((5, 32, 32, 3), np.uint8), labels=np.zeros(5, np.uint8),
             label_names=np.array(["cat"]))
    no_names = tmp_path / "none.npz"
    np.savez(no_names, images=np.zeros((5, 32, 32, 3), np.uint8), labels=np.zeros(5, np.uint8),
             label_names=np.array([], dtype="<U3"))
    small = tmp_path / "small16.npz"
    np.savez(small, images=np.random.default_rng(0).integers(0, 255, (20, 16, 16, 3), dtype=np.uint8),
             labels=np.arange(20, dtype=np.uint8) % 10)
    eleven = tmp_path / "eleven.npz"  # label 10 is valid for 11 names, not for a 10-class checkpoint
    np.savez(eleven, images=np.zeros((11, 32, 32, 3), np.uint8), labels=np.arange(11, dtype=np.uint8),
             label_names=np.array([f"c{i}" for i in range(11)]))
    lenet = _crafted_checkpoint(tmp_path / "lenet.pt", model="lenet")
    fast = _crafted_checkpoint(tmp_path / "fast.pt")
    noconf = _crafted_checkpoint(tmp_path / "noconf" / "checkpoint.pt", config=None)
    strlr = _crafted_checkpoint(tmp_path / "strlr" / "checkpoint.pt", lr="0.1")
    blocker = tmp_path / "blocker"
    blocker.write_text("a file")
    out = tmp_path / "o"
    cases = {
        "seed 2**63": (["train", "--seed", 2 ** 63, "--out", out], "seed"),
        "one label name": (["train", "--data", one_name, "--out", out], "at least 2 classes"),
        "no label names": (["train", "--data", no_names, "--out", out], "at least 2 classes"),
        "16x16 lenet train": (["train", "--data", small, "--model", "lenet", "--out", out], "16x16"),
        "16x16 lenet eval": (["eval", "--checkpoint", lenet, "--data", small], "16x16"),
        "label == classes": (["eval", "--checkpoint", fast, "--data", eleven], "labels go up to 10"),
        "ckpt without config": (["train", "--out", noconf.parent, "--resume"], "no config"),
        "ckpt with str lr": (["train", "--out", strlr.parent, "--resume"], "learning rate"),
        "out under a file": (["train", "--out", blocker / "run"], "cannot be written"),
        "out is a file": (["train", "--out", blocker], "not a directory"),
        "eval precision": (["eval", "--checkpoint", fast, "--precision", "fp16"], "precision"),
    }
    for name, (argv, match) in cases.items():
        code, stdout, stderr = _main_in_process(capfd, monkeypatch, argv)
        lines = stderr.strip().splitlines()
        assert code == 2, (name, stderr)
        assert len(lines) == 1 and lines[0].startswith("pgviz: error: ") and match in lines[0], (name, stderr)
        assert stdout == "", name
    assert not out.exists() or not (out / "checkpoint.pt").exists()


def test_a_second_run_on_a_busy_out_is_refused(tmp_path, capfd, monkeypatch):
    from pgviz.train import OutputDir
    with OutputDir(tmp_path / "busy"):
        code, stdout, stderr = _main_in_process(capfd, monkeypatch, ["train", "--out", tmp_path / "busy", "--quiet"])
    assert code == 2 and "in use by another pgviz run" in stderr and len(stderr.strip().splitlines()) == 1
    assert not (tmp_path / "busy" / "metrics.jsonl").exists()


def test_diverged_run_exits_1_and_eval_stays_valid_json(tmp_path, capfd, monkeypatch):
    out = tmp_path / "d"
    code, stdout, stderr = _main_in_process(capfd, monkeypatch, [
        "train", "--data", "synthetic", "--out", out, "--epochs", 6, "--lr", "1e10", "--device", "cpu",
        "--precision", "fp32", "--quiet"])
    assert code == 1, stderr
    assert len(stderr.strip().splitlines()) == 1 and "smaller --lr" in stderr
    if (out / "checkpoint.pt").exists():  # the last good one: every tensor finite, eval prints JSON
        code, stdout, stderr = _main_in_process(capfd, monkeypatch, [
            "eval", "--checkpoint", out / "checkpoint.pt", "--data", "synthetic", "--device", "cpu"])
        assert code == 0, stderr
        json.loads(stdout, parse_constant=lambda c: pytest.fail(f"{c} in eval output"))


def test_a_failed_write_exits_3_and_keeps_the_checkpoint(tmp_path, capfd, monkeypatch):
    fail_torch_save(monkeypatch, on_call=2)
    out = tmp_path / "w"
    code, stdout, stderr = _main_in_process(capfd, monkeypatch, [
        "train", "--data", "synthetic", "--out", out, "--epochs", 3, "--device", "cpu", "--quiet"])
    assert code == 3, stderr
    assert len(stderr.strip().splitlines()) == 1 and "No space left" in stderr and "epoch 1" in stderr
    from pgviz.train import load_checkpoint
    assert load_checkpoint(out / "checkpoint.pt")["epoch"] == 1


def test_data_path_and_keyword_on_resume(tmp_path, capfd, monkeypatch):
    out = tmp_path / "r"
    code, _, stderr = _main_in_process(capfd, monkeypatch, [
        "train", "--data", "synthetic", "--out", out, "--epochs", 1, "--device", "cpu", "--quiet"])
    assert code == 0, stderr
    monkeypatch.chdir(tmp_path)
    code, _, stderr = _main_in_process(capfd, monkeypatch, [
        "train", "--data", "./synthetic", "--out", out, "--epochs", 2, "--resume", "--quiet"])
    assert code == 2 and "differs from the checkpoint's 'synthetic'" in stderr
    code, _, stderr = _main_in_process(capfd, monkeypatch, ["train", "--data", "./synthetic", "--out", "x"])
    assert code == 2 and "not found" in stderr  # a path, not the keyword


def test_ctrl_c_while_importing_torch_is_one_line(capfd, monkeypatch):
    """Ctrl-C during start-up (the heavy imports) must not print a traceback."""
    import importlib.abc

    class CtrlC(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name in heavy:
                raise KeyboardInterrupt  # as if Ctrl-C came while torch was being imported
            return None

    import pgviz
    heavy = ("pgviz.models", "pgviz.data", "pgviz.train.config", "pgviz.train.runtime")
    for name in heavy:  # forgotten for this test only (module and package attribute restored)
        monkeypatch.delitem(sys.modules, name, raising=False)
        monkeypatch.delattr(pgviz, name.split(".")[1], raising=False)
    monkeypatch.setattr(sys, "meta_path", [CtrlC(), *sys.meta_path])
    from pgviz.cli import main
    capfd.readouterr()
    try:
        code = main(["bench", "--steps", "1"])
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C during start-up escaped main() (a traceback for the user)")
    assert code == 130
    assert capfd.readouterr().err == "pgviz: interrupted\n"


def test_sigterm_saves_and_exits_143(tmp_path):
    out = tmp_path / "run"
    summary = _signal_training(out, signal.SIGTERM, 143, "terminated")
    from pgviz.train import load_checkpoint
    assert load_checkpoint(out / "checkpoint.pt")["step"] == summary["step"]


def test_eval_precision_is_reported(trained, tiny_npz):
    out, _ = trained
    r = pgviz("eval", "--checkpoint", out / "checkpoint.pt", "--data", tiny_npz, "--device", "cpu",
              "--precision", "bf16")
    assert r.returncode == 0, r.stderr
    assert last_json(r.stdout)["precision"] == "bf16"
    start = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    assert start["precision_used"] in ("fp32", "bf16") and start["precision"] == "auto"


def test_sigterm_during_start_up_is_one_line_exit_143(capfd, monkeypatch):
    """SIGTERM before the training loop (imports, loading data): one line, exit 143."""
    import pgviz.cli as cli

    class Unhandled(Exception):
        pass

    def outside(signum, frame):
        raise Unhandled("SIGTERM reached the caller's handler")

    old = signal.signal(signal.SIGTERM, outside)  # without pgviz's handler the test fails here
    real = cli._build_parser

    def parser_then_sigterm():
        os.kill(os.getpid(), signal.SIGTERM)
        return real()

    monkeypatch.setattr(cli, "_build_parser", parser_then_sigterm)
    try:
        capfd.readouterr()
        assert cli.main(["bench"]) == 143
        assert capfd.readouterr().err == "pgviz: terminated\n"
        assert signal.getsignal(signal.SIGTERM) is outside  # put back
    finally:
        signal.signal(signal.SIGTERM, old)


def test_train_flags_are_made_from_the_config():
    """Every flag pgviz train had, made from TrainConfig's fields and the objectives' options."""
    from pgviz.cli import _build_parser
    train = _build_parser()._subparsers._group_actions[0].choices["train"]
    flags = {s for a in train._actions for s in a.option_strings}
    assert flags == {"-h", "--help", "--objective", "--data", "--out", "--epochs", "--batch-size", "--lr",
                     "--entropy-weight", "--seed", "--device", "--model", "--samples", "--group-norm",
                     "--epsilon", "--probe-epochs", "--precision", "--data-dir", "--no-augment", "--resume",
                     "--quiet",
                     # the companion notebook's recipe, its inputs and its two objectives
                     "--recipe", "--no-standardize", "--keep-last-batch", "--teacher", "--mix", "--noise-samples"}
    args = train.parse_args(["--out", "o", "--no-augment", "--quiet", "--group-norm", "--samples", "3"])
    assert (args.augment, args.progress, args.group_norm, args.samples, args.epochs) == (False, False, True, 3, None)
