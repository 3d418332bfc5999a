"""The book as a citable text (issues 8 and 10): credit, citations, glossary, references.

Reads the chapter sources (markdown cells of ``book/*.ipynb`` and ``book/*.md``),
``book/references.bib`` and ``README.md``; the last tests also read the built HTML
and skip when the book has not been built.

* the title page names the article, its author and its address, and cites it;
* every ``{cite}`` key is in the bibliography; every source of the bibliography is
  cited somewhere in the book; no two entries share an author-year label;
* accuracies of the article's experiments are credited to its companion notebook,
  never to "the article reports";
* glossary and term references work in the HTML book *and* in JupyterLab
  (jupyterlab-myst renders ``{glossary}`` as an error and ``{term}`` as a dead link):
  so no ``{glossary}``/``{term}``, and every ``file#anchor`` link points at a heading
  that exists (the slug that ``myst_heading_anchors`` gives it);
* ``{eq}`` only for labels of the same chapter (a cross-chapter ``{eq}`` is unresolved
  in JupyterLab); across chapters, a Markdown link whose title names the label;
* no ``({eq}`...`)``: the equation number already has brackets, so that prints ``((5))``.
"""
from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
BIB = BOOK / "references.bib"
HTML = ROOT / "_build" / "html"
ARTICLE_URL = "https://douglasorr.github.io/2021-10-training-objectives/5-policy/article.html"


# ---------------------------------------------------------------------------
# reading the sources
# ---------------------------------------------------------------------------
def chapters() -> list[Path]:
    return sorted(p for p in BOOK.iterdir()
                  if p.suffix in (".ipynb", ".md") and p.is_file())


def markdown_cells(path: Path) -> list[str]:
    """The Markdown text of a chapter: its markdown cells, or the whole ``.md`` file."""
    if path.suffix == ".md":
        return [path.read_text(encoding="utf-8")]
    nb = json.loads(path.read_text(encoding="utf-8"))
    out = []
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            src = cell["source"]
            out.append("".join(src) if isinstance(src, list) else src)
    return out


def markdown(path: Path) -> str:
    return "\n\n".join(markdown_cells(path))


FENCE = re.compile(r"^\s*(`{3,}|~{3,}|:{3,})(.*)$")


def headings(text: str) -> list[str]:
    """ATX headings outside fenced blocks (code blocks and ```{directive} blocks)."""
    out, stack = [], []
    for line in text.splitlines():
        m = FENCE.match(line)
        if m:
            mark, info = m.group(1), m.group(2).strip()
            top = stack[-1] if stack else None
            if top and not info and mark[0] == top[0] and len(mark) >= len(top):
                stack.pop()
            else:
                stack.append(mark)
            continue
        if not stack:
            h = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
            if h:
                out.append(h.group(1))
    return out


def slug(title: str) -> str:
    """The anchor myst-parser gives a heading (its default slug function)."""
    text = re.sub(r"[*_`$]", "", title)          # emphasis/code/math markers
    return re.sub(r"[^\w\- ]", "", text.strip().lower().replace(" ", "-"))


def anchors(path: Path) -> set[str]:
    return {slug(h) for h in headings(markdown(path))}


def eq_labels(path: Path) -> list[str]:
    return re.findall(r"^:label:\s*(\S+)", markdown(path), flags=re.M)


LINK = re.compile(r'\[(?P<text>[^\]]+)\]\((?P<target>[^)\s"]+)(?:\s+"(?P<title>[^"]*)")?\)')
CITE = re.compile(r"\{cite(?::[a-z]+)?\}`([^`]+)`")
EQ = re.compile(r"\{eq\}`([^`]+)`")


def bib_entries() -> dict[str, dict[str, str]]:
    text = BIB.read_text(encoding="utf-8")
    entries = {}
    for m in re.finditer(r"@\w+\{([^,]+),(.*?)\n\}", text, flags=re.S):
        fields = dict((k.lower(), v.strip()) for k, v in
                      re.findall(r"(\w+)\s*=\s*\{(.*?)\},?\s*$", m.group(2), flags=re.M))
        entries[m.group(1).strip()] = fields
    return entries


CHAPTERS = chapters()
IDS = [p.name for p in CHAPTERS]


# ---------------------------------------------------------------------------
# credit
# ---------------------------------------------------------------------------
def test_title_page_credits_the_article():
    first = markdown_cells(BOOK / "01_introduction.ipynb")[0]
    for needed in ("Policy Gradient Estimation", "Douglas Orr", ARTICLE_URL,
                   "{cite}`orr2021policy`", "orr2021notebook", "reinforcement learning"):
        assert needed in first, f"the title page does not contain {needed!r}"
    assert re.search(r"\]\(" + re.escape(ARTICLE_URL) + r"\)", first), \
        "the title page does not link the article"


