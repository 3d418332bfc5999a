"""Accessibility of the built HTML book, measured with axe-core in Chromium.

For every page in ``_toc.yml`` (``_build/html``, opened from ``file://``):

* axe-core (installed from the npm registry at test time into the ignored
  ``.cache/npm/axe``, never committed; ``PGVIZ_AXE_JS`` points at another
  ``axe.min.js``) finds no *critical* or *serious* violation -- the check
  pydata-sphinx-theme's own test suite makes;
* every figure in the page's content has alt text that says what it shows: not
  empty, not a file name, a few words at least (matplotlib outputs get theirs from
  the cell's ``mystnb.image.alt`` metadata, frame sliders from :mod:`pgviz.widgets`);
* every static frame slider has a visible label and works from the keyboard: focus,
  ArrowRight (ArrowLeft at the end) changes the figure, its alt text and the value shown.

Without a built book, Chromium, Playwright or npm the tests skip, unless
``PGVIZ_BROWSER_TEST=1`` (CI), which makes that a failure.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from booktoc import toc_files
from browsers import unavailable

ROOT = Path(__file__).resolve().parent.parent
BOOK = Path(os.environ.get("PGVIZ_BOOK_HTML", ROOT / "_build" / "html"))
AXE_SPEC = "axe-core@4"
AXE_PREFIX = ROOT / ".cache" / "npm" / "axe"
PAGES = [re.sub(r"\.(ipynb|md|rst)$", "", f) for f in toc_files()]
BLOCKING = ("critical", "serious")


def ensure_axe(prefix: Path = AXE_PREFIX) -> Path:
    """``axe.min.js``: ``$PGVIZ_AXE_JS``, else axe-core 4 from npm into ``prefix``."""
    if os.environ.get("PGVIZ_AXE_JS"):
        return Path(os.environ["PGVIZ_AXE_JS"])
    js = prefix / "node_modules" / "axe-core" / "axe.min.js"
    if js.is_file():
        return js
    npm = os.environ.get("PGVIZ_NPM", "npm")
    if shutil.which(npm) is None:
        raise FileNotFoundError(f"`{npm}` was not found: install npm to fetch {AXE_SPEC}")
    prefix.mkdir(parents=True, exist_ok=True)
    cmd = [npm, "install", "--prefix", str(prefix), "--no-save", "--no-package-lock",
           "--no-audit", "--no-fund", "--loglevel=error", AXE_SPEC]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if res.returncode != 0 or not js.is_file():
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{res.stdout}\n{res.stderr}")
    return js


@pytest.fixture(scope="module")
def axe_js() -> Path:
    try:
        return ensure_axe()
    except (FileNotFoundError, RuntimeError, subprocess.TimeoutExpired) as exc:
        unavailable(f"axe-core is not available: {exc}")


@pytest.fixture(scope="module")
def book() -> Path:
    if not (BOOK / "index.html").is_file():
        unavailable(f"no built book at {BOOK} (python scripts/build_book.py)")
    return BOOK


@pytest.fixture
def page(browser, book):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    yield pg
    context.close()


def _open(page, book: Path, name: str):
    path = book / f"{name}.html"
    if not path.is_file():
        pytest.fail(f"{path} was not built")
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    page.wait_for_timeout(300)  # the theme's scripts (icons, search button) settle


def alt_problem(alt: str | None) -> str | None:
    """Why ``alt`` does not say what a figure shows (None when it does)."""
    if alt is None or not alt.strip():
        return "no alt text"
    text = alt.strip()
    if re.search(r"\.(png|jpe?g|svg|gif)$", text, re.I) or "/" in text.split()[0]:
        return f"alt is a file name ({text[:60]})"
    if re.fullmatch(r"[0-9a-f]{16,}.*", text):
        return f"alt is a hash ({text[:60]})"
    if len(text.split()) < 4:
        return f"alt too short to say what is shown ({text!r})"
    return None


def test_alt_problem_tells_good_from_bad():
    assert alt_problem(None) == "no alt text" and alt_problem("  ") == "no alt text"
    assert alt_problem("../_images/3f2a9c.png").startswith("alt is a file name")
    assert alt_problem("Figure.").startswith("alt too short")
    assert alt_problem("Bar chart of the policy over the ten labels.") is None


@pytest.mark.parametrize("name", PAGES)
def test_axe_finds_no_serious_violation(name, page, book, axe_js):
    _open(page, book, name)
    page.add_script_tag(path=str(axe_js))
    violations = page.evaluate(
        """async () => {
          const r = await axe.run(document, {resultTypes: ['violations']});
          return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 5).map(n => n.target.join(' '))}));
        }""")
    blocking = [v for v in violations if v["impact"] in BLOCKING]
    assert blocking == [], "\n".join(f"{v['impact']} {v['id']}: {v['help']} at {v['nodes']}"
                                     for v in blocking)


@pytest.mark.parametrize("name", PAGES)
def test_every_figure_says_what_it_shows(name, page, book):
    _open(page, book, name)
    images = page.evaluate(
        """() => Array.from(document.querySelectorAll('main img, article img'))
             .map(i => ({alt: i.getAttribute('alt'), src: (i.getAttribute('src') || '').slice(0, 80),
                         cls: i.className}))""")
    bad = [(alt_problem(i["alt"]), i["src"]) for i in images if alt_problem(i["alt"])]
    assert bad == [], f"{name}: {len(bad)} of {len(images)} figures without a useful alt: {bad}"


@pytest.mark.parametrize("name", PAGES)
def test_static_sliders_are_labelled_and_keyboard_operable(name, page, book):
    _open(page, book, name)
    sliders = page.locator("input.pgviz-frames-slider[type=range]")
    for i in range(sliders.count()):
        s = sliders.nth(i)
        sid = s.get_attribute("id")
        label = page.locator(f"label[for='{sid}']")
        assert label.count() == 1 and label.is_visible() and label.inner_text().strip(), \
            f"{name}: slider {sid} has no visible label"
        root = page.locator(".pgviz-frames", has=page.locator(f"#{sid}"))
        img = root.locator("img.pgviz-frames-image")
        out = page.locator(f"output[for='{sid}']")
        before = (img.get_attribute("src"), img.get_attribute("alt"), out.inner_text(),
                  s.input_value(), root.get_attribute("data-frame"))
        at_end = int(s.input_value()) >= int(s.get_attribute("max"))
        s.scroll_into_view_if_needed()
        s.focus()
        page.keyboard.press("ArrowLeft" if at_end else "ArrowRight")
        moved = int(s.input_value()) - int(before[3])
        assert moved == (-1 if at_end else 1), f"{name}: slider {sid} did not move by keyboard"
        frame = root.get_attribute("data-frame")
        assert frame != before[4], f"{name}: slider {sid} did not change the frame"
        assert out.inner_text() != before[2], f"{name}: slider {sid} value text did not change"
        shown = f"{label.inner_text().strip()} = {out.inner_text()}"
        assert shown in img.get_attribute("alt"), f"{name}: alt does not say {shown!r}"
        assert s.get_attribute("aria-valuetext") == out.inner_text(), \
            f"{name}: slider {sid} announces {s.get_attribute('aria-valuetext')!r}, shows {out.inner_text()!r}"
        # the alt is the one made for this frame (issue 14: it kept the first frame's)
        want = root.evaluate(
            """(el, f) => { const d = JSON.parse(el.querySelector('script[type="application/json"]')
                              .textContent); return d.alts[d.alt_index[+f]]; }""", frame)
        assert img.get_attribute("alt") == want, f"{name}: slider {sid} kept another frame's alt"
        # a new picture, unless the two frames are the same picture (stored once)
        same = root.evaluate(
            """(el, fr) => { const d = JSON.parse(el.querySelector('script[type="application/json"]')
                                .textContent); return d.index[+fr[0]] === d.index[+fr[1]]; }""",
            [before[4], frame])
        assert same or img.get_attribute("src") != before[0], f"{name}: slider {sid} figure unchanged"


# what a frame's alt must say there, by page: (slider label, position, words in the alt)
FRAME_ALTS = {
    "book/02_policy_gradient": ("samples n", "End", "n = 1,000,000 samples each"),
    "book/08_training_cifar10": ("after epoch", "Home", "policy after 0 epochs"),
}


@pytest.mark.parametrize("name", sorted(FRAME_ALTS))
def test_frame_alt_says_what_that_frame_shows(name, page, book):
    """ch02 at its last n said "n = 1 samples each"; ch08 at epoch 0 "after 6 epochs"."""
    label_text, key, words = FRAME_ALTS[name]
    _open(page, book, name)
    label = page.locator("label", has_text=label_text).first
    s = page.locator(f"#{label.get_attribute('for')}")
    root = page.locator(".pgviz-frames", has=s)
    s.scroll_into_view_if_needed()
    s.focus()
    page.keyboard.press(key)
    alt = root.locator("img.pgviz-frames-image").get_attribute("alt")
    assert words in alt, f"{name}: after {key} the alt says {alt!r}"
