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
(``aria-valuetext``); the image's ``alt`` says what the figure shows (``alt=``,
else a description made from the figure's titles and axis labels) and for which
control values, updated as the slider moves.

Keep the product of the controls' value counts small (about 60 frames or
fewer); every frame is stored in the page.  Computing the frames takes a few
seconds per figure; when working live in JupyterLab you can skip them with
the environment variable ``PGVIZ_STATIC_FRAMES=0`` (the live widget is
unaffected; the saved notebook then has no static fallback).
"""
from __future__ import annotations

import base64
import io
import itertools
import json
import math
import numbers
import os
import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import matplotlib
from matplotlib.figure import Figure

__all__ = ["Control", "InteractiveFigure", "interactive", "describe_figure", "MAX_FRAMES"]

#: Refuse to precompute more frames than this (a page would become heavy).
MAX_FRAMES = 200

_WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _is_number(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _equals(a: Any, b: Any) -> bool:
    """Equality used by the sliders: numbers compare with a small tolerance,
    so ``slider.value = 0.3`` selects ``0.30000000000000004``."""
    if _is_number(a) and _is_number(b):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    return a == b


@dataclass
class Control:
    """A discrete control: the values a slider can take.

    Parameters
    ----------
    values:
        The allowed values, in slider order (numbers or strings).
    value:
        The initial value; defaults to the middle of ``values``.
    label:
        Text shown next to the slider; defaults to the control's name.
    fmt:
        Format string for numeric values (strings are shown as they are).
    """

    values: Sequence[Any]
    value: Any = None
    label: Optional[str] = None
    fmt: str = "{:.2f}"
    _index: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        vals = list(self.values)
        if not vals:
            raise ValueError("a Control needs at least one value")
        # plain Python scalars (numpy scalars do not serialise to JSON)
        self.values = [v.item() if hasattr(v, "item") else v for v in vals]
        if self.value is None:
            self._index = (len(self.values) - 1) // 2
        else:
            self._index = self.index_of(self.value)
        self.value = self.values[self._index]

    @property
    def index(self) -> int:
        """Index of the initial value in :attr:`values`."""
        return self._index

    def index_of(self, value: Any) -> int:
        for i, v in enumerate(self.values):
            if _equals(v, value):
                return i
        raise ValueError(f"{value!r} is not one of the control's values {self.values!r}")

    def format(self, value: Any) -> str:
        if _is_number(value):
            try:
                return self.fmt.format(value)
            except (ValueError, TypeError):
                return str(value)
        return str(value)


def _as_control(name: str, spec: Any) -> Control:
    if isinstance(spec, Control):
        ctrl = Control(spec.values, value=spec.value, label=spec.label, fmt=spec.fmt)
    else:
        ctrl = Control(list(spec))
    if ctrl.label is None:
        ctrl.label = name
    return ctrl


def _figure_to_png(fig: Figure, dpi: float) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def _shrink_png(data: bytes) -> bytes:
    """Re-encode a PNG with a 256-colour palette (about 3x smaller for plots,
    visually identical); returns the input unchanged if Pillow is unavailable."""
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow ships with matplotlib
        return data
    im = Image.open(io.BytesIO(data)).convert("RGB")
    im = im.quantize(colors=256, method=Image.Quantize.FASTOCTREE)
    out = io.BytesIO()
    im.save(out, format="PNG", optimize=True)
    small = out.getvalue()
    return small if len(small) < len(data) else data


class InteractiveFigure:
    """A matplotlib figure driven by discrete controls.

    Create it with :func:`interactive`.  Attributes:

    ``figure``
        the :class:`matplotlib.figure.Figure` (redrawn on every change)
    ``controls``
        ``dict`` name -> :class:`Control`
    ``sliders``
        ``dict`` name -> ``ipywidgets.SelectionSlider``; setting
        ``sliders[name].value`` (or ``.index``) redraws :attr:`figure`
    ``values``
        the current value of every control
    """

    def __init__(
        self,
        draw: Callable[..., Any],
        controls: Mapping[str, Any],
        *,
        figsize: Tuple[float, float] = (7, 3.5),
        title: Optional[str] = None,
        dpi: float = 80,
        alt: Optional[str] = None,
    ) -> None:
        if not controls:
            raise ValueError("interactive() needs at least one control")
        self.draw = draw
        self.title = title
        self.dpi = dpi
        self.alt = alt
        self.controls: Dict[str, Control] = {
            name: _as_control(name, spec) for name, spec in controls.items()
        }
        n = self.n_frames
        if n > MAX_FRAMES:
            raise ValueError(
                f"{n} frames (product of the controls' value counts) is more than "
                f"MAX_FRAMES={MAX_FRAMES}; use fewer values per control"
            )
        # A bare Figure (not pyplot): nothing is shown twice by the inline backend
        # and no global state is touched.
        self.figure = Figure(figsize=figsize, layout="constrained")
        self._values: Dict[str, Any] = {k: c.value for k, c in self.controls.items()}
        self._uid = uuid.uuid4().hex[:12]
        self._widget = None
        self._sliders = None
        self._image = None
        self._html_cache: Optional[str] = None
        self._render(**self._values)

    # ------------------------------------------------------------------ drawing
    @property
    def n_frames(self) -> int:
        return math.prod(len(c.values) for c in self.controls.values())

    @property
    def values(self) -> Dict[str, Any]:
        """Current value of every control (a copy)."""
        return dict(self._values)

    def _render(self, **values: Any) -> Figure:
        self.figure.clear()
        self.draw(self.figure, **values)
        if self.title:
            self.figure.suptitle(self.title)
        return self.figure

    def update(self, **values: Any) -> Figure:
        """Set some controls' values (must be allowed values) and redraw.

        Also moves the live sliders, if they exist, without redrawing twice."""
        for name, v in values.items():
            if name not in self.controls:
                raise KeyError(f"no control named {name!r}")
            ctrl = self.controls[name]
            self._values[name] = ctrl.values[ctrl.index_of(v)]
        if self._sliders is not None:
            self._syncing = True
            try:
                for name in values:
                    self._sliders[name].value = self._values[name]
            finally:
                self._syncing = False
        self._render(**self._values)
        self._refresh_image()
        return self.figure

    def png(self, dpi: Optional[float] = None) -> bytes:
        """The current figure as PNG bytes."""
        return _figure_to_png(self.figure, dpi or self.dpi)

    def frames(self):
        """Yield ``(values, png_bytes)`` for every combination of control values,
        in row-major order of the controls (the last control varies fastest).
        The figure is left showing the current values afterwards."""
        names = list(self.controls)
        layout = self._frozen_layout()
        try:
            for combo in itertools.product(*(self.controls[n].values for n in names)):
                values = dict(zip(names, combo))
                self._render(**values)
                yield values, self._png_with_layout(layout)
        finally:
            self._render(**self._values)

    def _frozen_layout(self):
        """Axes positions chosen by constrained layout for the current values.

        Constrained layout is half the cost of rendering a frame; every frame of one
        figure has the same axes, so it is computed once and reused (which also keeps
        the axes from jumping about as the slider moves)."""
        fig = self.figure
        engine = fig.get_layout_engine()
        if engine is None or not hasattr(engine, "execute"):
            return None
        try:
            self._render(**self._values)
            engine.execute(fig)
            return [ax.get_position() for ax in fig.axes]
        except Exception:  # pragma: no cover - fall back to a layout per frame
            return None

    def _png_with_layout(self, layout) -> bytes:
        fig = self.figure
        if not layout or len(fig.axes) != len(layout):
            return self.png()
        engine = fig.get_layout_engine()
        try:
            fig.set_layout_engine("none")
        except Exception:  # pragma: no cover - e.g. incompatible colorbars
            return self.png()
        try:
            for ax, pos in zip(fig.axes, layout):
                ax.set_position(pos)
            return self.png()
        finally:
            fig.set_layout_engine(engine)

    # ------------------------------------------------------------ live widgets
    @property
    def sliders(self) -> Dict[str, Any]:
        """``ipywidgets`` sliders, one per control (created on first use)."""
        self._ensure_widget()
        return self._sliders

    @property
    def widget(self):
        """The live ``ipywidgets`` user interface (a ``VBox``)."""
        self._ensure_widget()
        return self._widget

    def _ensure_widget(self) -> None:
        if self._widget is not None:
            return
        import ipywidgets as w

        self._syncing = False
        sliders = {}
        for name, ctrl in self.controls.items():
            slider = w.SelectionSlider(
                options=[(ctrl.format(v), v) for v in ctrl.values],
                value=self._values[name],
                description=ctrl.label,
                continuous_update=True,
                equals=_equals,
                style={"description_width": "initial"},
                layout=w.Layout(width="420px"),
            )
            slider.disabled = len(ctrl.values) == 1
            slider.observe(self._on_slider, names="value")
            sliders[name] = slider
        self._sliders = sliders
        self._image = w.Image(value=_shrink_png(self.png()), format="png")
        self._image.layout = w.Layout(max_width="100%", height="auto")
        self._widget = w.VBox(
            [w.VBox(list(sliders.values())), self._image],
            layout=w.Layout(align_items="flex-start"),
        )
        self._widget.add_class("pgviz-live")

    def _on_slider(self, change) -> None:
        if getattr(self, "_syncing", False):
            return
        name = next(k for k, s in self._sliders.items() if s is change["owner"])
        self._values[name] = change["new"]
        self._render(**self._values)
        self._refresh_image()

    def _refresh_image(self) -> None:
        if self._image is not None:
            self._image.value = _shrink_png(self.png())

    # ------------------------------------------------------------- static HTML
    def describe(self) -> str:
        """What the figure shows, for the image's ``alt``: the ``alt`` given to
        :func:`interactive`, else one made from the figure's title, its panels'
        titles and axis labels (drawn at the current values)."""
        if self.alt:
            return self.alt
        return describe_figure(self.figure, self.title)

    def alt_text(self, values: Optional[Mapping[str, Any]] = None) -> str:
        """``alt`` of the frame for ``values`` (default: the current ones)."""
        values = self._values if values is None else values
        shown = ", ".join(f"{c.label} = {c.format(values[n])}" for n, c in self.controls.items())
        return f"{self.describe()} Shown for {shown}."

    def to_html(self) -> str:
        """A self-contained HTML frame slider (precomputes every frame once)."""
        if self._html_cache is not None:
            return self._html_cache
        names = list(self.controls)
        ctrls = [self.controls[n] for n in names]
        uniq: List[str] = []  # distinct frames, base64 PNG
        seen: Dict[str, int] = {}
        index: List[int] = []  # frame number -> position in uniq
        for _, data in self.frames():
            b64 = base64.b64encode(_shrink_png(data)).decode("ascii")
            if b64 not in seen:
                seen[b64] = len(uniq)
                uniq.append(b64)
            index.append(seen[b64])
        sizes = [len(c.values) for c in ctrls]
        strides = [math.prod(sizes[i + 1:]) for i in range(len(sizes))]
        start = [c.index_of(self._values[n]) for n, c in zip(names, ctrls)]
        flat0 = sum(i * s for i, s in zip(start, strides))
        uid = f"pgviz-{self._uid}"
        esc = _html_escape
        rows = []
        alt_base = self.describe()
        for k, (name, ctrl) in enumerate(zip(names, ctrls)):
            labels = [ctrl.format(v) for v in ctrl.values]
            # a control with a single value is shown as text, not as a slider that cannot move
            kind = "range" if len(labels) > 1 else "hidden"
            rows.append(
                f'<div class="pgviz-frames-row" style="display:flex;align-items:center;'
                f'gap:0.6em;margin:0.15em 0;font-size:0.9em">'
                + (f'<label for="{uid}-s{k}" style="min-width:9em">{esc(ctrl.label)}</label>'
                   if kind == "range" else f'<span style="min-width:9em">{esc(ctrl.label)}</span>')
                + f'<input type="{kind}" id="{uid}-s{k}" class="pgviz-frames-slider" '
                f'data-control="{esc(name)}" min="0" max="{len(labels) - 1}" step="1" '
                f'value="{start[k]}" aria-valuetext="{esc(labels[start[k]])}" '
                f'data-label="{esc(ctrl.label)}" '
                f'data-labels="{esc(json.dumps(labels))}" style="width:260px">'
                f'<output id="{uid}-v{k}" for="{uid}-s{k}" '
                f'style="font-family:monospace;min-width:4em">{esc(labels[start[k]])}</output>'
                f"</div>"
            )
        alt = esc(self.alt_text())
        payload = json.dumps({"frames": uniq, "index": index, "strides": strides,
                              "alt": alt_base})
        script = (
            "(function(){"
            f'var id="{uid}",d=JSON.parse(document.getElementById(id+"-data").textContent);'
            'var root=document.getElementById(id),img=document.getElementById(id+"-img");'
            'var ins=root.querySelectorAll("input.pgviz-frames-slider");'
            "function show(){var f=0,shown=[];for(var k=0;k<ins.length;k++){"
            "var i=parseInt(ins[k].value,10);f+=i*d.strides[k];"
            'var o=document.getElementById(id+"-v"+k);'
            "var t=JSON.parse(ins[k].getAttribute(\"data-labels\"))[i];"
            'o.textContent=t;ins[k].setAttribute("aria-valuetext",t);'
            'shown.push(ins[k].getAttribute("data-label")+" = "+t);}'
            'img.src="data:image/png;base64,"+d.frames[d.index[f]];'
            'img.alt=d.alt+" Shown for "+shown.join(", ")+".";'
            'root.setAttribute("data-frame",String(f));}'
            'for(var k=0;k<ins.length;k++){ins[k].addEventListener("input",show);'
            'ins[k].addEventListener("change",show);}'
            "show();})();"
        )
        html = (
            f'<div id="{uid}" class="pgviz-frames" data-frame="{flat0}" '
            f'data-n-frames="{len(index)}" style="margin:0.5em 0">'
            + "".join(rows)
            + f'<img id="{uid}-img" class="pgviz-frames-image" alt="{alt}" '
            f'style="max-width:100%;height:auto;display:block;margin-top:0.3em" '
            f'src="data:image/png;base64,{uniq[index[flat0]]}">'
            f'<script type="application/json" id="{uid}-data">{_script_safe(payload)}</script>'
            f"<script>{script}</script>"
            "</div>"
        )
        self._html_cache = html
        return html

    # --------------------------------------------------------------- display
    def _repr_mimebundle_(self, include=None, exclude=None):
        n = self.n_frames
        bundle: Dict[str, Any] = {
            "text/plain": f"<InteractiveFigure: {', '.join(self.controls)}; {n} frames>",
        }
        if os.environ.get("PGVIZ_STATIC_FRAMES", "1").strip().lower() not in ("0", "false", "no"):
            bundle["text/html"] = self.to_html()
        try:
            view = self.widget._repr_mimebundle_()
        except Exception:  # pragma: no cover - no ipywidgets front end at all
            view = None
        if view and _WIDGET_VIEW in view:
            bundle[_WIDGET_VIEW] = view[_WIDGET_VIEW]
        return bundle

    def __repr__(self) -> str:
        return f"<InteractiveFigure: {', '.join(self.controls)}; {self.n_frames} frames>"


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


def interactive(
    draw: Callable[..., Any],
    controls: Mapping[str, Any],
    *,
    figsize: Tuple[float, float] = (7, 3.5),
    title: Optional[str] = None,
    dpi: float = 80,
    alt: Optional[str] = None,
) -> InteractiveFigure:
    """Make an interactive figure.

    Parameters
    ----------
    draw:
        ``draw(fig, **values)`` draws into the (already cleared) matplotlib
        ``Figure`` ``fig`` for one combination of control values.
    controls:
        ``dict`` name -> :class:`Control`, or name -> list of values (the
        initial value is then the middle one).  The names are the keyword
        arguments passed to ``draw``.
    figsize, title, dpi:
        Figure size in inches, an optional figure title, and the resolution
        of the rendered frames.
    alt:
        What the figure shows, for readers who cannot see it (the image's
        ``alt``; the current control values are appended).  Default: a
        description made from the figure's titles and axis labels.
    """
    return InteractiveFigure(draw, controls, figsize=figsize, title=title, dpi=dpi, alt=alt)
