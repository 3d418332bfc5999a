"""scripts/build_book.py: the execution cache is keyed on the chapters' data, and missing
data is reported in one line before any chapter runs (no book is built here)."""
import json
import os
from pathlib import Path

import numpy as np
import pytest
from helpers import load_file

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bb():
    return load_file("build_book", ROOT / "scripts" / "build_book.py")


def _npz(path, n=20):
    rng = np.random.default_rng(0)
    np.savez(path, images=rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8),
             labels=(np.arange(n) % 10).astype(np.uint8))
    return path


def test_stamp_follows_the_data(bb, tmp_path):
    f = _npz(tmp_path / "a.npz")
    s1 = bb.data_stamp(str(f))
    assert s1 == bb.data_stamp(str(f)) and s1["source"] == str(f.resolve())
    assert s1["size"] == f.stat().st_size and len(s1["sha256"]) == 64
    os.utime(f, ns=(1, 1))
    assert bb.data_stamp(str(f)) == s1  # touched, same contents: the same data, the cache stays
    _npz(f, n=30)
    os.utime(f, ns=(1, 1))
    assert bb.data_stamp(str(f)) != s1  # same mtime, other size
    assert bb.data_stamp(str(tmp_path / "b.npz"))["missing"] is True
    assert bb.data_stamp("synthetic") == {"source": "synthetic"}


def test_stamp_sees_one_byte_changed_with_the_mtime_put_back(bb, tmp_path):
    """Issue 17 case 11: same path, size and mtime, one byte of the contents changed."""
    f = _npz(tmp_path / "a.npz")
    before = f.stat()
    s1 = bb.data_stamp(str(f))
    raw = bytearray(f.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    f.write_bytes(bytes(raw))
    os.utime(f, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = f.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    s2 = bb.data_stamp(str(f))
    assert s2 != s1 and s2["sha256"] != s1["sha256"] and s2["size"] == s1["size"]


def test_cache_is_emptied_when_the_data_changes(bb, tmp_path):
    build = tmp_path / "_build"
    cache = build / ".jupyter_cache"

    def fill():
        cache.mkdir(parents=True, exist_ok=True)
        (cache / "entry").write_text("outputs")

    fill()
    assert bb.key_cache(build, {"source": "a"}) is True and not cache.exists()  # unknown origin
    fill()  # a build with "a" that stops half-way: its entries are from "a" ...
    assert bb.key_cache(build, {"source": "a"}) is True  # ... kept, but every page rebuilt
    assert (cache / "entry").exists()
    bb.seal_cache(build, {"source": "a"})
    assert bb.key_cache(build, {"source": "a"}) is False and (cache / "entry").exists()  # same data
    bb.seal_cache(build, {"source": "a"})
    assert bb.key_cache(build, {"source": "b"}) is True and not cache.exists()  # other data
    fill()
    assert bb.key_cache(build, {"source": "a"}) is True and not cache.exists()  # "b" unfinished


def test_missing_data_fails_in_one_line_before_any_chapter(bb, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MPLBACKEND", raising=False)  # main() drops it; restored afterwards
    monkeypatch.setenv("PGVIZ_DATA", str(tmp_path / "missing.npz"))
    monkeypatch.setattr(bb, "BUILD", tmp_path / "_build")
    monkeypatch.setattr(bb.subprocess, "call", lambda *a, **k: pytest.fail("jupyter-book was run"))
    monkeypatch.setattr(bb.offline_assets, "ensure_mathjax", lambda *a: pytest.fail("mathjax was fetched"))
    monkeypatch.chdir(tmp_path)
    try:
        assert bb.main([]) == 2
    finally:
        os.chdir(ROOT)
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith("[build_book] ERROR: the chapters' data cannot be loaded: data file not found")
    assert "PGVIZ_DATA" in out[-1] and len(out) == 2


def test_a_changed_data_file_rebuilds_every_page(bb, tmp_path, monkeypatch):
    f = _npz(tmp_path / "d.npz")
    build = tmp_path / "_build"
    monkeypatch.delenv("MPLBACKEND", raising=False)
    monkeypatch.setenv("PGVIZ_DATA", str(f))
    monkeypatch.setattr(bb, "BUILD", build)
    monkeypatch.setattr(bb.offline_assets, "ensure_mathjax", lambda root: Path("x"))
    monkeypatch.setattr(bb.offline_assets, "mathjax_version", lambda es5: "3")
    calls = []
    monkeypatch.setattr(bb.subprocess, "call", lambda cmd: calls.append(cmd) or 0)
    try:
        assert bb.main(["--no-check"]) == 0
        assert bb.main(["--no-check"]) == 0
        _npz(f, n=40)
        os.utime(f, ns=(5, 5))
        (build / ".jupyter_cache").mkdir()
        assert bb.main(["--no-check"]) == 0
    finally:
        os.chdir(ROOT)
    assert ["--all" in c for c in calls] == [True, False, True]
    assert not (build / ".jupyter_cache").exists()
