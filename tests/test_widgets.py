"""pgviz.widgets: live sliders redraw the figure; the static HTML carries every frame."""
import base64
import json
import re

import matplotlib

matplotlib.use("Agg")

import pytest

from pgviz.widgets import Control, InteractiveFigure, interactive

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def bars(p, b):
    def draw(fig, p, b):
        ax = fig.add_subplot()
        ax.bar(["horse", "dog"], [p, 1 - p])
        ax.axhline(b)

    return interactive(
        draw,
        {"p": Control([0.2, 0.4, 0.6], value=p, label="P(horse)"), "b": [0.0, 0.1, 0.2]},
    )


def heights(fig):
    return [round(float(r.get_height()), 6) for r in fig.axes[0].patches]


def test_initial_values_and_defaults():
    f = bars(0.6, None)
    assert isinstance(f, InteractiveFigure)
    assert f.values == {"p": 0.6, "b": 0.1}  # b: a plain list starts at its middle value
    assert heights(f.figure) == [0.6, 0.4]
    assert f.n_frames == 9


def test_slider_redraws_figure():
    f = bars(0.6, None)
    f.sliders["p"].value = 0.2
    assert heights(f.figure) == [0.2, 0.8]
    assert f.values["p"] == 0.2
    f.sliders["b"].value = 0.2
    assert f.figure.axes[0].lines[0].get_ydata()[0] == pytest.approx(0.2)
    # moving by index works too
    f.sliders["p"].index = 1
    assert heights(f.figure) == [0.4, 0.6]


def test_slider_accepts_float_noise():
    f = bars(0.6, None)
    f.sliders["p"].value = 0.1 + 0.1  # 0.2000000000000000x
    assert heights(f.figure) == [0.2, 0.8]


def test_slider_rejects_unknown_value():
    f = bars(0.6, None)
    with pytest.raises(Exception):
        f.sliders["p"].value = 0.5


def test_update_moves_sliders():
    f = bars(0.6, None)
    _ = f.sliders
    f.update(p=0.4)
    assert f.sliders["p"].value == 0.4
    assert heights(f.figure) == [0.4, 0.6]


def test_string_values():
    def draw(fig, action):
        ax = fig.add_subplot()
        ax.bar(["horse", "dog"], [1.0 if action == "horse" else 0.0, 1.0 if action == "dog" else 0.0])

    f = interactive(draw, {"action": ["horse", "dog"]})
    assert f.values == {"action": "horse"}
    assert heights(f.figure) == [1.0, 0.0]
    f.sliders["action"].value = "dog"
    assert heights(f.figure) == [0.0, 1.0]


def test_mimebundle_has_widget_view_and_static_html():
    f = bars(0.6, None)
    bundle = f._repr_mimebundle_()
    assert WIDGET_VIEW in bundle
    assert bundle[WIDGET_VIEW]["model_id"] == f.widget.model_id
    html = bundle["text/html"]
    assert 'class="pgviz-frames"' in html
    assert html.count('type="range"') == 2
    assert "http://" not in html and "https://" not in html  # nothing fetched from a CDN
    data = json.loads(re.search(r'type="application/json"[^>]*>(.*?)</script>', html, re.S).group(1))
    assert len(data["index"]) == 9
    assert len(set(data["index"])) == 9  # every frame differs
    assert data["strides"] == [3, 1]
    for b64 in data["frames"]:
        assert base64.b64decode(b64)[:8] == b"\x89PNG\r\n\x1a\n"
    # the initial image is the frame for the initial values (p index 2, b index 1)
    start = 2 * 3 + 1
    assert f'data-frame="{start}"' in html
    assert data["frames"][data["index"][start]] in html.split("<script")[0]


def test_frames_leave_figure_at_current_values():
    f = bars(0.4, None)
    frames = list(f.frames())
    assert len(frames) == 9 and frames[0][0] == {"p": 0.2, "b": 0.0}
    assert heights(f.figure) == [0.4, 0.6]
    # the layout engine frozen while rendering frames is restored afterwards
    assert type(f.figure.get_layout_engine()).__name__ == "ConstrainedLayoutEngine"


