"""A real JupyterLab for the tests: a server on a free local port over a copy of the book.

Used by ``tests/test_jupyterlab.py`` (and handy by hand: ``python tests/jlab.py`` starts one
and prints its URL).  The server

* serves a *copy* of ``book/`` (so no test can save or dirty a chapter), laid out like the
  repository (``<tmp>/book``, ``<tmp>/results`` linked, ``<tmp>/runs`` empty) so that the
  chapters' relative paths (``../results``, ``../runs``) behave as in a checkout;
* runs kernels that import *this* checkout's ``pgviz`` (``PYTHONPATH``), on the small
  synthetic data set (``PGVIZ_DATA=synthetic``: no data file, no download);
* exposes ``window.jupyterapp`` (``--LabApp.expose_app_in_browser``), through which the
  test runs JupyterLab's own commands;
* is stopped with its kernels by :meth:`Lab.close` (also after a failure).
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def copy_book(dest: Path, root: Path = ROOT) -> Path:
    """``<dest>/book`` (a copy of the chapters), ``<dest>/results`` (a link), ``<dest>/runs``."""
    shutil.copytree(root / "book", dest / "book",
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "_build"))
    if (root / "results").exists():
        (dest / "results").symlink_to(root / "results", target_is_directory=True)
    (dest / "runs").mkdir()
    return dest / "book"


class Lab:
    """``jupyter lab`` over a copy of the book; ``url(path)`` opens a file, ``close()`` stops it."""

    def __init__(self, *, timeout: float = 120.0, root: Path = ROOT):
        self.tmp = Path(tempfile.mkdtemp(prefix="pgviz-jlab-"))
        self.book = copy_book(self.tmp, root)
        self.port = free_port()
        self.token = secrets.token_hex(16)
        env = dict(os.environ)
        env.update({
            "PYTHONPATH": os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH")) if p),
            "PGVIZ_DATA": "synthetic",
            "OMP_WAIT_POLICY": "PASSIVE",
            "JUPYTER_CONFIG_DIR": str(self.tmp / "config"),   # no user settings leak in
            "JUPYTERLAB_WORKSPACES_DIR": str(self.tmp / "workspaces"),
            "JUPYTER_RUNTIME_DIR": str(self.tmp / "runtime"),
        })
        env.pop("MPLBACKEND", None)  # kernels use the inline backend, as a reader's do
        cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root",
               f"--port={self.port}", "--ip=127.0.0.1", "--port-retries=0",
               f"--ServerApp.token={self.token}", f"--ServerApp.root_dir={self.book}",
               "--LabApp.expose_app_in_browser=True",
               "--LabApp.news_url=", "--LabApp.check_for_updates_class="
               "jupyterlab.NeverCheckForUpdate"]
        # no "get notified about Jupyter news?" toast over the notebook
        labconfig = self.tmp / "config" / "labconfig"
        labconfig.mkdir(parents=True)
        (labconfig / "page_config.json").write_text(json.dumps(
            {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
        self.log_path = self.tmp / "server.log"
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, cwd=self.book, env=env, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._wait(timeout)
        except Exception:
            self.close()
            raise

    @property
    def base(self) -> str:
        return f"http://localhost:{self.port}"

    def url(self, path: str = "") -> str:
        return f"{self.base}/lab/tree/{path}?reset&token={self.token}"

    def api(self, path: str, method: str = "GET"):
        req = urllib.request.Request(f"{self.base}/api/{path}", method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=30) as r:
            body = r.read()
        return json.loads(body) if body else None

    def _wait(self, timeout: float) -> None:
        t_end = time.monotonic() + timeout
        while time.monotonic() < t_end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited ({self.proc.returncode}):\n{self.log()}")
            try:
                self.api("status")
                return
            except OSError:
                time.sleep(0.5)
        raise TimeoutError(f"jupyter lab did not answer in {timeout:.0f} s:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text()[-4000:]
        except OSError:
            return ""

    def shutdown_kernels(self) -> None:
        """Stop every session and kernel this server runs."""
        try:
            for s in self.api("sessions") or []:
                self.api(f"sessions/{s['id']}", "DELETE")
            for k in self.api("kernels") or []:
                self.api(f"kernels/{k['id']}", "DELETE")
        except OSError:
            pass

    def leftover_pids(self) -> list:
        """Processes still running from this server's folder (kernels name their
        connection file there): none once :meth:`close` has run."""
        mark = str(self.tmp).encode()
        pids = []
        for d in Path("/proc").glob("[0-9]*"):
            try:
                if mark in (d / "cmdline").read_bytes() and int(d.name) != os.getpid():
                    pids.append(int(d.name))
            except OSError:
                pass
        return pids

    def close(self) -> None:
        if self.proc.poll() is None:
            self.shutdown_kernels()
            # the server and anything it started share one process group
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
            except ProcessLookupError:
                pass
        for pid in self.leftover_pids():  # kernels run in sessions of their own
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        self._log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


if __name__ == "__main__":  # pragma: no cover - manual use
    lab = Lab()
    print(lab.url(), flush=True)
    try:
        signal.pause()
    finally:
        lab.close()
