"""The chapters' small results tables: HTML in notebooks and the book (its Markdown outputs
are CommonMark, which has no tables), Markdown and plain text otherwise."""
from __future__ import annotations

from typing import Sequence

__all__ = ["Table", "table"]


class Table:
    """A small results table: HTML in notebooks and the book, Markdown and plain text otherwise."""

    def __init__(self, columns: Sequence[str], rows: Sequence[Sequence[str]]):
        self.columns, self.rows = list(columns), [list(r) for r in rows]

    def _repr_html_(self) -> str:
        import html

        esc = lambda x: html.escape(str(x))  # noqa: E731
        pad = 'style="padding:0.15em 0.5em"'
        cell = 'style="padding:0.15em 0.5em;white-space:nowrap"'  # "74.3 ± 1.2 %" on one line
        head = "".join(f"<th {pad}>{esc(c)}</th>" for c in self.columns)
        body = "".join("<tr>" + "".join(f"<td {cell}>{esc(v)}</td>" for v in r) + "</tr>"
                       for r in self.rows)
        return (f'<table class="table pgviz-table" style="text-align:right">'
                f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")

    def _repr_markdown_(self) -> str:
        lines = ["| " + " | ".join(self.columns) + " |", "|" + "|".join(["---:"] * len(self.columns)) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in self.rows]
        return "\n".join(lines)

    def __repr__(self) -> str:
        widths = [max(len(str(c)), *(len(r[i]) for r in self.rows)) for i, c in enumerate(self.columns)]
        fmt = lambda r: "  ".join(str(v).rjust(w) for v, w in zip(r, widths))  # noqa: E731
        return "\n".join([fmt(self.columns)] + [fmt(r) for r in self.rows])


def table(columns: Sequence[str], rows: Sequence[Sequence], fmt="{:.4g}") -> Table:
    """A small results table for a chapter (:class:`Table`: an HTML table in the book).

    Numbers (and 0-d tensors) are formatted with ``fmt``, or with a per-column format when
    ``fmt`` is a sequence; strings pass through.
    """
    fmts = [fmt] * len(columns) if isinstance(fmt, str) else list(fmt)

    def cell(v, f):
        if hasattr(v, "item"):
            v = v.item()
        if isinstance(v, str):
            return v
        if isinstance(v, float):
            v = v + 0.0  # no "-0.000"
        return f.format(v)

    return Table(columns, [[cell(v, f) for v, f in zip(r, fmts)] for r in rows])