def test_unique_ids_per_figure():
    a, b = bars(0.6, None).to_html(), bars(0.6, None).to_html()
    ida = re.search(r'id="(pgviz-[0-9a-f]+)"', a).group(1)
    idb = re.search(r'id="(pgviz-[0-9a-f]+)"', b).group(1)
    assert ida != idb


def test_too_many_frames_refused():
    with pytest.raises(ValueError):
        interactive(lambda fig, a, b: None, {"a": list(range(20)), "b": list(range(20))})


def test_bad_initial_value():
    with pytest.raises(ValueError):
        Control([1, 2, 3], value=4)


def test_single_value_control_is_not_a_slider_in_html():
    f = interactive(lambda fig, p, b: fig.add_subplot().bar([0], [p + b]),
                    {"p": [0.1, 0.9], "b": [0.5]})
    html = f.to_html()
    assert html.count('type="range"') == 1 and html.count('type="hidden"') == 1
    assert f.sliders["b"].disabled and not f.sliders["p"].disabled


def test_static_frames_can_be_switched_off(monkeypatch):
    f = bars(0.6, None)
    monkeypatch.setenv("PGVIZ_STATIC_FRAMES", "0")
    bundle = f._repr_mimebundle_()
    assert "text/html" not in bundle and WIDGET_VIEW in bundle


# ---------------------------------------------------------------------------
# The static slider's JavaScript, run in node against a minimal DOM
# ---------------------------------------------------------------------------
_NODE_HARNESS = r"""
const fs = require("fs");
const spec = JSON.parse(fs.readFileSync(0, "utf8"));
const els = {};
const inputs = spec.inputs.map(a => {
  const attrs = Object.assign({}, a);
  const el = {value: a.value, listeners: {}, getAttribute: k => attrs[k],
              setAttribute: (k, v) => { attrs[k] = String(v); },
              addEventListener(t, f) { (this.listeners[t] = this.listeners[t] || []).push(f); }};
  els[a.id] = el;
  return el;
});
const root = {attrs: {}, setAttribute(k, v) { this.attrs[k] = v; },
              querySelectorAll: () => inputs};
els[spec.root] = root;
els[spec.root + "-img"] = {src: "", alt: ""};
els[spec.root + "-data"] = {textContent: spec.data};
spec.inputs.forEach((a, k) => { els[spec.root + "-v" + k] = {textContent: ""}; });
global.document = {getElementById: id => els[id]};
eval(spec.script);
const out = [];
for (const combo of spec.combos) {
  combo.forEach((v, k) => { inputs[k].value = String(v); });
  const k = combo.length - 1;
  inputs[k].listeners["input"].forEach(f => f());
  out.push({frame: root.attrs["data-frame"], src: els[spec.root + "-img"].src,
            alt: els[spec.root + "-img"].alt,
            valuetext: inputs.map(el => el.getAttribute("aria-valuetext")),
            labels: spec.inputs.map((a, j) => els[spec.root + "-v" + j].textContent)});
}
process.stdout.write(JSON.stringify(out));
"""


