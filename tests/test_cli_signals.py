"""Ctrl-C and SIGTERM at the edges of a command (issue 17, cases 13 and 14), each in a
``python -m pgviz`` subprocess, as a user would send them:

* at the very end of a run (during the final checkpoint write, and during the interpreter's
  shut-down): the signal is reported (130 / 143), the checkpoint is whole, no traceback and
  no "Exception ignored";
* during start-up (inside torch's import, where an exception can be swallowed by importlib
  or turned into another error): one line and 130 / 143 at once, nothing runs on after it.

The signals are sent by the child itself at a known point (a patched ``torch.save``, a
weakref callback inside an import, an atexit callback), so each test is deterministic; one
test sends them from outside at fixed delays after pgviz has taken the signals.  The ones
that train or wait are in the slow set (tests/conftest.py); the import ones end in 0.1 s.
"""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ENV = {**os.environ, "PGVIZ_DATA": "synthetic", "OMP_NUM_THREADS": "2", "OMP_WAIT_POLICY": "PASSIVE"}
TRAIN = ["train", "--data", "synthetic", "--epochs", "1", "--batch-size", "250", "--device", "cpu",
         "--precision", "fp32", "--quiet"]


def _child(prelude: str, argv, timeout=180):
    """``python -m pgviz ARGV`` with ``prelude`` run first (in the same interpreter)."""
    code = textwrap.dedent(prelude) + textwrap.dedent(f"""
        import runpy, sys
        sys.argv = ["pgviz", *{[str(a) for a in argv]!r}]
        runpy.run_module("pgviz", run_name="__main__", alter_sys=True)
    """)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=timeout)


def _clean(err: str) -> None:
    assert "Traceback" not in err and "Exception ignored" not in err, err


# the final write: torch.save of the checkpoint whose "finished" is True
AT_FINAL_SAVE = """
    import atexit, os, signal, time
    import torch
    real = torch.save
    def save(obj, f, *a, **k):
        if isinstance(obj, dict) and obj.get("finished"):
            {action}
        return real(obj, f, *a, **k)
    torch.save = save
"""


def _checkpoint(out: Path) -> dict:
    from pgviz.train import load_checkpoint
    return load_checkpoint(out / "checkpoint.pt")  # whole: its checksum is verified


def test_sigterm_during_the_final_checkpoint_write_exits_143(tmp_path):
    out = tmp_path / "run"
    r = _child(AT_FINAL_SAVE.format(action="os.kill(os.getpid(), signal.SIGTERM)"), [*TRAIN, "--out", out])
    assert r.returncode == 143, r.stderr  # not 0: the SIGTERM is not swallowed
    _clean(r.stderr)
    assert [l for l in r.stderr.splitlines() if l.strip()][-1].startswith("pgviz: terminated after 4 steps")
    assert json.loads(r.stdout.splitlines()[-1])["status"] == "terminated"
    ckpt = _checkpoint(out)
    assert (ckpt["epoch"], ckpt["step"], ckpt["finished"]) == (1, 4, True)  # the run's end, written whole


@pytest.mark.parametrize("when", ["in-the-write", "at-exit"])
def test_two_ctrl_c_20_ms_apart_at_the_end_exit_130(tmp_path, when):
    """The second Ctrl-C 20 ms after the first: still inside the final write, or once the
    command has returned (the issue: an atexit callback's 20-line 'Exception ignored')."""
    second = ("time.sleep(0.02); os.kill(os.getpid(), signal.SIGINT)" if when == "in-the-write" else
              "atexit.register(lambda: (time.sleep(0.02), os.kill(os.getpid(), signal.SIGINT), time.sleep(1)))")
    out = tmp_path / "run"
    r = _child(AT_FINAL_SAVE.format(action=f"os.kill(os.getpid(), signal.SIGINT); {second}"), [*TRAIN, "--out", out])
    assert r.returncode == 130, r.stderr
    _clean(r.stderr)
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("pgviz: interrupted after 4 steps"), r.stderr
    assert json.loads(r.stdout.splitlines()[-1])["status"] == "interrupted"
    ckpt = _checkpoint(out)
    assert (ckpt["epoch"], ckpt["step"]) == (1, 4)


# a signal delivered inside a weakref callback run by an import: an exception raised there is
# "ignored" by Python (importlib's _get_module_lock clean-up is such a callback), so the old
# code lost the interrupt and trained on
IN_AN_IMPORT = """
    import os, signal, sys, weakref

    class Finder:
        def find_spec(self, name, path=None, target=None):
            if name == "torch":
                sys.meta_path.remove(self)
                class Lock:
                    pass
                lock = Lock()
                ref = weakref.ref(lock, lambda _: os.kill(os.getpid(), signal.{sig}))
                del lock  # the callback runs here, inside the import of torch
            return None
    sys.meta_path.insert(0, Finder())
"""


@pytest.mark.parametrize("sig, status, line", [("SIGINT", 130, "pgviz: interrupted"),
                                               ("SIGTERM", 143, "pgviz: terminated")])
def test_a_signal_inside_an_import_at_start_up_ends_the_process_at_once(tmp_path, sig, status, line):
    out = tmp_path / "run"
    r = _child(IN_AN_IMPORT.format(sig=sig), [*TRAIN, "--epochs", "50", "--out", out], timeout=60)
    assert r.returncode == status, r.stderr
    assert r.stderr == line + "\n" and r.stdout == ""
    assert not out.exists()  # nothing ran on after it


def _catches_sigterm(pid: int) -> bool:
    """True once the process has a handler for SIGTERM (pgviz installs it first thing)."""
    try:
        for row in Path(f"/proc/{pid}/status").read_text().splitlines():
            if row.startswith("SigCgt:"):
                return bool(int(row.split()[1], 16) >> (signal.SIGTERM - 1) & 1)
    except OSError:
        pass
    return False


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc/PID/status (Linux)")
@pytest.mark.parametrize("delay", [0.0, 0.2, 0.6, 1.2])
def test_ctrl_c_at_any_moment_of_start_up_is_one_line_exit_130(tmp_path, delay):
    """From outside, at a delay after pgviz took the signals (before, it is Python's own
    start-up): exit 130, one line, no traceback, and the run does not go on (50 epochs)."""
    out = tmp_path / "run"
    p = subprocess.Popen([sys.executable, "-m", "pgviz", *TRAIN, "--epochs", "50", "--out", str(out)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        t_end = time.monotonic() + 60
        while not _catches_sigterm(p.pid) and p.poll() is None and time.monotonic() < t_end:
            time.sleep(0.005)
        time.sleep(delay)
        p.send_signal(signal.SIGINT)
        stdout, stderr = p.communicate(timeout=60)  # a run that went on would take minutes
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 130, stderr
    _clean(stderr)
    lines = [l for l in stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("pgviz: interrupted"), stderr
