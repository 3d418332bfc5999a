"""Cross-chapter equation links carry the equation's number in the HTML book.

A chapter links an equation of another chapter with an ordinary Markdown link whose
title names the equation's label (``{eq}`` across notebooks is unresolved in JupyterLab,
and a typed number would go stale), e.g.::

    [the baseline equation of chapter 3](03_baseline.ipynb#the-baseline-equation "eq:baseline")

Chapters are numbered and equations restart in each (``numfig_secnum_depth: 1`` in
``_config.yml``), so in the HTML this extension appends the number Sphinx gave that
equation to the link's text: "the baseline equation of chapter 3 (3.2)".  JupyterLab
shows the link without it (jupyterlab-myst numbers equations per notebook).  A link
titled ``eq:...`` whose label no chapter defines fails a ``-W`` build.
tests/test_numbering.py checks the built pages.
"""
from __future__ import annotations

from docutils import nodes
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util import logging
from docutils.nodes import make_id  # as the math domain names equations

logger = logging.getLogger(__name__)


def equation_number(env, label: str) -> str | None:
    """The number Sphinx shows for the equation ``label`` (e.g. ``"3.2"``), or None."""
    found = env.get_domain("math").equations.get(label)
    if not found:
        return None
    docname, number = found
    if not (env.config.math_numfig and env.config.numfig):
        return str(number)
    numbers = env.toc_fignumbers.get(docname, {}).get("displaymath", {}).get(
        make_id(f"equation-{label}"), ())
    if not numbers:
        return str(number)
    eqno = ".".join(map(str, numbers))
    return env.config.math_numsep.join(eqno.rsplit(".", 1))


class EquationLinkNumbers(SphinxPostTransform):
    """Append "(N.k)" to the text of every link titled ``eq:<label>``."""

    default_priority = 5  # before the references are resolved (the title is still there)

    def run(self, **kwargs) -> None:
        for node in list(self.document.findall(nodes.Element)):
            if node.tagname != "pending_xref" and not isinstance(node, nodes.reference):
                continue
            # myst-parser keeps a link's title as "title" on a pending_xref to a page
            title = node.get("title") or node.get("reftitle") or ""
            if not title.startswith("eq:"):
                continue
            number = equation_number(self.env, title)
            if number is None:
                logger.warning(f"link titled {title!r}: no equation has that label",
                               location=node)
                continue
            # the resolver keeps the first child (an inline holding the text) as the link's
            # content: the number goes inside it
            target = node[0] if len(node) and isinstance(node[0], nodes.Element) else node
            target += nodes.Text(f" ({number})")


def setup(app):
    app.add_post_transform(EquationLinkNumbers)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
