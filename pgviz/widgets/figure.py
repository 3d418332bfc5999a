"""The interactive figure: a live ipywidgets view for JupyterLab and a static frame slider
for the HTML book, from one drawing function (see :mod:`pgviz.widgets`)."""
from __future__ import annotations

import base64
import io
import itertools
import json
import math
import os
import uuid
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from matplotlib.figure import Figure

from .controls import MAX_FRAMES, Alt, Control, _as_control, _equals
from .text import _check_template, _fill, _html_escape, _plain, _same, _script_safe, describe_figure

__all__ = ["InteractiveFigure", "interactive"]

_WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


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
        alt: Alt = None,
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
        if isinstance(alt, str):
            _check_template(alt, self.controls)
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
        self._image = w.HTML(value=self._live_image_html())
        self._image.layout = w.Layout(max_width="100%")
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
            self._image.value = self._live_image_html()

    def _live_image_html(self) -> str:
        """The live figure as an ``<img>`` whose ``alt`` says what it shows now.

        ipywidgets' ``Image`` has no alt, so the picture is an ``HTML`` widget.  Its
        ``onload`` also gives each live slider's handle the readout's text as
        ``aria-valuetext`` (the selection slider announces its index otherwise); it runs
        after every redraw, i.e. after the slider has moved."""
        b64 = base64.b64encode(_shrink_png(self.png())).decode("ascii")
        return (f'<img class="pgviz-live-image" alt="{_html_escape(self.alt_text())}" '
                f'style="max-width:100%;height:auto;display:block" '
                f'onload="{_html_escape(_LIVE_ARIA_JS)}" src="data:image/png;base64,{b64}">')

    # ------------------------------------------------------------- static HTML
    def describe(self, values: Optional[Mapping[str, Any]] = None) -> str:
        """What the frame for ``values`` (default: the current ones) shows, for the
        image's ``alt``: ``alt`` of :func:`interactive` (called with the values, or a
        template filled with them), else a sentence made from that frame's titles and
        axis labels (the frame is drawn for it)."""
        values = self._values if values is None else dict(values)
        if callable(self.alt):
            return _plain(str(self.alt(**values)))
        if isinstance(self.alt, str):
            return _fill(self.alt, values)
        if _same(values, self._values):
            return describe_figure(self.figure, self.title)
        try:
            return describe_figure(self._render(**values), self.title)
        finally:
            self._render(**self._values)

    def alt_text(self, values: Optional[Mapping[str, Any]] = None) -> str:
        """``alt`` of the frame for ``values`` (default: the current ones): what it shows,
        then the values it is shown for."""
        values = self._values if values is None else dict(values)
        return self._alt_of(self.describe(values), values)

    def _describe_drawn(self, values: Mapping[str, Any]) -> str:
        """:meth:`describe` for ``values`` while the figure shows them (no redraw)."""
        if self.alt is None:
            return describe_figure(self.figure, self.title)
        return self.describe(values)

    def _alt_of(self, description: str, values: Mapping[str, Any]) -> str:
        shown = ", ".join(f"{c.label} = {c.format(values[n])}" for n, c in self.controls.items())
        return f"{description} Shown for {shown}."

    def to_html(self) -> str:
        """A self-contained HTML frame slider (precomputes every frame once)."""
        if self._html_cache is not None:
            return self._html_cache
        names = list(self.controls)
        ctrls = [self.controls[n] for n in names]
        uniq: List[str] = []  # distinct frames, base64 PNG
        seen: Dict[str, int] = {}
        index: List[int] = []  # frame number -> position in uniq
        alts: List[str] = []  # distinct alt texts
        alt_seen: Dict[str, int] = {}
        alt_index: List[int] = []  # frame number -> position in alts
        for values, data in self.frames():
            b64 = base64.b64encode(_shrink_png(data)).decode("ascii")
            if b64 not in seen:
                seen[b64] = len(uniq)
                uniq.append(b64)
            index.append(seen[b64])
            # frames() has just drawn this frame: describe it as drawn
            text = self._alt_of(self._describe_drawn(values), values)
            if text not in alt_seen:
                alt_seen[text] = len(alts)
                alts.append(text)
            alt_index.append(alt_seen[text])
        sizes = [len(c.values) for c in ctrls]
        strides = [math.prod(sizes[i + 1:]) for i in range(len(sizes))]
        start = [c.index_of(self._values[n]) for n, c in zip(names, ctrls)]
        flat0 = sum(i * s for i, s in zip(start, strides))
        uid = f"pgviz-{self._uid}"
        esc = _html_escape
        rows = []
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
        alt = esc(alts[alt_index[flat0]])
        payload = json.dumps({"frames": uniq, "index": index, "strides": strides,
                              "alts": alts, "alt_index": alt_index})
        script = (
            "(function(){"
            f'var id="{uid}",d=JSON.parse(document.getElementById(id+"-data").textContent);'
            'var root=document.getElementById(id),img=document.getElementById(id+"-img");'
            'var ins=root.querySelectorAll("input.pgviz-frames-slider");'
            "function show(){var f=0;for(var k=0;k<ins.length;k++){"
            "var i=parseInt(ins[k].value,10);f+=i*d.strides[k];"
            'var o=document.getElementById(id+"-v"+k);'
            "var t=JSON.parse(ins[k].getAttribute(\"data-labels\"))[i];"
            'o.textContent=t;ins[k].setAttribute("aria-valuetext",t);}'
            'img.src="data:image/png;base64,"+d.frames[d.index[f]];'
            "img.alt=d.alts[d.alt_index[f]];"
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


#: Run by the live image's ``onload``: every slider of its figure announces its readout.
_LIVE_ARIA_JS = (
    "var b=this.closest('.pgviz-live');if(b){b.querySelectorAll('.widget-slider')"
    ".forEach(function(s){var h=s.querySelector('.noUi-handle'),"
    "r=s.querySelector('.widget-readout');"
    "if(h&&r){h.setAttribute('aria-valuetext',(r.value||r.textContent||'').trim());}});}"
)




def interactive(
    draw: Callable[..., Any],
    controls: Mapping[str, Any],
    *,
    figsize: Tuple[float, float] = (7, 3.5),
    title: Optional[str] = None,
    dpi: float = 80,
    alt: Alt = None,
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
        What each frame shows, for readers who cannot see it (the image's
        ``alt``, followed by "Shown for <label> = <value>, ..."): a function
        ``alt(**values) -> str`` of the controls' values, a template filled with
        them (``"{n:,} estimates"``; braces that are not a control's name are an
        error), or a fixed sentence.  Default: a sentence made from each frame's
        own titles and axis labels (:func:`describe_figure`).
    """
    return InteractiveFigure(draw, controls, figsize=figsize, title=title, dpi=dpi, alt=alt)
