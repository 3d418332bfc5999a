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


# ----------------------------------------------------------------------------
# Issue 17 case 5: PGVIZ_DOWNLOAD_TIMEOUT bounds the whole download, not each wait
# ----------------------------------------------------------------------------
class _Trickle:
    """A local HTTP server (127.0.0.1, a free port) that answers every GET with one byte
    every 0.3 s: from the status line on (``headers=True``) or after prompt headers that
    announce 170 MB.  No wait ever reaches a socket timeout; only a deadline ends it."""

    def __init__(self, headers: bool):
        import http.server
        import threading

        stop = self.stop = threading.Event()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                head = b"HTTP/1.1 200 OK\r\nContent-Length: 170498071\r\n\r\n"
                try:
                    if headers:
                        body = head + b"x" * 1000
                    else:
                        self.wfile.write(head)
                        self.wfile.flush()
                        body = b"x" * 1000
                    for i in range(len(body)):
                        if stop.wait(0.3):
                            return
                        self.wfile.write(body[i:i + 1])
                        self.wfile.flush()
                except OSError:  # the client hung up
                    pass

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/cifar-10-python.tar.gz"

    def close(self):
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


def _timed(fn):
    """``(result or exception, seconds)`` of ``fn()`` run in a thread: a hang (the bug) fails
    the test after 10 s instead of hanging the suite."""
    import threading
    import time

    got = []

    def call():
        try:
            got.append(fn())
        except Exception as exc:
            got.append(exc)
    t0 = time.monotonic()
    worker = threading.Thread(target=call, daemon=True)
    worker.start()
    worker.join(10)
    assert got, "still downloading after 10 s: the timeout does not bound the whole download"
    return got[0], time.monotonic() - t0


@pytest.fixture
def trickle(request, monkeypatch):
    import torchvision.datasets.cifar as tv_cifar

    server = _Trickle(headers=request.param)
    monkeypatch.setattr(tv_cifar.CIFAR10, "url", server.url)  # torchvision downloads from here
    monkeypatch.setenv("PGVIZ_DOWNLOAD_TIMEOUT", "1.5")
    yield server
    server.close()


@pytest.mark.parametrize("trickle", [False], indirect=True, ids=["body"])
def test_a_trickling_download_ends_at_the_timeout_in_all(trickle, tmp_path, capsys):
    """The issue's case: bytes keep coming (1 every 0.3 s), so no socket wait times out;
    the CLI still stops at 1.5 s with one line naming the timeout, exit 2."""
    import socket

    rc, took = _timed(lambda: main(["train", "--data", "cifar10", "--data-dir", str(tmp_path / "cache"),
                                    "--out", str(tmp_path / "o"), "--epochs", "1", "--quiet", "--device", "cpu"]))
    err = capsys.readouterr().err
    assert rc == 2 and took < 1.5 + 1.0, (rc, took)
    assert "Traceback" not in err
    mine = [l for l in err.splitlines() if l.startswith("pgviz:")]  # (torchvision's tqdm bar aside)
    assert len(mine) == 1 and "did not finish within the 1.5 s of PGVIZ_DOWNLOAD_TIMEOUT" in mine[0], err
    assert "--data PATH.npz" in mine[0] and not (tmp_path / "o").exists()
    assert socket.getdefaulttimeout() is None  # put back
    import http.client
    assert http.client.HTTPConnection.connect.__qualname__ == "HTTPConnection.connect"  # hooks removed
    assert http.client.HTTPSConnection.connect.__qualname__ == "HTTPSConnection.connect"


@pytest.mark.parametrize("trickle", [True], indirect=True, ids=["headers"])
def test_a_trickling_answer_ends_at_the_timeout_in_all(trickle, tmp_path, monkeypatch):
    """Even the status line trickles (torchvision's first request, the redirect check)."""
    monkeypatch.setenv("PGVIZ_DOWNLOAD_TIMEOUT", "0.8")
    exc, took = _timed(lambda: data.load_dataset("cifar10", data_dir=tmp_path / "cache"))
    assert isinstance(exc, data.DataError) and took < 0.8 + 1.0, (exc, took)
    assert "did not finish within the 0.8 s of PGVIZ_DOWNLOAD_TIMEOUT" in str(exc) and "\n" not in str(exc)


def test_a_prompt_transfer_inside_a_deadline_is_read_whole():
    """The deadline costs a transfer that finishes in time nothing, and leaves no hook behind."""
    import http.client
    import http.server
    import threading
    import urllib.request

    from pgviz.download import Deadline

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = bytes(range(256)) * 400
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        with Deadline(5) as d:
            with urllib.request.urlopen(f"http://127.0.0.1:{server.server_address[1]}/f") as r:
                got = r.read()
        assert got == bytes(range(256)) * 400 and not d.expired and len(d.sockets) == 1
    finally:
        server.shutdown()
        server.server_close()
    assert http.client.HTTPConnection.connect.__qualname__ == "HTTPConnection.connect"
