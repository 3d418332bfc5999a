"""Interactive figures that work in JupyterLab *and* in the static book.

An interactive figure is a drawing function plus a few discrete controls::

    from pgviz.widgets import interactive, Control

    def draw(fig, p, b):
        ax = fig.add_subplot()
        ax.bar(["horse", "dog"], [p, 1 - p])
        ax.axhline(b)

    interactive(draw, {"p": Control([0.2, 0.4, 0.6], value=0.6, label="P(horse)"),
                       "b": [0.0, 0.1, 0.2]})

Displayed in a notebook, the returned :class:`InteractiveFigure` offers two
representations in one MIME bundle:

``application/vnd.jupyter.widget-view+json``
    a live ``ipywidgets`` user interface (one slider per control and an image of
    the figure) that re-runs ``draw`` in the kernel whenever a slider moves.
    JupyterLab shows this one.

``text/html``
    a self-contained *frame slider*: every combination of the controls' values is
    drawn once, when the notebook is executed, and embedded as a PNG data URI,
    together with one ``<input type="range">`` per control and a few lines of
    plain JavaScript that swap the image.  No kernel, no CDN, works from
    ``file://``.  The book's ``_config.yml`` tells MyST-NB to prefer this
    representation in HTML builds, so no dead widget appears there.

The static HTML is marked up for tests: the outer ``<div>`` has class
``pgviz-frames``, each range input has class ``pgviz-frames-slider`` and a
``data-control`` attribute, and the image has class ``pgviz-frames-image``.
The live widget's outer box has class ``pgviz-live``.

Accessibility: every slider has a visible ``<label>``, is a native range input
(arrow keys, Home/End move it) and announces the value's text
(``aria-valuetext``, updated as it moves); the image's ``alt`` says what *the frame on
screen* shows and for which control values, and changes with the frame.  ``alt=`` is a
function of the controls' values, a template such as ``"{n:,} samples each"`` (filled
with each frame's values), or a fixed sentence; without it the alt is made from each
frame's own titles and axis labels (:func:`describe_figure`), so a title that states the
frame's numbers is read out with them.  The live widget shows its image as an ``<img>``
with the same alt, and sets each live slider's ``aria-valuetext`` to the readout's text
(ipywidgets' selection slider would announce the index).

Keep the product of the controls' value counts small (about 60 frames or
fewer); every frame is stored in the page.  Computing the frames takes a few
seconds per figure; when working live in JupyterLab you can skip them with
the environment variable ``PGVIZ_STATIC_FRAMES=0`` (the live widget is
unaffected; the saved notebook then has no static fallback).
"""
from __future__ import annotations

from .controls import MAX_FRAMES, Alt, Control
from .figure import InteractiveFigure, _shrink_png, interactive  # noqa: F401 (_shrink_png: tests)
from .text import describe_figure

__all__ = ["Control", "InteractiveFigure", "interactive", "describe_figure", "MAX_FRAMES", "Alt"]
