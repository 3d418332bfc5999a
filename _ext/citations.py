"""Citations written as author-year links become sphinxcontrib-bibtex citations again.

The chapters cite with ordinary Markdown links (``scripts/convert_citations.py`` writes
them), so that JupyterLab, which reads no bibliography, shows "Williams, 1992" linked to
the references page instead of a raw key::

    [Williams, 1992](references.md "cite:alp:williams1992simple")
    Zhang et al. ([2023](references.md "cite:year:zhang2023dive"))

Before Sphinx parses a page, every such link is replaced by the role its title names
(``{cite:alp}`williams1992simple```, ``{cite:year}`zhang2023dive```), so the HTML book
keeps sphinxcontrib-bibtex's citations: counted as cited, linked to the entry on the
references page, with the entry as tooltip; the label it renders is the link's text.
A link whose title names an unknown role is left alone (and shows as a link).
tests/test_text.py checks the conversion; tests/test_jupyterlab.py the reading there.
"""
from __future__ import annotations

import re

ROLES = ("alp", "alps", "p", "ps", "t", "ts", "year", "yearpar", "author", "authors")
# the title's quotes are escaped (\") inside a notebook's JSON
CITE_LINK = re.compile(
    r'\[(?P<text>[^\]\n]*)\]\(references\.md\s+(?P<q>\\?")cite:(?P<role>[a-z]+):'
    r'(?P<keys>[^"\\\s]+)(?P=q)\)')


def to_roles(text: str) -> str:
    """``text`` with every citation link replaced by its sphinxcontrib-bibtex role."""
    def one(m: re.Match) -> str:
        if m.group("role") not in ROLES:
            return m.group(0)
        return f"{{cite:{m.group('role')}}}`{m.group('keys')}`"
    return CITE_LINK.sub(one, text)


def _source_read(app, docname, source):
    source[0] = to_roles(source[0])


def setup(app):
    app.connect("source-read", _source_read)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
