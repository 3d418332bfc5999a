"""The built book works in a real browser with the network off.

Headless Chromium (Debian's ``/usr/bin/chromium``, driven by the ``playwright``
package through ``executable_path``; no browser download) opens every page of
the built book (``_build/html``, every page in ``_toc.yml``) from ``file://``
with every non-file request aborted and the context offline, and checks:

* math is rendered: each Sphinx math element became a MathJax
  ``mjx-container``, no MathJax errors, and no raw TeX delimiters
  (``\\(``, ``\\[``, ``$$``, ``$\\cmd...$``) left in the visible prose;
* every ``<img>`` loaded (``naturalWidth > 0``);
* no console errors, no page errors, no failed or blocked requests;
* no dead widget (an un-rendered ``widget-view+json`` placeholder);
* every frame slider (``<input type=range>``) changes its figure when moved;
* the "Download .ipynb" button points at a notebook file in the build and
  actually downloads it.

A full-page screenshot per page is written to ``_build/screenshots/``.

Without a built book or without Chromium/playwright the tests skip, so the
plain test suite passes anywhere.  CI builds the book first and sets
``PGVIZ_BROWSER_TEST=1``, which turns those skips into failures.

Environment: PGVIZ_BOOK_ROOT (book source folder with ``_toc.yml``; default
the repository), PGVIZ_BOOK_HTML (default ``<book root>/_build/html``), PGVIZ_CHROMIUM
(default ``/usr/bin/chromium`` or ``chromium`` on PATH), PGVIZ_SCREENSHOTS
(default ``_build/screenshots``).
"""
from __future__ import annotations

import json
import os
import re
import warnings
from pathlib import Path

import pytest
from booktoc import toc_files
from browsers import unavailable
from helpers import load_file

ROOT = Path(__file__).resolve().parent.parent
BOOK_ROOT = Path(os.environ.get("PGVIZ_BOOK_ROOT", ROOT))  # where _toc.yml and _build/ are
BOOK = Path(os.environ.get("PGVIZ_BOOK_HTML", BOOK_ROOT / "_build" / "html"))
SHOTS = Path(os.environ.get("PGVIZ_SCREENSHOTS", BOOK_ROOT / "_build" / "screenshots"))


def toc_docnames(toc_path: Path = BOOK_ROOT / "_toc.yml") -> list[str]:
    """Every document in the table of contents, in reading order (no file extension)."""
    return [re.sub(r"\.(ipynb|md|rst)$", "", n) for n in toc_files(toc_path)]


try:
    DOCNAMES = toc_docnames()
except Exception:  # no/invalid toc: test_toc_pages_built reports it
    DOCNAMES = []


# ---------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def book() -> Path:
    if not (BOOK / "index.html").is_file() and not any(BOOK.glob("**/*.html")):
        unavailable(f"no built book at {BOOK} (run: python scripts/build_book.py)")
    return BOOK