def test_readme_credits_the_article():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for needed in ("Douglas Orr", ARTICLE_URL, "training_objectives.ipynb"):
        assert needed in readme, f"README.md does not mention {needed!r}"


@pytest.mark.parametrize("path", [*CHAPTERS, ROOT / "README.md"],
                         ids=[*IDS, "README.md"])
def test_accuracies_are_credited_to_the_notebook(path):
    """55.2 % / 64.4 % are printed by the companion notebook, not the article."""
    text = markdown(path) if path.parent == BOOK else path.read_text(encoding="utf-8")
    assert not re.search(r"article\W+reports", text, flags=re.I), \
        f"{path.name}: says 'the article reports'; its accuracies come from its notebook"
    # The paragraph that first quotes the article's accuracies credits the notebook.
    first = next((p for p in re.split(r"\n\s*\n", text)
                  if re.search(r"\b(55\.2|64\.4)\s*%", p)), None)
    if first is not None:
        assert "notebook" in first.lower(), \
            f"{path.name}: the first paragraph quoting 55.2 %/64.4 % does not name the notebook:\n{first}"


# ---------------------------------------------------------------------------
# bibliography
# ---------------------------------------------------------------------------
def cited_keys() -> dict[str, set[str]]:
    keys: dict[str, set[str]] = defaultdict(set)
    for path in CHAPTERS:
        for group in CITE.findall(markdown(path)):
            for key in group.split(","):
                keys[key.strip()].add(path.name)
    return keys


def test_every_cited_key_is_in_the_bibliography():
    missing = {k: sorted(v) for k, v in cited_keys().items() if k not in bib_entries()}
    assert not missing, f"cited but not in book/references.bib: {missing}"


def test_every_source_is_cited_in_a_chapter():
    used = {k for k, where in cited_keys().items() if where - {"references.md"}}
    unused = sorted(set(bib_entries()) - used)
    assert not unused, f"references.bib entries no chapter cites: {unused}"


def test_author_year_labels_are_distinct():
    """Author-year citations must tell the entries apart ("Orr, 2021a" / "2021b")."""
    seen: dict[tuple[str, str], list[str]] = defaultdict(list)
    for key, f in bib_entries().items():
        surname = f["author"].split(" and ")[0].split(",")[0].strip("{} ")
        seen[(surname, f["year"])].append(key)
    clashes = {f"{a} {y}": ks for (a, y), ks in seen.items() if len(ks) > 1}
    assert not clashes, f"entries with the same author-year label: {clashes}"


def test_bibliography_parses_and_has_the_primary_sources():
    entries = bib_entries()
    for key in ("orr2021policy", "orr2021notebook", "williams1992simple",
                "sutton2000policy", "greensmith2004variance", "williams1991function",
                "mnih2016asynchronous", "weng2018policy", "sutton2018reinforcement",
                "brockman2016gym", "krizhevsky2009learning"):
        assert key in entries, key
        assert entries[key].get("title") and entries[key].get("year"), key


# ---------------------------------------------------------------------------
# glossary and links that work in JupyterLab too
# ---------------------------------------------------------------------------
GLOSSARY_TERMS = ("action", "reward", "policy", "expectation", "network", "logit",
                  "score-function", "baseline", "advantage", "entropy",
                  "surrogate-loss", "contextual-bandit", "on-policy",
                  "reinforcement-learning", "notation")


def test_glossary_has_the_terms_and_notation():
    have = anchors(BOOK / "glossary.ipynb")
    missing = [t for t in GLOSSARY_TERMS if t not in have]
    assert not missing, f"book/glossary.ipynb has no heading for {missing}"
    text = markdown(BOOK / "glossary.ipynb")
    assert r"| $\theta$ |" in text, "the notation table must explain theta"


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_no_glossary_directive_or_term_role(path):
    text = markdown(path)
    assert "{glossary}" not in text and "{term}" not in text, \
        f"{path.name}: {{glossary}}/{{term}} break in JupyterLab; use glossary.ipynb#term links"


