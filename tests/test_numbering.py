"""Numbered chapters in the built book (issue 14).

The text says "chapter 3" and the files are ``book/03_*.ipynb``: the book must show the
same numbers.  ``_toc.yml`` numbers the chapters (a cover page is the root, since Sphinx
never numbers the root document) and leaves the back matter unnumbered; ``_config.yml``
numbers equations per chapter; ``_ext/numbering.py`` gives cross-chapter equation links
the number of the equation they point at.  Checked in ``_build/html``:

* every chapter's title shows its number ("4. Policy regularisation"), in the page and in
  the sidebar; the cover, appendix, glossary and references show none;
* a chapter's equations are numbered (N.1), (N.2), ... in order (they restart per chapter);
* every link whose text says "chapter N" points at the page numbered N;
* every cross-chapter equation link (a Markdown link titled ``eq:<label>``) shows the
  number that equation has on its own page.

Skips when the book has not been built (``python scripts/build_book.py``), and fails
instead when ``PGVIZ_BROWSER_TEST`` is set (CI builds the book first).
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from booktoc import toc_files

ROOT = Path(__file__).resolve().parent.parent
BOOK_ROOT = Path(os.environ.get("PGVIZ_BOOK_ROOT", ROOT))
HTML = Path(os.environ.get("PGVIZ_BOOK_HTML", BOOK_ROOT / "_build" / "html"))
DOCS = [re.sub(r"\.(ipynb|md)$", "", f) for f in toc_files(BOOK_ROOT / "_toc.yml")]


def chapter_number(doc: str) -> int | None:
    """The number a page must show: ``book/04_regularisation`` -> 4; back matter -> None."""
    m = re.match(r"book/(\d\d)_", doc)
    return int(m.group(1)) if m else None


CHAPTERS = [d for d in DOCS if chapter_number(d)]
UNNUMBERED = [d for d in DOCS if not chapter_number(d)]


def test_toc_numbers_chapters_1_to_10_and_not_the_back_matter():
    """No build needed: the numbers Sphinx gives are the toc's order (root excluded)."""
    assert [chapter_number(d) for d in CHAPTERS] == list(range(1, len(CHAPTERS) + 1))
    assert len(CHAPTERS) >= 10
    assert {"book/appendix_derivation", "book/glossary", "book/references"} <= set(UNNUMBERED)
    import yaml

    toc = yaml.safe_load((BOOK_ROOT / "_toc.yml").read_text())
    assert chapter_number(toc["root"]) is None, "Sphinx does not number the root document"
    for part in toc["parts"]:
        files = [c["file"] for c in part["chapters"]]
        numbered = bool(part.get("numbered"))
        assert all(bool(chapter_number(f)) == numbered for f in files), part


def _title_number(soup) -> str | None:
    h1 = soup.select_one("section > h1")  # the page's title (the header repeats it bare)
    num = h1.select_one(".section-number") if h1 else None
    return num.get_text().strip() if num else None


@pytest.mark.parametrize("doc", DOCS)
def test_page_title_shows_the_chapter_number(doc, soup_of):
    n = chapter_number(doc)
    assert _title_number(soup_of(doc)) == (f"{n}." if n else None)


def test_sidebar_numbers_the_chapters(soup_of):
    soup = soup_of(DOCS[0])  # the cover: every chapter is a link there
    nav = soup.select_one("nav.bd-docs-nav, .bd-sidenav, nav#bd-docs-nav") or soup
    for doc in DOCS[1:]:
        name = Path(doc).name + ".html"
        links = [a for a in nav.select("a.reference.internal") if a.get("href", "").split("#")[0]
                 .endswith(name)]
        assert links, f"{name} is not in the sidebar"
        text = " ".join(links[0].get_text().split())
        n = chapter_number(doc)
        if n:
            assert text.startswith(f"{n}. "), f"sidebar entry {text!r} for {name}"
        else:
            assert not re.match(r"\d", text), f"back matter numbered in the sidebar: {text!r}"


def equation_numbers(soup) -> dict[str, str]:
    """id of each numbered display equation -> its number as shown, e.g. ``"(4.1)"``."""
    out = {}
    for div in soup.select("div.math[id]"):
        eqno = div.select_one(".eqno")
        if eqno:
            for link in eqno.select("a.headerlink"):
                link.decompose()
            out[div["id"]] = eqno.get_text().strip()
    return out


@pytest.mark.parametrize("doc", CHAPTERS)
def test_equations_restart_in_each_chapter(doc, soup_of):
    n = chapter_number(doc)
    shown = list(equation_numbers(soup_of(doc)).values())
    assert shown == [f"({n}.{k})" for k in range(1, len(shown) + 1)], shown


def test_some_chapters_number_equations(soup_of):
    assert sum(bool(equation_numbers(soup_of(d))) for d in CHAPTERS) >= 5


CHAPTER_LINK = re.compile(r"\bchapter (\d+)\b", re.I)


@pytest.mark.parametrize("doc", DOCS)
def test_chapter_links_point_at_the_chapter_of_that_number(doc, soup_of):
    soup = soup_of(doc)
    main = soup.select_one("main") or soup
    bad, seen = [], 0
    for a in main.select("a[href]"):
        m = CHAPTER_LINK.search(a.get_text(" "))
        href = a["href"].split("#")[0]
        if not m or not href.endswith(".html") or "://" in href:
            continue
        seen += 1
        target = chapter_number("book/" + Path(href).name)
        if target != int(m.group(1)):
            bad.append(f"{a.get_text(' ').strip()!r} -> {href} (chapter {target})")
    assert not bad, f"{doc}: links that name another chapter than they open: {bad}"


def _markdown(doc: str) -> str:
    path = BOOK_ROOT / f"{doc}.ipynb"
    if not path.is_file():
        return ""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


EQ_LINK = re.compile(r'\[(?P<text>[^\]]+)\]\((?P<target>[^)\s"]+)\s+"(?P<title>eq:[^"]*)"\)')


def _equation_id(label: str) -> str:
    from docutils.nodes import make_id

    return make_id(f"equation-{label}")


def test_cross_chapter_equation_links_show_the_number(soup_of):
    links = [(doc, m) for doc in DOCS for m in EQ_LINK.finditer(_markdown(doc))]
    assert len(links) >= 12, len(links)
    bad = []
    for doc, m in links:
        file, _, _ = m.group("target").partition("#")
        target_doc = "book/" + Path(file).stem
        number = equation_numbers(soup_of(target_doc)).get(_equation_id(m.group("title")))
        assert number, f"{target_doc} has no numbered equation {m.group('title')}"
        text = " ".join(m.group("text").split())
        flat = lambda a: " ".join(a.get_text(" ").split()).replace("\u2019", "'")  # noqa: E731
        found = [flat(a) for a in soup_of(doc).select("a[href]")
                 if a["href"].split("#")[0] == Path(file).stem + ".html" and flat(a).startswith(text)]
        if not any(f.endswith(number) for f in found):
            bad.append(f"{doc}: [{text}] should end with {number}, shows {found}")
    assert not bad, "\n".join(bad)
