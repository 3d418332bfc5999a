"""scripts/check_numbers.py: the build fails when prose and outputs disagree (issue 14).

A small book is planted in a temporary folder (a table of contents, a chapter's source and
its executed copy); the check passes when every measured-looking number of the prose is
printed by an output, and fails, naming the number, when one is not -- also through
``scripts/build_book.py``, whose exit status is then 4.  The last test runs the check on
the real build (skipped when the book has not been built).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from helpers import load_file

ROOT = Path(__file__).resolve().parents[1]
REQUIRED = os.environ.get("PGVIZ_BROWSER_TEST", "") not in ("", "0")


@pytest.fixture(scope="module")
def cn():
    import importlib
    import sys

    sys.path.insert(0, str(ROOT / "scripts"))  # as scripts/build_book.py imports it
    return importlib.import_module("check_numbers")


def _nb(markdown: list[str], outputs: list[dict] | None = None) -> dict:
    cells = [{"cell_type": "markdown", "metadata": {}, "source": md} for md in markdown]
    cells.append({"cell_type": "code", "metadata": {}, "source": "print(stats)",
                  "execution_count": None, "outputs": outputs or []})
    return {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def plant(tmp: Path, prose: str, printed: str, allowed: str | None = None) -> Path:
    """A book with one chapter whose prose is ``prose`` and whose built page's output
    prints ``printed``."""
    (tmp / "book").mkdir(parents=True, exist_ok=True)
    (tmp / "_toc.yml").write_text("format: jb-book\nroot: book/01_a\n")
    (tmp / "book" / "01_a.ipynb").write_text(json.dumps(_nb(["# A\n", prose])))
    built = tmp / "_build" / "html" / "book"
    built.mkdir(parents=True, exist_ok=True)
    (built / "01_a.html").write_text(
        f"<html><body><h1>A</h1><p>{prose}</p><div class='cell_output docutils container'>"
        f"<pre>{printed}</pre><img alt='Figure. Shown for n = 40.' src='data:image/png;base64,"
        "AAAA0.731AAAA'></div></body></html>")
    if allowed is not None:
        (tmp / "book" / "prose_numbers.yml").write_text(allowed)
    return tmp


PROSE = ("The estimate's mean is $0.731$ and its variance 2.7e-07; cross-entropy reaches "
         "64.4 % (the article's **0.04** weight), so the gap is 11 points over 40 epochs "
         "and 3 seeds, see chapter 3 and eq. (4.1) of 2021.")
PRINTED = "mean 0.7312  variance 2.71e-07  accuracy 0.6441  weight 0.04  gap 10.8\n"


def test_agreeing_prose_passes(cn, tmp_path):
    root = plant(tmp_path, PROSE, PRINTED)
    [r] = cn.check(root)
    assert r.missing == [] and cn.failures([r]) == []
    assert [n.text for n in cn.measured_numbers(cn.prose_of(PROSE))] == \
        ["0.731", "2.7e-07", "64.4", "0.04", "11"]  # not 40 epochs, 3 seeds, chapter 3, (4.1), 2021


def test_a_planted_disagreement_is_named(cn, tmp_path):
    root = plant(tmp_path, PROSE.replace("0.731", "0.735").replace("11 points", "13 points"),
                 PRINTED)
    [r] = cn.check(root)
    assert [n.text for n in r.missing] == ["0.735", "13"]
    lines = cn.failures([r])
    assert len(lines) == 2 and lines[0].startswith("01_a: 0.735 is printed by no output")
    assert "mean is $0.735$" in lines[0]  # with its context, to find it


def test_code_links_labels_and_versions_are_not_prose(cn):
    md = ("See `lr=0.01` and {cite}`orr2021policy` at [the 2.5 run](x.ipynb#s-0.5 \"eq:v1.2\"),"
          " https://example.org/v0.3/, torch 2.11, Python 3.11.7.\n\n"
          "```python\nprint(0.123)\n```\n\n```{note}\nInside a note: 0.25.\n```\n\n"
          "$$\nx = 0.5\n$$ (eq-1.5)\n\n```{math}\n:label: eq:y2.5\ny = 1.5\n```\n")
    prose = cn.prose_of(md)
    assert [n.text for n in cn.measured_numbers(prose)] == ["2.5", "0.25", "0.5", "1.5"]


def test_units_pass_along_a_list_or_range(cn):
    nums = cn.measured_numbers("48 / 31 / 6 / 2.5 % of the runs; 20 to 50 seconds; 3 seeds, 2.0x")
    assert [n.text for n in nums] == ["48", "31", "6", "2.5", "20", "50", "2.0"]


def test_percent_and_rounding(cn):
    n = cn.measured_numbers("63.2 %")[0]
    assert cn.is_printed(n, [0.6324]) and cn.is_printed(n, [63.18]) and not cn.is_printed(n, [0.6336])
    m = cn.measured_numbers("about 0.99 times")[0]
    assert not cn.is_printed(m, [0.91, 1.0])  # issue 14's bench: 0.91 fp32, 1.00 bf16
    assert cn.is_printed(cn.measured_numbers("-0.825")[0], [0.825])  # sign ignored


def test_allow_list_excuses_a_number_and_goes_stale(cn, tmp_path):
    root = plant(tmp_path, "The article's baseline is 0.175.", "nothing here",
                 allowed="01_a:\n  '0.175': quoted from the article\n")
    [r] = cn.check(root)
    assert r.missing == [] and [(n.text, why) for n, why in r.allowed] == [("0.175", "quoted from the article")]
    root = plant(tmp_path, "The article's baseline is 0.175.", "baseline 0.175",
                 allowed="01_a:\n  '0.175': quoted from the article\n")
    lines = cn.failures(cn.check(root))
    assert len(lines) == 1 and "lists 0.175" in lines[0] and "remove it" in lines[0]


def test_pending_rewrites_the_allow_list(cn, tmp_path, monkeypatch):
    root = plant(tmp_path, "Worth 0.42 and 0.5.", "0.5",
                 allowed="# why this file exists\n01_a:\n  '9.9': a stale pending one... pending\n")
    cn.write_pending(cn.check(root), root / "book" / "prose_numbers.yml")
    text = (root / "book" / "prose_numbers.yml").read_text()
    assert text.startswith("# why this file exists\n") and "'0.42': 'pending: printed by no output" in text
    assert "9.9" in text  # a reasoned entry is kept (its reason does not start with "pending")
    assert cn.failures(cn.check(root)) == [
        "01_a: book/prose_numbers.yml lists 9.9, which the prose no longer states or an output "
        "now prints: remove it"]


def test_build_book_fails_on_a_planted_disagreement(tmp_path, monkeypatch, capsys):
    """The build's exit status is 4 when a page's prose states a number no output prints."""
    bb = load_file("build_book_numbers", ROOT / "scripts" / "build_book.py")
    root = plant(tmp_path / "book-root", PROSE.replace("0.731", "0.735"), PRINTED)
    monkeypatch.delenv("MPLBACKEND", raising=False)
    monkeypatch.setenv("PGVIZ_DATA", "synthetic")
    monkeypatch.setattr(bb, "ROOT", root)
    monkeypatch.setattr(bb, "BUILD", root / "_build")
    monkeypatch.setattr(bb, "HTML", root / "_build" / "html")
    monkeypatch.setattr(bb.offline_assets, "ensure_mathjax", lambda r: Path("x"))
    monkeypatch.setattr(bb.offline_assets, "mathjax_version", lambda es5: "3")
    monkeypatch.setattr(bb, "check_offline", lambda html: [])
    monkeypatch.setattr(bb.subprocess, "call", lambda cmd: 0)
    try:
        assert bb.main([]) == 4
        out = capsys.readouterr().out
        assert "0.735 is printed by no output" in out
        plant(root, PROSE, PRINTED)  # the prose fixed: the build passes
        assert bb.main([]) == 0
    finally:
        os.chdir(ROOT)


def test_outputs_are_read_from_the_built_page(cn):
    html = ("<p>prose 0.5</p><div class='cell_output'><pre>mean 0.25</pre>"
            "<img alt='Figure: n = 1,000.' src='data:image/png;base64,QUFB0.75'>"
            "<script type='application/json'>{\"frames\": [\"QUFB9.5\"], \"alts\": [\"at 0.125\"]}"
            "</script><script>var x = 4.5;</script></div>")
    values = sorted(cn.printed_values(cn.html_output_texts(html)))
    assert 0.25 in values and 1000.0 in values and 0.125 in values
    assert 0.5 not in values and 4.5 not in values and 0.75 not in values  # prose, code, pictures


def test_the_built_book_agrees_with_its_prose(cn):
    html = ROOT / "_build" / "html"
    if not any(html.glob("book/*.html")):
        if REQUIRED:
            pytest.fail("PGVIZ_BROWSER_TEST is set but the book is not built", pytrace=False)
        pytest.skip("book not built (python scripts/build_book.py)")
    assert cn.failures(cn.check(ROOT, html)) == []