def test_chapters_link_the_glossary():
    linking = [p.name for p in CHAPTERS if "glossary.ipynb#" in markdown(p)]
    assert len(linking) >= 6, f"only {linking} link terms to the glossary"


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_no_doc_role(path):
    """jupyterlab-myst renders {doc}`x` as a link to the file "x" (no suffix: not found)
    and {doc}`text <x>` as "text <x>"; a Markdown link [text](x.ipynb) works in both."""
    hits = re.findall(r"\{doc\}`[^`]*`", markdown(path))
    assert not hits, f"{path.name}: {hits}; use [Title](chapter.ipynb)"


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_internal_links_resolve(path):
    """Every link to a book file exists, and its #anchor is a heading there."""
    bad = []
    for m in LINK.finditer(markdown(path)):
        target = m.group("target")
        if re.match(r"[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        dest = BOOK / file if file else path
        if not dest.is_file():
            bad.append(f"{target}: no such file")
        elif anchor and anchor not in anchors(dest):
            bad.append(f"{target}: no heading with anchor #{anchor} in {dest.name}")
    assert not bad, f"{path.name}: " + "; ".join(bad)


# ---------------------------------------------------------------------------
# equation references
# ---------------------------------------------------------------------------
def all_labels() -> dict[str, str]:
    where = {}
    for p in CHAPTERS:
        for label in eq_labels(p):
            assert label not in where, f"{label} defined in {where[label]} and {p.name}"
            where[label] = p.name
    return where


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_eq_refs_stay_within_the_chapter(path):
    own = set(eq_labels(path))
    where = all_labels()
    wrong = [f"{lab} (defined in {where.get(lab, 'no chapter')})"
             for lab in EQ.findall(markdown(path)) if lab not in own]
    assert not wrong, (f"{path.name} uses {{eq}} for labels of other chapters, unresolved "
                       f"in JupyterLab; link the chapter instead: {wrong}")


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_cross_chapter_equation_links(path):
    """A link titled "eq:label" points at the chapter that defines that label, and
    prints no equation number (Sphinx numbers equations through the whole book,
    JupyterLab per notebook: a number would be wrong in one of them)."""
    where = all_labels()
    text = markdown(path)
    for m in LINK.finditer(text):
        title = m.group("title") or ""
        if not title.startswith("eq:"):
            continue
        file = m.group("target").partition("#")[0]
        assert where.get(title) == file, \
            f"{path.name}: link to {file} titled {title}, but {title} is in {where.get(title)}"
        before = text[max(0, m.start() - 30):m.start()] + m.group("text")
        assert not re.search(r"\(\d+(\.\d+)?\)", before), \
            f"{path.name}: cross-chapter link {m.group(0)!r} quotes an equation number"


def test_there_are_cross_chapter_equation_links():
    n = sum(1 for p in CHAPTERS for m in LINK.finditer(markdown(p))
            if (m.group("title") or "").startswith("eq:"))
    assert n >= 12, n


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_no_bracketed_eq_role(path):
    hits = re.findall(r"\(\s*\{eq\}`[^`]+`\s*\)", markdown(path))
    assert not hits, f"{path.name}: {hits} render as doubled brackets '((n))'"


# ---------------------------------------------------------------------------
# teaching: every chapter opens with its aims and ends with a summary
# ---------------------------------------------------------------------------
NOTEBOOKS = [p for p in CHAPTERS if p.suffix == ".ipynb"]
AIMS = re.compile(r"\A# [^\n]+\n\n\*\*In this chapter\*\*\n\n((?:\* [^\n]*\n(?:  [^\n]*\n)*)+)")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_chapter_opens_with_aims_and_ends_with_a_summary(path):
    """Right after the title, "**In this chapter**" and a list of at least two aims; the
    last section is "## Summary", and where the chapter labels equations the summary
    refers to at least one of them by {eq}."""
    text = markdown(path)
    m = AIMS.match(markdown_cells(path)[0].strip() + "\n")
    assert m, f"{path.name}: the title is not followed by '**In this chapter**' and a list"
    assert len(re.findall(r"^\* ", m.group(1), flags=re.M)) >= 2, \
        f"{path.name}: the aims list has fewer than two items"
    top = [h for h in headings(text) if not h.startswith("#")]
    sections = re.findall(r"^## (.+?)\s*$", text, flags=re.M)
    sections = [h for h in sections if h in top]
    assert sections and sections[-1] == "Summary", \
        f"{path.name}: the last section is {sections[-1:]!r}, not 'Summary'"
    summary = text[text.rindex("\n## Summary"):]
    own = set(eq_labels(path))
    if own:
        used = set(EQ.findall(summary))
        assert used & own, f"{path.name}: the Summary refers to none of {sorted(own)} by {{eq}}"


# ---------------------------------------------------------------------------
# the built book (skipped when it has not been built)
# ---------------------------------------------------------------------------
def built(name: str) -> str:
    page = HTML / "book" / name
    if not page.is_file():
        pytest.skip(f"{page} not built (python scripts/build_book.py)")
    return page.read_text(encoding="utf-8")


def visible_text(html: str) -> str:
    """The page's text, cell outputs included (scripts and styles dropped)."""
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"<[^>]+>", "", html)


