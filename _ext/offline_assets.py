"""Sphinx extension: the built book needs no network.

Jupyter Book 1.x pages load MathJax (and, on pages with ipywidgets state,
require.js and the widget html-manager) from CDNs, so a reader who opens the
built HTML offline sees raw ``\\(x^2\\)``.  This extension

* installs MathJax 3 from the npm registry at build time into the ignored
  folder ``.cache/npm`` (never committed), unless it is already there,
* stages the parts of MathJax that ``tex-chtml.js`` needs into
  ``.cache/offline_static/mathjax/`` and adds that folder to
  ``html_static_path`` (after Jupyter Book's own config processing, so its
  "add every .js under _static to every page" rule does not touch MathJax),
  so that ``mathjax_path: mathjax/tex-chtml.js`` in ``_config.yml`` resolves to
  ``_build/html/_static/mathjax/tex-chtml.js``,
* after the build, scans every HTML page and CSS file for resources loaded
  from the network (``<script src>``, stylesheets, fonts, images, iframes,
  CSS ``url()`` / ``@import``) and reports each one as a Sphinx warning, which
  fails ``jupyter-book build -W``.

Environment:
  PGVIZ_MATHJAX_DIR   use this MathJax ``es5`` folder instead of installing one.
  PGVIZ_NPM           npm executable (default: ``npm``).

The module has no Sphinx import at top level, so ``scripts/build_book.py`` and
the tests can reuse :func:`ensure_mathjax` and :func:`find_external_resources`.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

MATHJAX_SPEC = "mathjax@3"  # npm package spec: any 3.x (tex-chtml.js layout)
# Parts of MathJax's es5 folder that tex-chtml.js loads (directly or on
# demand: TeX extensions through autoload, CHTML fonts, the context menu and
# its accessibility tools).  The other combined bundles are not needed.
MATHJAX_PARTS = ("tex-chtml.js", "input", "output/chtml", "ui", "a11y", "sre")

ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------
# MathJax install (npm) and staging
# --------------------------------------------------------------------------
def npm_prefix(root: Path = ROOT) -> Path:
    return Path(root) / ".cache" / "npm"


def mathjax_source(root: Path = ROOT) -> Path:
    """The MathJax ``es5`` folder to serve (installed or given by env)."""
    env = os.environ.get("PGVIZ_MATHJAX_DIR")
    if env:
        return Path(env)
    return npm_prefix(root) / "node_modules" / "mathjax" / "es5"


def mathjax_version(es5: Path) -> str | None:
    try:
        return json.loads((es5.parent / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


def install_mathjax(root: Path = ROOT, *, quiet: bool = False) -> Path:
    """``npm install mathjax@3`` into ``<root>/.cache/npm`` and return es5/."""
    npm = os.environ.get("PGVIZ_NPM", "npm")
    if shutil.which(npm) is None:
        raise RuntimeError(
            f"MathJax is not installed and `{npm}` was not found. Install Node's npm "
            "(Debian: apt-get install -y npm) or point PGVIZ_MATHJAX_DIR at a MathJax 3 "
            "es5 folder."
        )
    prefix = npm_prefix(root)
    prefix.mkdir(parents=True, exist_ok=True)
    cmd = [npm, "install", "--prefix", str(prefix), "--no-save", "--no-package-lock",
           "--no-audit", "--no-fund", "--loglevel=error", MATHJAX_SPEC]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{res.stdout}\n{res.stderr}")
    es5 = mathjax_source(root)
    if not (es5 / "tex-chtml.js").is_file():
        raise RuntimeError(f"npm installed MathJax but {es5}/tex-chtml.js is missing")
    if not quiet:
        print(f"[offline_assets] installed MathJax {mathjax_version(es5)} into {prefix}")
    return es5


def ensure_mathjax(root: Path = ROOT, *, quiet: bool = False) -> Path:
    """Return the MathJax es5 folder, installing it from npm if needed."""
    es5 = mathjax_source(root)
    if (es5 / "tex-chtml.js").is_file():
        return es5
    if os.environ.get("PGVIZ_MATHJAX_DIR"):
        raise RuntimeError(f"PGVIZ_MATHJAX_DIR={es5} has no tex-chtml.js")
    return install_mathjax(root, quiet=quiet)


def stage_mathjax(root: Path = ROOT, *, quiet: bool = False) -> Path:
    """Copy the needed MathJax parts to ``.cache/offline_static/mathjax``.

    Returns the folder to add to ``html_static_path`` (its ``mathjax/``
    subfolder becomes ``_static/mathjax/``).
    """
    es5 = ensure_mathjax(root, quiet=quiet)
    static = Path(root) / ".cache" / "offline_static"
    dest = static / "mathjax"
    stamp = dest / ".source"
    key = f"{es5.resolve()} {mathjax_version(es5)}"
    if stamp.is_file() and stamp.read_text() == key:
        return static
    # copy into a private folder, then swap it in (several builds may share .cache)
    tmp = static / f".mathjax.{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    for part in MATHJAX_PARTS:
        src, dst = es5 / part, tmp / part
        if src.is_dir():
            shutil.copytree(src, dst)
        elif src.is_file():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
            raise RuntimeError(f"MathJax folder {es5} lacks {part}")
    (tmp / ".source").write_text(key)
    if dest.exists():
        shutil.rmtree(dest, ignore_errors=True)
    try:
        tmp.rename(dest)
    except OSError:  # another build swapped its copy in first
        shutil.rmtree(tmp, ignore_errors=True)
        if not (stamp.is_file() and stamp.read_text() == key):
            raise
    return static


# --------------------------------------------------------------------------
# Scan built HTML for network resources
# --------------------------------------------------------------------------
_REMOTE = re.compile(r"^\s*(https?:)?//", re.I)
_CSS_URL = re.compile(r"""(?:url\(\s*['"]?|@import\s+['"])\s*((?:https?:)?//[^'")\s]+)""", re.I)
# rel values of <link> that make the browser fetch the href
_FETCHING_RELS = {"stylesheet", "preload", "prefetch", "modulepreload", "icon",
                  "shortcut", "apple-touch-icon", "manifest", "import"}


class _ResourceParser(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = {k.lower(): (v or "") for k, v in attrs}
        urls = []
        if tag in ("script", "img", "iframe", "embed", "source", "audio", "video", "track", "input"):
            urls.append(a.get("src", ""))
        if tag in ("img", "source"):
            urls += [u.strip().split(" ")[0] for u in a.get("srcset", "").split(",")]
        if tag == "link":
            rels = set(a.get("rel", "").lower().split())
            if rels & _FETCHING_RELS:
                urls.append(a.get("href", ""))
        if tag == "object":
            urls.append(a.get("data", ""))
        if tag == "video":
            urls.append(a.get("poster", ""))
        for url in urls:
            if url and _REMOTE.match(url):
                self.found.append(f"<{tag}> {url}")
        style = a.get("style", "")
        for m in _CSS_URL.finditer(style):
            self.found.append(f"<{tag} style> {m.group(1)}")


def find_external_resources(outdir) -> dict[str, list[str]]:
    """Map relative path -> network resources that file would load.

    Looks at every ``*.html`` (tags above, inline ``<style>`` too) and every
    ``*.css`` (``url()``/``@import``).  Plain ``<a href>`` links are fine.
    """
    outdir = Path(outdir)
    result: dict[str, list[str]] = {}
    for path in sorted(outdir.rglob("*")):
        if path.suffix not in (".html", ".css") or not path.is_file():
            continue
        if "_sources" in path.relative_to(outdir).parts:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        hits: list[str] = []
        if path.suffix == ".html":
            p = _ResourceParser()
            p.feed(text)
            hits += p.found
            for block in re.findall(r"<style[^>]*>(.*?)</style>", text, re.S | re.I):
                hits += [f"<style> {u}" for u in _CSS_URL.findall(block)]
        else:
            hits += [f"css {u}" for u in _CSS_URL.findall(text)]
        if hits:
            result[path.relative_to(outdir).as_posix()] = sorted(set(hits))
    return result


# --------------------------------------------------------------------------
# Sphinx hooks
# --------------------------------------------------------------------------
def _config_inited(app, config):
    from sphinx.errors import ExtensionError
    from sphinx.util import logging

    # pydata-sphinx-theme logs "Got invalid theme mode: ." to the console on a
    # reader's first visit unless a default colour mode is given.
    if "default_mode" not in config.html_context:
        config.html_context = {**config.html_context, "default_mode": "auto"}
    path = config.mathjax_path or ""
    if _REMOTE.match(path):
        logging.getLogger(__name__).warning(
            "offline_assets: mathjax_path=%r loads MathJax from the network; set "
            "`mathjax_path: mathjax/tex-chtml.js` under sphinx: config: in _config.yml", path)
        return
    if not path.startswith("mathjax/"):
        return
    try:
        static = stage_mathjax(Path(app.srcdir))
    except RuntimeError as exc:
        raise ExtensionError(f"offline_assets: {exc}") from exc
    static_paths = list(config.html_static_path)
    if str(static) not in static_paths:
        static_paths.append(str(static))
    config.html_static_path = static_paths


def _build_finished(app, exc):
    if exc is not None or app.builder.format != "html":
        return
    from sphinx.util import logging

    logger = logging.getLogger(__name__)
    for rel, hits in find_external_resources(app.outdir).items():
        for hit in hits:
            logger.warning("offline_assets: %s loads %s from the network", rel, hit)


# sphinx-book-theme's download button links to _sources/<chapter>.ipynb with
# target=_blank, which shows the JSON instead of saving it; make it a download.
_DOWNLOAD_JS = """
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("a.btn-download-source-button, a.btn-download-notebook-button")
    .forEach(function (a) {
      var href = a.getAttribute("href") || "";
      if (!/\\.ipynb$/.test(href)) return;
      a.setAttribute("download", href.split("/").pop());
      a.removeAttribute("target");
      a.setAttribute("title", "Download this chapter as a notebook (.ipynb)");
    });
});
"""


def _page_context(app, pagename, templatename, context, doctree):
    """Drop duplicate scripts (sphinx-thebe registers its inline
    ``const THEBE_JS_URL = ...`` twice, a SyntaxError on every page)."""
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for js in scripts:
        # (the same inline script arrives once with filename None, once with "")
        key = (os.fspath(getattr(js, "filename", None) or "") if hasattr(js, "filename") else str(js),
               tuple(sorted((getattr(js, "attributes", None) or {}).items())))
        if key in seen:
            continue
        seen.add(key)
        unique.append(js)
    scripts[:] = unique  # in place: later handlers still append to this list


def setup(app):
    # after sphinx.ext.mathjax has registered mathjax_path
    app.setup_extension("sphinx.ext.mathjax")
    app.connect("config-inited", _config_inited, priority=900)
    app.connect("build-finished", _build_finished)
    # early: a handler that returns a template name stops later ones
    app.connect("html-page-context", _page_context, priority=100)
    app.add_js_file(None, body=_DOWNLOAD_JS)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