@pytest.fixture()
def page(browser, tmp_path):
    """A fresh offline page that records errors and blocked requests."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, offline=True,
                              accept_downloads=True, service_workers="block")
    log = {"console": [], "pageerror": [], "blocked": [], "failed": []}

    def route(r):
        log["blocked"].append(r.request.url)
        r.abort()

    # Every request that is not file:// or data:/blob: is refused.
    ctx.route(re.compile(r"^(?!(file|data|blob):)"), route)
    pg = ctx.new_page()
    pg.on("console", lambda m: log["console"].append(f"{m.type}: {m.text} @ {m.location}")
          if m.type == "error" else None)
    pg.on("pageerror", lambda e: log["pageerror"].append(str(e)))
    pg.on("requestfailed", lambda r: log["failed"].append(f"{r.url} ({r.failure})"))
    pg.pgviz_log = log
    try:
        yield pg
    finally:
        ctx.close()


# ---------------------------------------------------------------------------
# in-page probes
# ---------------------------------------------------------------------------
WAIT_MATHJAX = """async () => {
  const n = document.querySelectorAll('.math').length;
  if (!n) return {math: 0};
  const t0 = Date.now();
  while (!(window.MathJax && MathJax.startup && MathJax.startup.promise)) {
    if (Date.now() - t0 > 15000) return {math: n, loaded: false};
    await new Promise(r => setTimeout(r, 50));
  }
  await MathJax.startup.promise;
  if (MathJax.typesetPromise) await MathJax.typesetPromise();
  return {math: n, loaded: true};
}"""

MATH_REPORT = """() => {
  const mathEls = [...document.querySelectorAll('.math')];
  const unrendered = mathEls.filter(e => !e.querySelector('mjx-container') &&
                                         !(e.tagName.toLowerCase() === 'mjx-container'))
                            .map(e => e.textContent.trim().slice(0, 80));
  const errors = [...document.querySelectorAll('mjx-merror, [data-mjx-error]')]
                   .map(e => (e.getAttribute('data-mjx-error') || e.textContent).slice(0, 80));
  // visible prose text: skip code, scripts, rendered math, hidden nodes
  const skip = 'pre, code, script, style, textarea, mjx-container, .highlight, noscript, svg';
  const texts = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode, el = node.parentElement;
    if (!el || el.closest(skip)) continue;
    if (el.checkVisibility && !el.checkVisibility()) continue;
    if (node.textContent.trim()) texts.push(node.textContent);
  }
  return {containers: document.querySelectorAll('mjx-container').length,
          unrendered, errors, text: texts.join('\\n')};
}"""

IMAGES_LOADED = """async () => {
  const imgs = [...document.images];
  imgs.forEach(i => { if (i.loading === 'lazy') i.loading = 'eager'; });
  await Promise.all(imgs.map(i => i.complete ? null :
      new Promise(r => { i.addEventListener('load', r); i.addEventListener('error', r);
                         setTimeout(r, 10000); })));
  return imgs.filter(i => !(i.complete && i.naturalWidth > 0))
             .map(i => (i.currentSrc || i.src || '').slice(0, 120));
}"""

# For each range input: the nearest ancestor holding an <img>/<canvas> is its
# figure; the figure's state is the src and visibility of those images.
SLIDERS = """() => {
  const out = [];
  document.querySelectorAll('input[type=range]').forEach((r, k) => {
    r.setAttribute('data-pgviz-test-slider', k);
    let box = r.parentElement;
    while (box && !box.querySelector('img, canvas')) box = box.parentElement;
    out.push({k, min: r.min, max: r.max, step: r.step, value: r.value, hasFigure: !!box});
  });
  return out;
}"""

FIGURE_STATE = """(k) => {
  const r = document.querySelector(`[data-pgviz-test-slider="${k}"]`);
  let box = r.parentElement;
  while (box && !box.querySelector('img, canvas')) box = box.parentElement;
  if (!box) return null;
  return [...box.querySelectorAll('img, canvas')].map(e =>
      [e.tagName, e.tagName === 'IMG' ? (e.currentSrc || e.src).length + ':' + (e.currentSrc || e.src).slice(-64)
                                      : e.toDataURL().length + ':' + e.toDataURL().slice(-64),
       e.checkVisibility ? e.checkVisibility() : true].join('|'));
}"""

# display equations wider than the text column (cut off or scrolled at 1280 px)
WIDE_MATH = """() => [...document.querySelectorAll('div.math, .math-wrapper, mjx-container[display="true"]')]
  .filter(e => e.scrollWidth > e.clientWidth + 2)
  .map(e => (e.id || '') + ' ' + (e.textContent || '').trim().slice(0, 60))"""

MOVE_SLIDER = """([k, v]) => {
  const r = document.querySelector(`[data-pgviz-test-slider="${k}"]`);
  r.value = v;
  r.dispatchEvent(new Event('input', {bubbles: true}));
  r.dispatchEvent(new Event('change', {bubbles: true}));
  return r.value;
}"""

DOWNLOAD_LINK = ("a.btn-download-source-button[href$='.ipynb'], "
                 "a.btn-download-notebook-button[href$='.ipynb']")

RAW_TEX = [
    (re.compile(r"\\\(|\\\)"), r"\( \)"),
    (re.compile(r"\\\[|\\\]"), r"\[ \]"),
    (re.compile(r"\$\$"), "$$"),
    (re.compile(r"\$[^$\n]*\\[A-Za-z]+[^$\n]*\$"), r"$\command ...$"),
    (re.compile(r"\\begin\{(equation|align|gather)"), r"\begin{...}"),
]


def _other_value(s: dict) -> str:
    lo, hi = float(s["min"] or 0), float(s["max"] or 100)
    cur = float(s["value"])
    target = hi if cur != hi else lo
    return repr(int(target)) if target.is_integer() else repr(target)


def _file_url(path: Path) -> str:
    return path.resolve().as_uri()


# ---------------------------------------------------------------------------
# tests
# ---------------------------------------------------------------------------
def test_toc_pages_built(book):
    assert DOCNAMES, "could not read _toc.yml"
    missing = [d for d in DOCNAMES if not (book / f"{d}.html").is_file()]
    assert not missing, f"pages in _toc.yml missing from {book}: {missing}"


def test_no_network_resources_in_html(book):
    """No page or stylesheet loads anything from the network."""
    mod = load_file("offline_assets", ROOT / "_ext" / "offline_assets.py")
    found = mod.find_external_resources(book)
    assert not found, f"built HTML loads from the network: {json.dumps(found, indent=1)}"


@pytest.mark.parametrize("docname", DOCNAMES)
def test_page_offline(book, page, docname):
    html = book / f"{docname}.html"
    if not html.is_file():
        pytest.fail(f"{html} not built", pytrace=False)
    log = page.pgviz_log
    page.goto(_file_url(html), wait_until="load", timeout=30000)
    problems: list[str] = []

    # -- math ---------------------------------------------------------------
    mj = page.evaluate(WAIT_MATHJAX)
    if mj["math"] and not mj.get("loaded"):
        problems.append(f"page has {mj['math']} math elements but MathJax never loaded")
    rep = page.evaluate(MATH_REPORT)
    if mj["math"]:
        if rep["unrendered"]:
            problems.append(f"math not rendered by MathJax: {rep['unrendered'][:5]}")
        if rep["errors"]:
            problems.append(f"MathJax errors: {rep['errors'][:5]}")
    for pattern, name in RAW_TEX:
        m = pattern.search(rep["text"])
        if m:
            ctx = rep["text"][max(0, m.start() - 60): m.end() + 60].replace("\n", " ")
            problems.append(f"raw TeX {name} in visible text: ...{ctx}...")

    wide = page.evaluate(WIDE_MATH)
    if wide:  # readable by scrolling, so a warning, not a failure
        warnings.warn(f"{docname}: display math wider than the column at 1280 px: {wide}")

    # -- images ---------------------------------------------------------------
    broken = page.evaluate(IMAGES_LOADED)
    if broken:
        problems.append(f"images not loaded: {broken}")

    # -- no dead ipywidgets ---------------------------------------------------
    dead = page.locator('script[type="application/vnd.jupyter.widget-view+json"]').count()
    if dead:
        problems.append(f"{dead} ipywidgets view(s) with no static fallback (dead widget in HTML)")

    # -- frame sliders --------------------------------------------------------
    for s in page.evaluate(SLIDERS):
        if not s["hasFigure"]:
            problems.append(f"slider #{s['k']} has no figure (img/canvas) around it")
            continue
        before = page.evaluate(FIGURE_STATE, s["k"])
        target = _other_value(s)
        page.evaluate(MOVE_SLIDER, [s["k"], target])
        page.wait_for_timeout(50)
        after = page.evaluate(FIGURE_STATE, s["k"])
        if before == after:
            problems.append(f"moving slider #{s['k']} ({s['value']} -> {target}) "
                            "did not change its figure")
        page.evaluate(MOVE_SLIDER, [s["k"], s["value"]])  # put it back for the screenshot
    # images shown after slider moves must load too
    broken = page.evaluate(IMAGES_LOADED)
    if broken:
        problems.append(f"images not loaded after moving sliders: {broken}")

    # -- download .ipynb -------------------------------------------------------
    # (from file:// Chromium ignores the download attribute and opens the JSON,
    # which the reader can save; test_download_ipynb_over_http checks the save)
    if (book / "_sources" / f"{docname}.ipynb").is_file():
        link = page.locator(DOWNLOAD_LINK).first
        if not link.count():
            problems.append("no 'Download .ipynb' button")
        else:
            href = link.get_attribute("href")
            target = (html.parent / href).resolve()
            if not target.is_file():
                problems.append(f"download button points at missing {href}")
            elif "cells" not in json.loads(target.read_text()):
                problems.append(f"{href} is not a notebook")
            if not (link.get_attribute("download") or "").endswith(".ipynb"):
                problems.append("download button has no download=*.ipynb attribute")

    # -- screenshot + console ---------------------------------------------------
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{docname.replace('/', '__')}.png"), full_page=True)
    if log["blocked"]:
        problems.append(f"network requests attempted (blocked): {sorted(set(log['blocked']))}")
    failed = [f for f in log["failed"] if not f.startswith(("http:", "https:"))]
    if failed:
        problems.append(f"failed requests: {failed}")
    if log["console"]:
        problems.append(f"console errors: {log['console']}")
    if log["pageerror"]:
        problems.append(f"page errors: {log['pageerror']}")

    assert not problems, f"{docname}:\n  " + "\n  ".join(problems)


def test_download_ipynb_over_http(book, browser):
    """Served over HTTP (as when hosted), "Download .ipynb" saves the notebook."""
    import functools
    import http.server
    import threading

    nb_pages = [d for d in DOCNAMES if (book / "_sources" / f"{d}.ipynb").is_file()]
    if not nb_pages:
        pytest.skip("no notebook chapters in the build")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(book))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    ctx = browser.new_context(accept_downloads=True)
    ctx.route(re.compile(rf"^(?!{re.escape(base)}/|data:|blob:)"), lambda r: r.abort())
    try:
        pg = ctx.new_page()
        docname = nb_pages[0]
        pg.goto(f"{base}/{docname}.html", wait_until="load")
        link = pg.locator(DOWNLOAD_LINK).first
        with pg.expect_download(timeout=15000) as info:
            link.evaluate("a => a.click()")
        dl = info.value
        assert dl.suggested_filename == Path(docname).name + ".ipynb"
        saved = Path(dl.path())
        nb = json.loads(saved.read_text())
        assert nb.get("nbformat") == 4 and nb.get("cells"), "downloaded file is not a notebook"
    finally:
        ctx.close()
        server.shutdown()


def test_index_opens_first_chapter(book, page):
    """Readers open _build/html/index.html: it must lead to the book's first page offline."""
    index = book / "index.html"
    if not index.is_file():
        pytest.fail(f"{index} missing", pytrace=False)
    page.goto(_file_url(index), wait_until="load")
    page.wait_for_url(re.compile(re.escape(DOCNAMES[0]) + r"\.html"), timeout=10000)
    assert page.locator("h1").count() >= 1
    assert not page.pgviz_log["blocked"] and not page.pgviz_log["pageerror"]


@pytest.mark.parametrize("docname", [d for d in toc_docnames() if (BOOK_ROOT / f"{d}.ipynb").is_file()])
def test_figure_cells_show_their_figures(book, docname):
    """A code cell ending in ';' draws a figure (the chapters' convention): its picture must be in
    the page. Guards against a build whose kernels lost the inline backend (e.g. MPLBACKEND=Agg),
    where every pyplot figure silently vanishes while frame sliders still show."""
    import re

    import nbformat

    nb = nbformat.read(BOOK_ROOT / f"{docname}.ipynb", as_version=4)
    drawing = sum(1 for c in nb.cells if c.cell_type == "code" and c.source.rstrip().endswith(";"))
    html = (book / f"{docname}.html").read_text()
    figures = [i for i in re.findall(r"<img[^>]*>", html) if "pgviz-frames-image" not in i]
    assert len(figures) >= drawing, f"{docname}: {drawing} figure cells but {len(figures)} figures in the page"
