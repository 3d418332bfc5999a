"""The run folder: its lock, the atomic checkpoint, the metrics log, refused checkpoints."""
import json
import os

import pytest
import torch

from helpers import fail_torch_save, train_config

from pgviz.train import CheckpointError, ConfigError, OutputDir, OutputError, load_checkpoint, rundir, train


def test_foreign_checkpoint_is_refused(tmp_path):
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a pgviz checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    (tmp_path / "junk.pt").write_bytes(b"\x00junk")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")


def test_a_busy_output_folder_is_refused(tmp_path, small):
    with OutputDir(tmp_path):
        with pytest.raises(ConfigError, match="in use by another pgviz run"):
            train(train_config(tmp_path), dataset=small)
        assert not (tmp_path / "metrics.jsonl").exists()
    assert train(train_config(tmp_path, epochs=1), dataset=small)["status"] == "finished"  # free again


def test_temporary_names_are_unique(tmp_path, small):
    (tmp_path / "checkpoint.pt.tmp").mkdir()  # another writer's fixed temp name in the way
    train(train_config(tmp_path, epochs=1), dataset=small)
    assert (tmp_path / "checkpoint.pt").is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == ["checkpoint.pt.tmp"]


def test_output_folder_is_checked_before_the_data(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    cfg = train_config(blocker / "out", data=str(tmp_path / "missing.npz"))
    with pytest.raises(ConfigError, match="cannot be written"):
        train(cfg)  # not a DataError about the missing file: the folder is checked first


def test_a_failed_write_keeps_the_old_checkpoint(tmp_path, small, monkeypatch):
    fail_torch_save(monkeypatch, on_call=2)
    with pytest.raises(OutputError, match="No space left.*checkpoint \\(epoch 1\\) was kept") as err:
        train(train_config(tmp_path, epochs=3), dataset=small)
    assert "\n" not in str(err.value)
    assert load_checkpoint(tmp_path / "checkpoint.pt")["epoch"] == 1
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_the_metrics_row_is_written_before_the_checkpoint(tmp_path, small, monkeypatch):
    """A kill just after the rename must not lose the epoch's row."""
    real = os.replace

    def replace_then_die(src, dst):
        real(src, dst)
        if load_checkpoint(dst)["epoch"] == 2:
            raise SystemExit("killed")

    monkeypatch.setattr(rundir.os, "replace", replace_then_die)
    with pytest.raises(SystemExit):
        train(train_config(tmp_path, epochs=3), dataset=small)
    rows = [json.loads(l) for l in open(tmp_path / "metrics.jsonl")]
    assert [r["epoch"] for r in rows if r["event"] == "epoch"] == [1, 2]


def test_crafted_checkpoints_are_refused(tmp_path, small):
    train(train_config(tmp_path / "ok", epochs=1), dataset=small)
    good = torch.load(tmp_path / "ok" / "checkpoint.pt", weights_only=True)
    for name, change, match in [
        ("noconfig", lambda c: c.pop("config"), "no config"),
        ("strlr", lambda c: c["config"].__setitem__("lr", "0.1"), "learning rate"),
        ("noclasses", lambda c: c.pop("n_classes"), "class count"),
        ("nooptim", lambda c: c.pop("optimizer"), "cannot resume"),
    ]:
        bad = {**good, "config": dict(good["config"])}
        bad.pop("checksum")  # crafted as an old checkpoint (no checksum) would be: the checks behind it
        change(bad)
        (tmp_path / name).mkdir()
        torch.save(bad, tmp_path / name / "checkpoint.pt")
        with pytest.raises(CheckpointError, match=match):
            train(train_config(tmp_path / name, epochs=2), dataset=small, resume=True)



def test_resume_keeps_the_probe_rows_of_the_first_segment(tmp_path):
    """Planted bug: the metrics log, trimmed on resume, dropped the probe rows.  A run probed
    after epochs 1 and 2, interrupted in epoch 2, resumed: the epoch-1 probe row is still
    there (once), the resumed segment adds epoch 2's, and each sits before its segment's end."""
    from pgviz import data, gap

    ds = data.make_synthetic(64, 32)

    def recorder():
        return gap.ProbeRecorder([1, 2], ds.test_images[:4], ds.test_labels[:4], out=tmp_path,
                                 samples=2, rloo_ks=())

    def ctrl_c(event):
        if event["event"] == "step" and event["step"] == 3:  # mid epoch 2 (2 steps per epoch)
            raise KeyboardInterrupt

    cfg = train_config(tmp_path, epochs=2, batch_size=32, model="lenet")
    first = recorder()
    assert train(cfg, callbacks=[first, ctrl_c], dataset=ds)["status"] == "interrupted"
    assert [r["epoch"] for r in first.rows] == [1]
    assert train(cfg, callbacks=[recorder()], dataset=ds, resume=True)["status"] == "finished"
    rows = [json.loads(l) for l in open(tmp_path / "metrics.jsonl")]
    probes = [r for r in rows if r["event"] == "probe"]
    assert [(r["epoch"], r["step"]) for r in probes] == [(1, 2), (2, 4)]
    assert probes[0]["estimators"] == gap.finite(first.rows[0])["estimators"]
    events = [r["event"] for r in rows if r["event"] != "step"]
    assert events == ["start", "epoch", "probe", "end", "start", "epoch", "probe", "end"]
