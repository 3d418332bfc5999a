#!/usr/bin/env python
"""Rewrite the chapters' ``{cite}`` roles as author-year links that read in JupyterLab too.

    python scripts/convert_citations.py           # rewrite book/*.ipynb and book/*.md in place
    python scripts/convert_citations.py --check   # exit 1 if any {cite} role is left

jupyterlab-myst reads no bibliography, so ``{cite}`williams1992simple``` shows there as
its raw key with a warning icon.  This script writes every citation as an ordinary
Markdown link whose text is the author-year label and whose title names the role and key::

    {cite}`williams1992simple,sutton2000policy`
      -> ([Williams, 1992](references.md "cite:alp:williams1992simple"); [Sutton et al., 2000](references.md "cite:alp:sutton2000policy"))
    {cite:t}`zhang2023dive`
      -> Zhang et al. ([2023](references.md "cite:year:zhang2023dive"))

JupyterLab shows the label, linked to the references page (``book/references.md``).
The HTML book turns each such link back into the role before it is parsed
(``_ext/citations.py``), so sphinxcontrib-bibtex still resolves the citation, links it to
its entry of the bibliography and renders the same text ("Williams, 1992"; ``cite:alp``
is the parenthetical form without brackets, ``cite:year`` the year alone).  Labels come
from ``book/references.bib``: one author "Williams", two "Sutton and Barto", more
"Sutton et al."; the year as the entry writes it ("2021c" where one author has several).

Run it again after any chapter gains a ``{cite}`` (it leaves converted links alone);
tests/test_text.py fails while a ``{cite}`` role is left.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
BIB = BOOK / "references.bib"
REFERENCES = "references.md"

ROLE = re.compile(r"\{cite(?::(?P<role>[a-z]+))?\}`(?P<keys>[^`]+)`")


def _plain(tex: str) -> str:
    """A BibTeX name or year as plain text: braces and simple accents dropped."""
    tex = re.sub(r"\\[`'^\"~=.uvHckbdt]\{?([A-Za-z])\}?", r"\1", tex)
    return re.sub(r"[{}]", "", tex).strip()


def bib_labels(bib: Path = BIB) -> dict[str, tuple[str, str]]:
    """key -> (authors as cited, year) for every entry of ``bib``."""
    from pybtex.database import parse_file

    out = {}
    for key, entry in parse_file(str(bib)).entries.items():
        people = entry.persons.get("author") or entry.persons.get("editor") or []
        last = [_plain(" ".join(p.prelast_names + p.last_names)) for p in people]
        if not last:
            who = _plain(entry.fields.get("title", key))
        elif len(last) == 1:
            who = last[0]
        elif len(last) == 2:
            who = f"{last[0]} and {last[1]}"
        else:
            who = f"{last[0]} et al."
        out[key] = (who, _plain(entry.fields.get("year", "")))
    return out


def convert_text(text: str, labels: dict[str, tuple[str, str]]) -> str:
    """``text`` with every ``{cite}``/``{cite:p}``/``{cite:t}`` role written as links."""
    def link(label: str, role: str, key: str) -> str:
        return f'[{label}]({REFERENCES} "cite:{role}:{key}")'

    def one(m: re.Match) -> str:
        role = m.group("role") or "p"
        keys = [k.strip() for k in m.group("keys").split(",") if k.strip()]
        missing = [k for k in keys if k not in labels]
        if missing:
            raise KeyError(f"{', '.join(missing)}: not in {BIB.name}")
        if role == "p":
            return "(" + "; ".join(link(f"{labels[k][0]}, {labels[k][1]}", "alp", k) for k in keys) + ")"
        if role == "t":
            return "; ".join(f"{labels[k][0]} (" + link(labels[k][1], "year", k) + ")" for k in keys)
        raise ValueError(f"{m.group(0)}: only {{cite}}, {{cite:p}} and {{cite:t}} are converted")
    return ROLE.sub(one, text)


def _sources(cell_source) -> str:
    return "".join(cell_source) if isinstance(cell_source, list) else cell_source


def convert_file(path: Path, labels) -> bool:
    """Rewrite ``path`` in place; True if it changed."""
    raw = path.read_text(encoding="utf-8")
    if path.suffix == ".md":
        new = convert_text(raw, labels)
    else:
        nb = json.loads(raw)
        for cell in nb["cells"]:
            if cell["cell_type"] != "markdown":
                continue
            text = _sources(cell["source"])
            done = convert_text(text, labels)
            if done != text:
                cell["source"] = done.splitlines(keepends=True)
        new = json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
    if new != raw:
        path.write_text(new, encoding="utf-8")
        return True
    return False


def roles_left(paths) -> list[str]:
    return [f"{p.name}: {m.group(0)}" for p in paths
            for m in ROLE.finditer(p.read_text(encoding="utf-8"))]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="only report {cite} roles left")
    args = ap.parse_args(argv)
    paths = sorted(p for p in BOOK.iterdir() if p.suffix in (".ipynb", ".md"))
    if args.check:
        left = roles_left(paths)
        for line in left:
            print(line)
        return 1 if left else 0
    labels = bib_labels()
    changed = [p.name for p in paths if convert_file(p, labels)]
    print(f"convert_citations: {len(changed)} file(s) rewritten" + (f": {', '.join(changed)}" if changed else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
