"""The built book's collapsed blocks hold all their text, and no code block is empty.

A fence inside a ``{admonition}``/``{dropdown}`` that closes the outer fence early makes the
end of a solution print *after* its collapsed block, followed by an empty code block
(book/05's third solution once did).  tests/test_fences.py catches that in the sources;
this checks the result in ``_build/html``:

* for every collapsed block (an admonition with ``:class: dropdown``, or a ``{dropdown}``)
  in a chapter's Markdown, the last words of its body are inside the matching
  ``div.dropdown`` of the page, not after it;
* no page has a code block (``div.highlight pre``) with nothing in it.

Skips when the book has not been built (``python scripts/build_book.py``), like
tests/test_browser.py, and fails instead when ``PGVIZ_BROWSER_TEST`` is set (CI builds
the book first).  PGVIZ_BOOK_ROOT / PGVIZ_BOOK_HTML choose the build as there.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from test_fences import parse_fences

ROOT = Path(__file__).resolve().parent.parent
BOOK_ROOT = Path(os.environ.get("PGVIZ_BOOK_ROOT", ROOT))
HTML = Path(os.environ.get("PGVIZ_BOOK_HTML", BOOK_ROOT / "_build" / "html"))
SOURCES = sorted(p for p in (BOOK_ROOT / "book").glob("*") if p.suffix in (".ipynb", ".md"))


def _markdown(path: Path) -> list[str]:
    if path.suffix == ".md":
        return [path.read_text(encoding="utf-8")]
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return ["".join(c["source"]) if isinstance(c["source"], list) else c["source"]
            for c in cells if c["cell_type"] == "markdown"]


def collapsed_bodies(text: str) -> list[list[str]]:
    """Bodies (lines, options dropped) of the top-level collapsed blocks of a Markdown text."""
    out = []
    for b in parse_fences(text.splitlines()):
        name = b["info"].split("}")[0].lstrip("{")
        options = [ln for ln in b["body"] if ln.startswith(":") and not ln.startswith(":::")]
        dropdown = name == "dropdown" or any(re.match(r":class:.*\bdropdown\b", o) for o in options)
        if name and dropdown:
            out.append([ln for ln in b["body"] if ln not in options])
    return out


def last_words(body: list[str], n: int = 4) -> str | None:
    """The last run of ``n`` plain words (no math, code or markup) in a body."""
    for line in reversed(body):
        if FENCE_LINE.match(line) or not line.strip():
            continue
        plain = re.sub(r"\$[^$]*\$|`[^`]*`|\{[^}]*\}|\[[^\]]*\]\([^)]*\)", " | ", line)
        runs = re.findall(r"(?:[A-Za-z][A-Za-z'-]*[ ,;]+){%d,}[A-Za-z][A-Za-z'-]*" % (n - 1), plain)
        if runs:
            words = re.findall(r"[A-Za-z][A-Za-z'-]*", runs[-1])
            return " ".join(words[-n:])
    return None


FENCE_LINE = re.compile(r"^\s*(`{3,}|~{3,}|:{3,})")


def _words(text: str) -> str:
    return " ".join(re.findall(r"[A-Za-z][A-Za-z'-]*", text))


@pytest.mark.parametrize("source", SOURCES, ids=[p.name for p in SOURCES])
def test_collapsed_blocks_hold_their_text(source, soup_of):
    bodies = [b for text in _markdown(source) for b in collapsed_bodies(text)]
    if not bodies:
        pytest.skip(f"{source.name} has no collapsed block")
    page = HTML / "book" / f"{source.stem}.html"
    if not page.is_file():
        pytest.fail(f"{page} missing from the build")
    soup = soup_of(page)
    inside = [_words(d.get_text(" ")) for d in soup.select("div.dropdown, details")]
    assert len(inside) >= len(bodies), f"{page.name}: {len(bodies)} collapsed blocks in the source, " \
                                        f"{len(inside)} in the HTML"
    whole = _words(soup.get_text(" "))
    for body in bodies:
        words = last_words(body)
        assert words, f"{source.name}: a collapsed block without plain words at its end"
        assert words in whole, f"{page.name}: {words!r} not found on the page at all"
        assert any(words in d for d in inside), (
            f"{page.name}: the end of a collapsed block ({words!r}) is printed outside it: "
            "an inner fence closed the block early (see tests/test_fences.py)")


def test_no_empty_code_blocks(soup_of):
    empty = []
    for page in sorted(HTML.glob("book/*.html")):
        for pre in soup_of(page).select("div.highlight pre"):
            if not pre.get_text().strip():
                empty.append(page.name)
    assert not empty, f"empty code blocks in: {sorted(set(empty))}"


# ---------------------------------------------------------------------------
# the helpers themselves (run without a build)
# ---------------------------------------------------------------------------
def test_helpers_find_the_end_of_a_solution():
    text = ("Some text.\n\n````{admonition} Solutions\n:class: dropdown\n\n1. One.\n\n"
            "   ```python\n   x = 1\n   ```\n\n   (`x` is one because $x = 1$; one would rescale "
            "them first.)\n````\n\n```{note}\nnot collapsed\n```\n")
    bodies = collapsed_bodies(text)
    assert len(bodies) == 1 and not any(ln.startswith(":class:") for ln in bodies[0])
    assert last_words(bodies[0]) == "would rescale them first"
    assert collapsed_bodies("```{dropdown} Hint\nLook at the sign of the gradient.\n```\n") == \
        [["Look at the sign of the gradient."]]


# ---------------------------------------------------------------------------
# no machine path in any output (issue 14)
# ---------------------------------------------------------------------------
# a folder of the machine that built the book: /work/..., /root/..., /home/..., /tmp/...
MACHINE_PATH = re.compile(r"(?<![\w.:/-])/(?:work|root|home|tmp)/[\w.-]")
# embedded pictures (base64 may spell anything) are not text a reader sees
_EMBEDDED = re.compile(r"data:[\w/+.-]+;base64,[A-Za-z0-9+/=]+|\"image/png\": \"[^\"]*\"")


def machine_paths(text: str) -> list[str]:
    """Every machine folder named in ``text`` (with some context), pictures left out."""
    text = _EMBEDDED.sub("", text)
    return [text[max(0, m.start() - 40):m.end() + 40].replace("\n", " ")
            for m in MACHINE_PATH.finditer(text)]


def test_machine_path_finder():
    assert machine_paths("Dataset(source='/work/shared/data/x.npz', train=4)") != []
    assert machine_paths('<img src="data:image/png;base64,AAAA/work/BBBB">') == []
    assert machine_paths("see https://example.org/home/page or ../results/x") == []


def test_no_machine_path_in_the_built_book(soup_of):
    """A chapter's output once printed ``Dataset(source='/work/shared/...')``: every page
    and every downloadable notebook of the build must name no folder of the build machine."""
    files = [p for p in sorted(HTML.rglob("*")) if p.suffix in (".html", ".ipynb", ".txt")
             and ".doctrees" not in p.parts and p.is_file()]
    assert any(p.suffix == ".ipynb" for p in files), "no downloadable notebooks in the build"
    bad = {str(p.relative_to(HTML)): hits for p in files
           if (hits := machine_paths(p.read_text(encoding="utf-8", errors="replace")))}
    assert not bad, f"machine paths in the built book: {bad}"
