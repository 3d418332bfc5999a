"""Data files and download settings that cannot work: one line, exit 2, never a traceback."""
import numpy as np
import pytest

from pgviz import data
from pgviz.cli import main


def one_error_line(err):
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert main(["train", "--data", "synthetic", "--out", str(out), "--epochs", "0", "--quiet",
                 "--device", "cpu", "--precision", "fp32"]) == 0
    return out / "checkpoint.pt"


def test_an_npy_array_named_npz_is_refused_by_every_command(tmp_path, checkpoint, capsys):
    fake = tmp_path / "x.npz"
    with open(fake, "wb") as f:
        np.save(f, np.zeros((4, 32, 32, 3), np.uint8))
    with pytest.raises(data.DataError, match="not a zip archive"):
        data.load_dataset(str(fake))
    for argv in (["train", "--data", str(fake), "--out", str(tmp_path / "t"), "--epochs", "1", "--quiet"],
                 ["train", "--data", str(fake), "--out", str(tmp_path / "p"), "--epochs", "1", "--quiet",
                  "--probe-epochs", "1"],
                 ["eval", "--checkpoint", str(checkpoint), "--data", str(fake), "--device", "cpu"],
                 ["probe", "--checkpoint", str(checkpoint), "--data", str(fake), "--device", "cpu"]):
        capsys.readouterr()
        assert main(argv) == 2, argv
        assert "not a zip archive" in one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize("value", ["-1", "0", "nan", "inf", "1e300", "soon"])
def test_a_download_timeout_that_cannot_work_is_refused(tmp_path, monkeypatch, value, capsys):
    monkeypatch.setenv("PGVIZ_DOWNLOAD_TIMEOUT", value)
    with pytest.raises(data.DataError, match="PGVIZ_DOWNLOAD_TIMEOUT"):
        data.download_timeout()
    assert main(["train", "--data", "cifar10", "--data-dir", str(tmp_path / "cache"), "--out",
                 str(tmp_path / "o"), "--epochs", "1", "--quiet", "--device", "cpu"]) == 2
    assert "PGVIZ_DOWNLOAD_TIMEOUT" in one_error_line(capsys.readouterr().err)


def test_a_sensible_download_timeout_is_read(monkeypatch):
    monkeypatch.setenv("PGVIZ_DOWNLOAD_TIMEOUT", "2.5")
    assert data.download_timeout() == 2.5
    monkeypatch.delenv("PGVIZ_DOWNLOAD_TIMEOUT")
    assert data.download_timeout() == data.DOWNLOAD_TIMEOUT
