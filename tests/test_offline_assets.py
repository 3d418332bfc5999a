"""Unit tests of _ext/offline_assets.py (no book build, no npm, no network)."""
from __future__ import annotations

from pathlib import Path

import pytest
from helpers import load_file

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def oa():
    return load_file("offline_assets", ROOT / "_ext" / "offline_assets.py")


def test_finds_network_resources(oa, tmp_path):
    (tmp_path / "_static").mkdir()
    (tmp_path / "page.html").write_text("""<html><head>
      <script src="https://cdnjs.cloudflare.com/ajax/libs/require.js/2.3.4/require.min.js"></script>
      <script src="_static/local.js"></script>
      <script>const THEBE_JS_URL = "https://unpkg.com/thebe";</script>
      <link rel="stylesheet" href="//fonts.googleapis.com/css?family=Lato">
      <link rel="canonical" href="https://example.org/page.html">
      <style>@import "https://fonts.example/x.css"; body {background: url(local.png)}</style>
      </head><body>
      <a href="https://example.org/article">a link is fine</a>
      <img src="data:image/png;base64,AAAA"><img src="http://example.org/x.png">
      <div style="background-image: url('https://example.org/bg.png')"></div>
      </body></html>""")
    (tmp_path / "_static" / "theme.css").write_text(
        "@font-face {src: url(https://fonts.gstatic.com/a.woff2)} .x {background: url(../img.png)}")
    (tmp_path / "_static" / "ok.css").write_text(".y {background: url('data:image/png;base64,AA')}")
    found = oa.find_external_resources(tmp_path)
    assert set(found) == {"page.html", "_static/theme.css"}
    page = " ".join(found["page.html"])
    for url in ("require.min.js", "fonts.googleapis.com", "fonts.example/x.css",
                "example.org/x.png", "bg.png"):
        assert url in page, url
    for fine in ("unpkg.com/thebe", "example.org/article", "example.org/page.html"):
        assert fine not in page, fine
    assert found["_static/theme.css"] == ["css https://fonts.gstatic.com/a.woff2"]


def test_stage_mathjax_from_given_folder(oa, tmp_path, monkeypatch):
    es5 = tmp_path / "mathjax" / "es5"
    for part in oa.MATHJAX_PARTS:
        p = es5 / part
        if part.endswith(".js"):
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text("// stub")
        else:
            p.mkdir(parents=True)
            (p / "x.js").write_text("// stub")
    (es5 / "tex-svg.js").write_text("// not needed")
    (tmp_path / "mathjax" / "package.json").write_text('{"version": "3.9.9"}')
    monkeypatch.setenv("PGVIZ_MATHJAX_DIR", str(es5))
    root = tmp_path / "book"
    static = oa.stage_mathjax(root, quiet=True)
    assert static == root / ".cache" / "offline_static"
    assert (static / "mathjax" / "tex-chtml.js").is_file()
    assert (static / "mathjax" / "output" / "chtml" / "x.js").is_file()
    assert not (static / "mathjax" / "tex-svg.js").exists()
    assert oa.mathjax_version(es5) == "3.9.9"
    # a second call reuses the staged copy
    (static / "mathjax" / "marker").write_text("kept")
    oa.stage_mathjax(root, quiet=True)
    assert (static / "mathjax" / "marker").is_file()


def test_missing_mathjax_dir_is_an_error(oa, tmp_path, monkeypatch):
    monkeypatch.setenv("PGVIZ_MATHJAX_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(RuntimeError, match="tex-chtml.js"):
        oa.ensure_mathjax(tmp_path)
