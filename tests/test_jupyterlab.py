"""The chapters in the reader's JupyterLab: versions agree, opening does not dirty, Run All works.

Two kinds of test:

* without a browser: the installed JupyterLab extensions are all compatible with the
  installed JupyterLab (``jupyter labextension list`` flags none "not compatible"), and every
  chapter's notebook metadata is what a kernel reports (``language_info``, ``kernelspec``),
  so that JupyterLab has nothing to fill in -- and no reason to mark the chapter modified --
  when it starts the kernel;
* in a real JupyterLab (``tests/jlab.py`` starts ``jupyter lab`` on a free local port over a
  copy of ``book/``, kernels on ``PGVIZ_DATA=synthetic``) driven through headless Chromium
  with Playwright: for every chapter in ``_toc.yml``, open it (not modified once the kernel is
  up), Run All, every code cell ran and none has an error output, the browser console has no
  "Cross reference" or glossary message and no "Unsatisfied version" warning (an extension
  built for another JupyterLab), every live slider redraws its figure when moved with
  the keyboard (focus, ArrowRight); on the training chapter, Train redraws the panel's curves,
  Stop ends the run with a resumable checkpoint.

Screenshots: ``_build/test-artifacts/jupyterlab/<chapter>.png`` (``PGVIZ_ARTIFACTS``
overrides ``_build/test-artifacts``).  Without Chromium, Playwright or JupyterLab the
browser tests skip, unless ``PGVIZ_BROWSER_TEST=1`` (CI), which makes that a failure.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from booktoc import toc_files
from browsers import unavailable

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(os.environ.get("PGVIZ_ARTIFACTS", ROOT / "_build" / "test-artifacts")) / "jupyterlab"
CHAPTERS = [Path(f).name for f in toc_files() if (ROOT / f"{f}.ipynb").is_file()]
TRAINING = "08_training_cifar10"
# console messages of jupyterlab-myst about references / glossary it could not render
BAD_CONSOLE = re.compile(r"cross.?reference|glossary", re.I)
# webpack's shared-module check: an extension built for another JupyterLab than the one
# installed (e.g. jupyterlab_widgets 3.0.17 asks for ^4.6.2 under JupyterLab 4.5: requirements.txt)
UNSATISFIED = re.compile(r"Unsatisfied version", re.I)


def _has_jupyterlab() -> bool:
    try:
        import jupyterlab  # noqa: F401
        import jupyterlab_myst  # noqa: F401
    except ImportError:
        return False
    return True


# ---------------------------------------------------------------------------
# no browser: versions and notebook metadata
# ---------------------------------------------------------------------------
def test_lab_extensions_compatible():
    if not _has_jupyterlab():
        unavailable("jupyterlab / jupyterlab-myst is not installed")
    res = subprocess.run([sys.executable, "-m", "jupyter", "labextension", "list"],
                         capture_output=True, text=True, timeout=120)
    text = re.sub(r"\x1b\[[0-9;]*m", "", res.stdout + res.stderr)
    assert res.returncode == 0, text
    assert "not compatible" not in text, text
    for ext in ("jupyterlab-myst", "@jupyter-widgets/jupyterlab-manager"):
        line = next((ln for ln in text.splitlines() if ln.strip().startswith(ext + " ")), None)
        assert line is not None, f"{ext} is not installed:\n{text}"
        assert "enabled" in line and "OK" in line, line


@pytest.fixture(scope="module")
def kernel_info():
    """``(language_info, kernelspec display name)`` as the python3 kernel reports them."""
    pytest.importorskip("ipykernel")
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import start_new_kernel

    spec = KernelSpecManager().get_kernel_spec("python3")
    km, kc = start_new_kernel(kernel_name="python3")
    try:
        kc.kernel_info()
        reply = kc.get_shell_msg(timeout=60)
        return reply["content"]["language_info"], spec.display_name
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


FIX = ("python -c \"import json,sys,nbformat; li=json.loads(sys.argv[1]); "
       "[nbformat.write(nb, f) for f in sys.argv[2:] for nb in [nbformat.read(f, 4)] "
       "if not nb.metadata.update(language_info=li)]\" '{}' book/*.ipynb")


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_metadata_is_what_the_kernel_reports(chapter, kernel_info):
    """JupyterLab writes the kernel's ``language_info`` / ``kernelspec`` into the notebook
    when the kernel starts; anything different there marks the chapter modified on open."""
    language_info, display_name = kernel_info
    meta = json.loads((ROOT / "book" / f"{chapter}.ipynb").read_text())["metadata"]
    assert meta.get("kernelspec") == {"display_name": display_name, "language": "python",
                                      "name": "python3"}
    have = meta.get("language_info", {})
    # the Python version is the one the notebooks were last normalised with: a reader on
    # another Python sees the chapter modified once (JupyterLab records their version)
    want = {k: v for k, v in language_info.items() if k != "version"}
    assert {k: v for k, v in have.items() if k != "version"} == want, (
        f"{chapter}: language_info {have} lacks what the kernel reports ({language_info}); "
        f"fix all chapters with: {FIX.format(json.dumps(language_info))}")
    assert re.fullmatch(r"3\.\d+\.\d+", str(have.get("version", ""))), have


# ---------------------------------------------------------------------------
# a real JupyterLab
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lab():
    if not _has_jupyterlab():
        unavailable("jupyterlab / jupyterlab-myst is not installed")
    from jlab import Lab

    server = Lab()
    try:
        yield server
    finally:
        server.close()
        assert not server.leftover_pids(), "kernels left running"


# JavaScript run in the page (JupyterLab's app object is exposed by the server option
# --LabApp.expose_app_in_browser).
JS_STATE = """() => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  if (!w || !w.context || !w.context.isReady || !w.content || !w.content.model) return null;
  const s = w.sessionContext, k = s && s.session && s.session.kernel;
  const cells = [];
  for (const c of w.content.model.cells) {
    if (c.type !== 'code') continue;
    const outs = c.outputs.toJSON();
    cells.push({count: c.executionCount, source: c.sharedModel.getSource().slice(0, 80),
      errors: outs.filter(o => o.output_type === 'error').map(o => o.ename + ': ' + o.evalue),
      stderr: outs.filter(o => o.output_type === 'stream' && o.name === 'stderr'
                           && /Traceback|Error/.test([].concat(o.text).join('')))
                  .map(o => [].concat(o.text).join('').slice(0, 300))});
  }
  return {dirty: w.context.model.dirty, path: w.context.path,
          kernel: k ? k.status : null, busy: s ? s.kernelDisplayStatus : null,
          language: w.context.model.getMetadata('language_info'), cells};
}"""


def _wait_state(page, cond: str, timeout: float):
    """Poll JS_STATE until the JS expression ``cond`` (over ``s``) holds; return the state."""
    page.wait_for_function(f"() => {{ const s = ({JS_STATE})(); return s && ({cond}); }}",
                           timeout=timeout * 1000, polling=500)
    return page.evaluate(JS_STATE)


def _move_live_sliders(page, chapter: str) -> int:
    """Every live figure slider, moved by keyboard, must redraw its figure."""
    figures = page.locator(".pgviz-live")
    moved = 0
    for i in range(figures.count()):
        fig = figures.nth(i)
        image = fig.locator("img").first
        handles = fig.locator(".noUi-handle")
        assert handles.count() >= 1, f"{chapter}: live figure {i} has no slider"
        for j in range(handles.count()):
            h = handles.nth(j)
            if h.get_attribute("aria-disabled") == "true" or fig.locator(
                    ".widget-slider").nth(j).evaluate("e => e.classList.contains('mod-disabled')"):
                continue
            h.scroll_into_view_if_needed()
            before = image.get_attribute("src")
            now, top = (float(h.get_attribute("aria-valuenow") or 0),
                        float(h.get_attribute("aria-valuemax") or 0))
            h.focus()
            page.keyboard.press("ArrowLeft" if now >= top else "ArrowRight")
            # the picture is replaced on every redraw: look it up again in the figure's box
            page.wait_for_function(
                "([box, src]) => { const i = box.querySelector('img');"
                " return i && i.getAttribute('src') !== src; }",
                arg=[fig.element_handle(), before], timeout=60_000)
            # the new picture's alt names the value now shown, and the slider announces it
            readout = fig.locator(".widget-readout").nth(j)
            shown = (readout.input_value() if readout.evaluate("e => 'value' in e")
                     else readout.inner_text()).strip()
            page.wait_for_function("([h, t]) => h.getAttribute('aria-valuetext') === t",
                                   arg=[h.element_handle(), shown], timeout=10_000)
            alt = fig.locator("img").first.get_attribute("alt") or ""
            assert f"= {shown}" in alt, f"{chapter}: live figure {i}: alt {alt!r} does not say {shown!r}"
            moved += 1
    return moved


def _train_and_stop(page, lab):
    """Train redraws the curves; Stop ends the run with a resumable checkpoint."""
    panel = page.locator(".pgviz-dashboard")
    assert panel.count() == 1, "the training panel is not shown"
    panel.scroll_into_view_if_needed()
    curves = panel.locator("img.pgviz-dashboard-curves")
    assert curves.is_hidden()  # no empty (broken) image before the first run
    # a run long enough to be stopped: the epochs slider to its end, from the keyboard
    epochs = panel.locator(".widget-slider", has_text="epochs")
    epochs.locator(".noUi-handle").focus()
    page.keyboard.press("End")
    epochs.locator(".widget-readout", has_text="100").wait_for(timeout=30_000)
    panel.get_by_role("button", name="Train").click()
    seen = set()
    t_end = time.monotonic() + 120
    while len(seen) < 3 and time.monotonic() < t_end:  # the curves redraw as steps arrive
        src = curves.get_attribute("src") or ""
        if src.startswith("blob:") or src.startswith("data:"):
            seen.add(src)
        time.sleep(0.25)
    assert len(seen) >= 3, f"the curves were drawn {len(seen)} times in 120 s"
    page.get_by_role("button", name="Stop").click()
    status = panel.locator(".pgviz-dashboard-status")
    status.filter(has_text=re.compile("stopped|finished")).wait_for(timeout=120_000)
    text = status.inner_text()
    assert "saved in" in text, text
    from pgviz.train import load_checkpoint

    ckpts = sorted((lab.tmp / "runs" / "live").glob("*/checkpoint.pt"))
    assert ckpts, f"no checkpoint under {lab.tmp / 'runs' / 'live'} ({text})"
    ckpt = load_checkpoint(ckpts[-1])
    assert ckpt["step"] >= 1
    assert text.startswith("stopped") and ckpt["finished"] is False  # resumable (--resume)
    page.screenshot(path=str(ARTIFACTS / f"{TRAINING}-panel.png"), full_page=False)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_runs_in_jupyterlab(chapter, lab, browser, kernel_info):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    console = []
    # jupyterlab-myst reports unresolved references and bad glossaries as console errors
    page.on("console", lambda m: m.type in ("error", "warning")
            and console.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
    try:
        page.goto(lab.url(f"{chapter}.ipynb"), timeout=120_000)
        st = _wait_state(page, f"s.path === '{chapter}.ipynb' && s.kernel === 'idle'", 180)
        page.wait_for_timeout(1500)  # JupyterLab records the kernel's language_info now
        st = page.evaluate(JS_STATE)
        if (st["language"] or {}).get("version") == kernel_info[0].get("version"):
            assert not st["dirty"], f"{chapter} is marked modified on opening"
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
        # done: every code cell ran, or one failed (Run All stops there)
        st = _wait_state(page, "(s.cells.every(c => c.count !== null)"
                               " || s.cells.some(c => c.errors.length))"
                               " && s.kernel === 'idle' && s.busy === 'idle'", 420)
        source = (ROOT / "book" / f"{chapter}.ipynb").read_text()
        n_code = sum(c["cell_type"] == "code" for c in json.loads(source)["cells"])
        assert len(st["cells"]) == n_code  # text-only chapters (glossary) have none
        assert [c for c in st["cells"] if c["errors"] or c["stderr"]] == []
        assert [c["source"] for c in st["cells"] if c["count"] is None] == []
        page.wait_for_timeout(1000)  # widgets render after the last reply
        n = _move_live_sliders(page, chapter)
        if re.search(r"interactive\(|_slider\(", source):
            assert n >= 1, f"{chapter}: no live slider was found"
        page.screenshot(path=str(ARTIFACTS / f"{chapter}.png"), full_page=False)
        if chapter == TRAINING:
            _train_and_stop(page, lab)
        bad = sorted({ln.strip() for m in console for ln in m.splitlines() if BAD_CONSOLE.search(ln)})
        assert bad == [], f"{chapter}: console messages about references/glossary: {bad}"
        unsatisfied = sorted({ln.strip() for m in console for ln in m.splitlines() if UNSATISFIED.search(ln)})
        assert unsatisfied == [], (f"{chapter}: an extension wants another version of a package JupyterLab "
                                   f"shares (pin a pair that agrees in requirements.txt): {unsatisfied}")
    except Exception:
        try:
            page.screenshot(path=str(ARTIFACTS / f"{chapter}-failed.png"), full_page=False)
        except Exception:
            pass
        raise
    finally:
        context.close()
        lab.shutdown_kernels()


# chapters whose citations are read in JupyterLab (issue 14): the title page cites the most
CITING = ["01_introduction", "10_where_next"]


@pytest.mark.parametrize("chapter", CITING)
def test_citations_read_as_author_year_in_jupyterlab(chapter, lab, browser):
    """jupyterlab-myst reads no bibliography: a {cite} role shows as its raw key with a
    warning icon.  The chapters cite with author-year links (scripts/convert_citations.py):
    opened in JupyterLab, the rendered text names authors and years, links them to the
    references page and shows no bibliography key."""
    bib = (ROOT / "book" / "references.bib").read_text(encoding="utf-8")
    cells = json.loads((ROOT / "book" / f"{chapter}.ipynb").read_text(encoding="utf-8"))["cells"]
    source = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    keys = re.findall(r"@\w+\{([^,\s]+),", bib)
    assert len(keys) >= 10
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    try:
        page.goto(lab.url(f"{chapter}.ipynb"), timeout=120_000)
        # jupyterlab-myst renders a markdown cell into a ".myst" widget
        page.locator(".jp-MarkdownCell .myst").first.wait_for(timeout=120_000)
        # every markdown cell rendered: walk the notebook to its end (cells render lazily)
        shown = page.evaluate("""async () => {
          const w = window.jupyterapp.shell.currentWidget, nb = w.content;
          for (const cell of nb.widgets) {
            if (cell.model.type !== 'markdown') continue;
            cell.node.scrollIntoView();
            cell.rendered = true;
            await new Promise(r => setTimeout(r, 30));
          }
          await new Promise(r => setTimeout(r, 1500));
          return nb.widgets.filter(c => c.model.type === 'markdown').map(c => {
            const out = c.node.querySelector('.myst');
            return {text: out ? out.textContent : null,
                    links: out ? [...out.querySelectorAll('a')].map(a => [a.textContent,
                                  a.getAttribute('href') || '']) : []};
          });
        }""")
        assert all(c["text"] is not None for c in shown), "a markdown cell did not render"
        text = "\n".join(c["text"] for c in shown)
        raw = sorted(k for k in keys if k in text)
        assert raw == [], f"{chapter}: raw citation keys shown in JupyterLab: {raw}"
        cites = [(t, h) for c in shown for t, h in c["links"] if "references.md" in h]
        assert cites, f"{chapter}: no citation links to the references page"
        # each citation of the source is a link reading as author and year (or the year)
        wrote = [" ".join(m.group(1).split()) for m in re.finditer(
            r'\[([^\]]+)\]\(references\.md "cite:[a-z]+:[^"]+"\)', source)]
        shown = [" ".join(t.split()) for t, _ in cites if re.search(r"\b(19|20)\d\d[a-z]?\b", t)]
        assert wrote and shown == wrote, (wrote, shown)
        page.screenshot(path=str(ARTIFACTS / f"{chapter}-citations.png"), full_page=False)
    finally:
        context.close()
        lab.shutdown_kernels()
