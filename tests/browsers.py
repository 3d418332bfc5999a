"""Headless Chromium for the browser tests (shared by test_browser.py, test_accessibility.py
and test_jupyterlab.py; the module-scoped ``browser`` fixture in conftest.py uses it).

Chromium is Debian's ``/usr/bin/chromium`` (or ``$PGVIZ_CHROMIUM``), driven by the
``playwright`` package through ``executable_path``: no browser download.  Without it the
tests skip, unless ``PGVIZ_BROWSER_TEST`` is set (CI), which turns the skip into a failure.
"""
from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import pytest

# CI sets PGVIZ_BROWSER_TEST=1: a missing browser, book or tool is then a failure
REQUIRED = os.environ.get("PGVIZ_BROWSER_TEST", "") not in ("", "0")
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               "--disable-background-networking", "--disable-dev-shm-usage"]


def unavailable(reason: str):
    """Skip the test for ``reason``, or fail it when ``PGVIZ_BROWSER_TEST`` is set."""
    if REQUIRED:
        pytest.fail(f"PGVIZ_BROWSER_TEST is set but {reason}", pytrace=False)
    pytest.skip(reason)


def chromium_path() -> str | None:
    """``$PGVIZ_CHROMIUM``, ``/usr/bin/chromium`` or a Chromium on PATH; None if none runs."""
    for cand in (os.environ.get("PGVIZ_CHROMIUM"), "/usr/bin/chromium",
                 shutil.which("chromium"), shutil.which("chromium-browser")):
        if cand and Path(cand).is_file() and os.access(cand, os.X_OK):
            return cand
    return None


@contextlib.contextmanager
def launch():
    """A headless Chromium (playwright ``Browser``), closed on exit; skips or fails
    (see :func:`unavailable`) without Chromium or playwright."""
    exe = chromium_path()
    if exe is None:
        unavailable("Chromium not found (apt-get install -y chromium, or set PGVIZ_CHROMIUM)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright Python package is not installed")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=exe, headless=True, args=LAUNCH_ARGS)
        try:
            yield b
        finally:
            b.close()
