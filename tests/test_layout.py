"""The built book on a phone and on a desktop: nothing cut off, nothing spills sideways.

Issue 14: ch05's "largest relative difference" ran off the right edge of its output box,
and on a 390 px screen display equations spilled out of the text column.
``_static/pgviz.css`` wraps printed outputs and lets a wide display equation scroll inside
its own box.  Headless Chromium (tests/browsers.py) opens every page of ``_build/html``
from ``file://`` at 390 px and at 1280 px and checks, after MathJax has typeset:

* no printed output (``div.cell_output pre``) is wider than its box (nothing hidden);
* no display equation reaches past the right edge of the screen;
* at 390 px the page itself does not scroll sideways.

Skips without a built book or Chromium, unless ``PGVIZ_BROWSER_TEST=1``.
``PGVIZ_LAYOUT_PAGES`` (comma-separated doc names, e.g. ``book/05_implementation``) limits
the pages, to check a few quickly.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from booktoc import toc_files
from browsers import unavailable

ROOT = Path(__file__).resolve().parent.parent
BOOK_ROOT = Path(os.environ.get("PGVIZ_BOOK_ROOT", ROOT))
HTML = Path(os.environ.get("PGVIZ_BOOK_HTML", BOOK_ROOT / "_build" / "html"))
PAGES = [re.sub(r"\.(ipynb|md)$", "", f) for f in toc_files(BOOK_ROOT / "_toc.yml")]
if os.environ.get("PGVIZ_LAYOUT_PAGES"):
    PAGES = [p.strip() for p in os.environ["PGVIZ_LAYOUT_PAGES"].split(",") if p.strip()]

TYPESET = """async () => {
  const t0 = Date.now();
  if (!document.querySelector('.math')) return true;
  while (!(window.MathJax && MathJax.startup && MathJax.startup.promise)) {
    if (Date.now() - t0 > 15000) return false;
    await new Promise(r => setTimeout(r, 50));
  }
  await MathJax.startup.promise;
  return true;
}"""

MEASURE = """() => {
  const W = document.documentElement.clientWidth;
  const text = e => e.textContent.replace(/\\s+/g, ' ').trim().slice(0, 70);
  const cut = [...document.querySelectorAll('div.cell_output pre, div.output pre')]
    .filter(p => p.offsetParent !== null && p.scrollWidth > p.clientWidth + 1)
    .map(p => `${text(p)} (${p.scrollWidth} px in ${p.clientWidth} px)`);
  const spill = [...document.querySelectorAll('mjx-container[display="true"], div.math')]
    .filter(m => m.offsetParent !== null && m.getBoundingClientRect().right > W + 1)
    .map(m => `${text(m)} (right edge ${Math.round(m.getBoundingClientRect().right)} px)`);
  return {W, page: document.documentElement.scrollWidth, cut, spill};
}"""


@pytest.fixture(scope="module")
def book() -> Path:
    if not any(HTML.glob("book/*.html")):
        unavailable(f"no built book at {HTML} (run: python scripts/build_book.py)")
    return HTML


@pytest.mark.parametrize("width", [390, 1280])
@pytest.mark.parametrize("doc", PAGES)
def test_nothing_cut_off_and_equations_fit(doc, width, book, browser):
    path = book / f"{doc}.html"
    if not path.is_file():
        pytest.fail(f"{path} missing from the build")
    ctx = browser.new_context(viewport={"width": width, "height": 900}, offline=True,
                              service_workers="block")
    ctx.route(re.compile(r"^(?!(file|data|blob):)"), lambda r: r.abort())
    try:
        page = ctx.new_page()
        page.goto(path.resolve().as_uri(), wait_until="load")
        assert page.evaluate(TYPESET), f"{doc}: MathJax did not load"
        page.wait_for_timeout(200)
        m = page.evaluate(MEASURE)
        assert m["cut"] == [], f"{doc} at {width} px: outputs cut off at the right: {m['cut']}"
        assert m["spill"] == [], f"{doc} at {width} px: equations past the screen's edge: {m['spill']}"
        if width <= 400:
            assert m["page"] <= m["W"] + 1, (f"{doc} at {width} px: the page scrolls sideways "
                                             f"({m['page']} px wide)")
    finally:
        ctx.close()