def test_built_title_page_links_the_article():
    html = built("01_introduction.html")
    assert f'href="{ARTICLE_URL}"' in html
    assert "Policy Gradient Estimation" in html


@pytest.mark.parametrize("name", ["appendix_derivation.html", "04_regularisation.html",
                                  "07_averaging_over_time.html", "08_training_cifar10.html"])
def test_built_pages_have_no_doubled_brackets(name):
    text = visible_text(built(name))
    assert not re.search(r"\(\(\d+\)\)", text), re.findall(r".{40}\(\(\d+\)\).{10}", text)


def test_built_glossary_links_resolve():
    html = built("02_policy_gradient.html")
    assert 'href="glossary.html#policy"' in html
    gl = built("glossary.html")
    for term in GLOSSARY_TERMS:
        assert f'id="{term}"' in gl, term


# ---------------------------------------------------------------------------
# chapter 8's printed results
# ---------------------------------------------------------------------------
def test_comparison_table_cells_do_not_wrap():
    """"74.3 ± 1.2 %" wrapped to "74.3 ± 1.2 / %" in a narrow page."""
    from pgviz import figures

    row = {"setting": "xent", "objective": "xent", "entropy_weight": 0.0, "seeds": 3,
           "epochs": 40, "test_acc_mean": 0.743, "test_acc_std": 0.012,
           "test_acc_min": 0.732, "test_acc_max": 0.755, "wall_time_mean": 171.0}
    html = figures.comparison_table([row])._repr_html_()
    assert "74.3 ± 1.2 %" in html
    cells = re.findall(r"<td ([^>]*)>", html)
    assert cells and all("white-space:nowrap" in c for c in cells), cells


def test_objectives_plot_legend_outside_the_curves():
    """plot_runs names the reference lines in the legend (no text drawn over the
    curves) and can leave the legend to the figure."""
    import matplotlib
    matplotlib.use("Agg")
    from pgviz import figures

    runs = {"pg": [{"epochs": [{"step": s, "time": s, "test_acc": a}
                               for s, a in ((0, 0.1), (10, 0.5))]}]}
    ax = figures.plot_runs(runs, reference={"notebook": 0.552}, legend=None)
    assert ax.get_legend() is None and not ax.texts
    labels = ax.get_legend_handles_labels()[1]
    assert labels == ["pg (1 seeds)", "notebook"]
    ax = figures.plot_runs(runs, reference={"notebook": 0.552})
    assert [t.get_text() for t in ax.get_legend().get_texts()] == labels


def test_built_chapter8_prints_no_nan_and_true_counts():
    text = visible_text(built("08_training_cifar10.html"))
    assert not re.search(r"\bnan\b", text), re.findall(r".{60}\bnan\b", text)
    m = re.search(r"device \w+: (\d+) training and (\d+) test images", text)
    assert m, "chapter 8 no longer prints its image counts"
    if m.group(1) == "4068":  # the offline subset: the text must say 4,068, not 4,096
        assert "4,068 training images" in text


def test_ch02_policy_chart_shows_small_probabilities():
    """The six labels the article leaves at zero get 0.0033 each: the chart's bar
    labels must not print that as "0.00"."""
    import matplotlib
    matplotlib.use("Agg")
    import torch
    from pgviz import figures, sims
    from pgviz.data import CIFAR10_CLASSES

    code = "\n".join("".join(c["source"]) for c in json.loads(
        (BOOK / "02_policy_gradient.ipynb").read_text(encoding="utf-8"))["cells"]
        if c["cell_type"] == "code")
    m = re.search(r'title="Policy \$\\\\pi\$",\s*ylim=\(0, 1\), fmt="([^"]+)"', code)
    assert m, "chapter 2 no longer draws the policy chart this test reads"
    pi = torch.softmax(sims.article_policy(), -1)
    ax = figures.bar_chart(pi, CIFAR10_CLASSES, fmt=m.group(1))
    labels = [t.get_text() for t in ax.texts]
    assert "0.0033" in labels and "0.00" not in labels, labels
