"""The words of an interactive figure: alt text per frame, and text made safe for HTML."""
from __future__ import annotations

import re
from typing import Any, Mapping, Optional

from matplotlib.figure import Figure

from .controls import Control, _equals

__all__ = ["describe_figure"]


def _check_template(template: str, controls: Mapping[str, Control]) -> None:
    """A template ``alt`` names only controls (``{n}``, ``{n:,}``); else a clear error."""
    import string

    for _, name, _, _ in string.Formatter().parse(template):
        if name is not None and name.split(".")[0].split("[")[0] not in controls:
            raise ValueError(f"alt template {template!r} names {{{name}}}, which is not a "
                             f"control ({', '.join(controls)}); write braces as {{{{ }}}}")


def _fill(template: str, values: Mapping[str, Any]) -> str:
    """A template ``alt`` filled with a frame's values (``format`` mini-language)."""
    return _plain(template.format(**values)) if "{" in template else template


def _same(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return a.keys() == b.keys() and all(_equals(a[k], b[k]) for k in a)


def describe_figure(fig: Figure, title: Optional[str] = None) -> str:
    """A sentence saying what ``fig`` shows, from its (super)title and each panel's
    title and axis labels, e.g. ``"Figure: Policy. Panel "reward" (x: step, y: mean)."``,
    with mathtext made plain (``$\\lambda$`` -> ``lambda``).  Panels without any text
    (pictures, spacers) are counted, not described."""
    parts = []
    sup = title or (fig._suptitle.get_text() if getattr(fig, "_suptitle", None) else "")
    parts.append(f"Figure: {sup.strip()}." if sup and sup.strip() else "Figure.")
    bare = 0
    for ax in fig.axes:
        name = " ".join(t for t in (ax.get_title("left"), ax.get_title(), ax.get_title("right")) if t).strip()
        xl, yl = ax.get_xlabel().strip(), ax.get_ylabel().strip()
        if not (name or xl or yl):
            bare += 1
            continue
        axes = ", ".join(f"{k}: {v}" for k, v in (("x", xl), ("y", yl)) if v)
        parts.append(f"Panel \u201c{name}\u201d" + (f" ({axes})." if axes else ".") if name
                     else f"Panel with {axes}.")
    if bare:
        parts.append(f"{bare} more panel{'s' if bare > 1 else ''} without titles.")
    return _plain(" ".join(parts))


def _plain(text: str) -> str:
    """Mathtext as words a screen reader can say: ``$\\pi_y$`` -> ``pi_y``."""
    text = text.replace("\n", " ").replace("$", "").replace("\\|", "|")
    text = re.sub(r"\\([A-Za-z]+)", r"\1", text)
    return re.sub(r"[{}]", "", re.sub(r"\s+", " ", text)).strip()


def _html_escape(s: str) -> str:
    return (
        str(s)
        .replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
    )


def _script_safe(s: str) -> str:
    """Make JSON safe to put inside a <script> element."""
    return s.replace("</", "<\\/")