def run_static_slider(f, combos=None):
    """Run the page's own slider script in node: set the sliders to each combination of
    positions (default: all) and return what the page shows after each (frame number,
    image src and alt, each slider's aria-valuetext and printed value)."""
    import html as htmllib
    import itertools
    import shutil
    import subprocess

    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    page = f.to_html()
    root = re.search(r'<div id="([^"]+)" class="pgviz-frames"', page).group(1)
    inputs = []
    for tag in re.findall(r"<input [^>]*>", page):
        attrs = {k: htmllib.unescape(v) for k, v in re.findall(r'([\w-]+)="([^"]*)"', tag)}
        inputs.append(attrs)
    sizes = [len(c.values) for c in f.controls.values()]
    data = htmllib.unescape(re.search(r'<script type="application/json" id="[^"]+">(.*?)</script>',
                                      page, re.S).group(1))
    script = re.findall(r"<script>(.*?)</script>", page, re.S)[-1]
    combos = combos or [list(c) for c in itertools.product(*(range(n) for n in sizes))]
    spec = {"root": root, "inputs": inputs, "data": data, "script": script, "combos": combos}
    r = subprocess.run([node, "-e", _NODE_HARNESS], input=json.dumps(spec), capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return combos, json.loads(r.stdout)


def test_static_slider_javascript_maps_every_value_to_its_frame():
    """Every combination of slider positions shows the frame rendered for those values
    (run the page's own script in node), and each slider's max is its last index."""
    from pgviz.widgets import _shrink_png

    # three controls of different lengths: a wrong stride or an off-by-one shows up
    f = interactive(lambda fig, p, b, c: (fig.add_subplot().bar(["x", "y"], [p, b + c])),
                    {"p": [0.2, 0.4, 0.6], "b": [0.0, 0.1], "c": [0.0, 0.3, 0.5, 0.7]})
    names = list(f.controls)
    sizes = [len(f.controls[n].values) for n in names]
    inputs = re.findall(r"<input [^>]*>", f.to_html())
    assert [int(re.search(r'max="(\d+)"', t).group(1)) for t in inputs] == [n - 1 for n in sizes]
    assert [int(re.search(r'min="(\d+)"', t).group(1)) for t in inputs] == [0, 0, 0]
    combos, shown = run_static_slider(f)
    assert len(combos) == 3 * 2 * 4
    expected = {tuple(v.values()): base64.b64encode(_shrink_png(png)).decode() for v, png in f.frames()}
    assert len(set(expected.values())) == len(combos)  # every frame differs, so a mix-up shows
    for combo, got in zip(combos, shown):
        values = tuple(f.controls[n].values[i] for n, i in zip(names, combo))
        assert got["src"] == "data:image/png;base64," + expected[values], (combo, values)
        assert got["labels"] == [f.controls[n].format(v) for n, v in zip(names, values)]
        assert got["valuetext"] == got["labels"]  # aria-valuetext follows the slider
        assert int(got["frame"]) == combo[0] * 8 + combo[1] * 4 + combo[2]
        assert got["alt"] == f.alt_text(dict(zip(names, values)))


def _titled(fig, n):
    ax = fig.add_subplot()
    ax.bar(["x"], [n])
    ax.set_title(f"{n:,} samples each")


def test_static_alt_follows_the_frame_it_shows():
    """Issue 14: every frame kept the first frame's alt (ch02 at n = 10,000 said "n = 1
    samples each").  Moving the slider must change the alt to the new frame's text."""
    f = interactive(_titled, {"n": Control([1, 100, 10000], value=1, label="samples n",
                                           fmt="{:,}")})
    combos, shown = run_static_slider(f, [[2], [1], [0]])
    assert [g["alt"] for g in shown] == [
        "Figure. Panel \u201c10,000 samples each\u201d. Shown for samples n = 10,000.",
        "Figure. Panel \u201c100 samples each\u201d. Shown for samples n = 100.",
        "Figure. Panel \u201c1 samples each\u201d. Shown for samples n = 1."]
    assert [g["valuetext"] for g in shown] == [["10,000"], ["100"], ["1"]]
    # the page opens on the first value, with that frame's alt
    assert 'alt="Figure. Panel \u201c1 samples each\u201d. Shown for samples n = 1."' in f.to_html()


def test_alt_may_be_a_function_or_a_template_of_the_values():
    f = interactive(_titled, {"n": Control([1, 100], value=1)},
                    alt=lambda n: f"Bars of {n} estimates.")
    assert f.alt_text() == "Bars of 1 estimates. Shown for n = 1.00."
    assert [g["alt"] for g in run_static_slider(f)[1]] == [
        "Bars of 1 estimates. Shown for n = 1.00.", "Bars of 100 estimates. Shown for n = 100.00."]
    g = interactive(_titled, {"n": Control([1, 10000], value=1, fmt="{:,}")},
                    alt="Histogram of estimates from {n:,} samples each.")
    assert g.alt_text({"n": 10000}) == ("Histogram of estimates from 10,000 samples each. "
                                        "Shown for n = 10,000.")
    with pytest.raises(ValueError, match="names {m}"):
        interactive(_titled, {"n": [1, 2]}, alt="{m} samples")


def test_live_image_alt_and_readout_follow_the_slider():
    """In JupyterLab the live figure is an <img> whose alt says what it shows now."""
    f = interactive(_titled, {"n": Control([1, 100, 10000], value=1, label="samples n",
                                           fmt="{:,}")})
    html = f.widget.children[1].value
    assert re.search(r'<img class="pgviz-live-image" alt="Figure. Panel \S1 samples each\S. '
                     r'Shown for samples n = 1\."', html)
    f.sliders["n"].value = 10000
    html = f.widget.children[1].value
    assert 'alt="Figure. Panel \u201c10,000 samples each\u201d. Shown for samples n = 10,000."' in html
    assert "aria-valuetext" in html and "widget-readout" in html  # onload names each value

def test_static_sliders_are_labelled_and_the_image_says_what_it_shows():
    def draw(fig, p, b):
        ax = fig.add_subplot()
        ax.bar(["horse", "dog"], [p, 1 - p])
        ax.set(title="policy", xlabel="action", ylabel="probability")

    f = interactive(draw, {"p": Control([0.2, 0.4], value=0.4, label="P(horse)"), "b": [0.5]},
                    title="A policy")
    html = f.to_html()
    uid = re.search(r'class="pgviz-frames"', html) and re.search(r'id="(pgviz-[0-9a-f]+)"', html).group(1)
    # a visible <label> for the range input; the single-value control is plain text
    assert f'<label for="{uid}-s0" style="min-width:9em">P(horse)</label>' in html
    assert f'<label for="{uid}-s1"' not in html and '<span style="min-width:9em">b</span>' in html
    assert 'aria-valuetext="0.40"' in html
    want = ('Figure: A policy. Panel \u201cpolicy\u201d (x: action, y: probability). '
            'Shown for P(horse) = 0.40, b = 0.50.')
    assert f.alt_text() == want
    assert f'alt="{want}"' in html
    data = json.loads(re.search(r'type="application/json"[^>]*>(.*?)</script>', html, re.S).group(1))
    assert data["alts"][data["alt_index"][1]] == want  # the frame shown first (p = 0.40)
    # an explicit alt wins; the values are still appended
    g = interactive(lambda fig, p: draw(fig, p, 0), {"p": [0.2, 0.4]},
                    alt="Bars of P(horse) and P(dog).")
    assert g.alt_text() == "Bars of P(horse) and P(dog). Shown for p = 0.20."


def test_describe_figure_counts_pictures_and_reads_labels():
    from matplotlib.figure import Figure

    from pgviz.widgets import describe_figure

    fig = Figure()
    a, b = fig.subplots(1, 2)
    a.imshow([[0, 1], [1, 0]])
    a.set_axis_off()
    b.plot([0, 1])
    b.set_ylabel("reward")
    fig.suptitle("Horse\nand policy")
    assert describe_figure(fig) == ("Figure: Horse and policy. Panel with y: reward. "
                                    "1 more panel without titles.")
    b.set_title(r"$\pi_y = 0.9$: $\|e_a - \pi\|^2$, ${\lambda}$")
    assert describe_figure(fig).split(". ")[1] == "Panel \u201cpi_y = 0.9: |e_a - pi|^2, lambda\u201d (y: reward)"


def test_live_widget_is_marked_for_the_jupyterlab_test():
    assert "pgviz-live" in bars(0.6, None).widget._dom_classes


def test_static_html_counts_frames_not_distinct_images():
    """Planted bug: ``data-n-frames`` counted distinct pictures.  A control the drawing
    ignores repeats every picture: 2 x 2 = 4 frames of only 2 images; the page says 4, its
    index maps all 4 frames (each pair to one image), and the script shows frame 3."""
    f = interactive(lambda fig, p, unused: fig.add_subplot().bar(["x"], [p]),
                    {"p": [0.2, 0.6], "unused": [0, 1]})
    html = f.to_html()
    assert f.n_frames == 4
    assert re.search(r'class="pgviz-frames" data-frame="\d+" data-n-frames="4" ', html)
    data = json.loads(re.search(r'type="application/json"[^>]*>(.*?)</script>', html, re.S).group(1))
    assert len(data["frames"]) == 2 and data["index"] == [0, 0, 1, 1]
    _, shown = run_static_slider(f, [[1, 1]])
    assert shown[0]["frame"] == "3" and shown[0]["src"].endswith(data["frames"][1])
