#!/usr/bin/env python
"""Every measured-looking number in a page's prose is printed by an output of that page.

    python scripts/check_numbers.py              # check the last build (exit 1 on a mismatch)
    python scripts/check_numbers.py --report     # list every page's unprinted numbers, exit 0
    python scripts/check_numbers.py --pending    # rewrite the "pending" lists (see below)

The book promises that every number it states is computed when it is built.  Prose is
typed by hand, so it can drift from the outputs; ``scripts/build_book.py`` runs this check
after every build and fails (exit 4) when it finds a number that no output prints.

What is checked.  The prose of a page is its notebook's Markdown cells (``book/*.ipynb``),
inline and display math included, without code (fenced blocks, inline code, roles'
targets), link targets, directive options and equation labels.  A number there is
*measured-looking* when it has a decimal point (``0.975``, ``2.7e-07``) or a unit that
marks a measurement (``48 %``, ``11 points``, ``20 seconds``, ``2.0x``); plain integers
(counts, seeds, epochs, chapter and equation numbers, years) are structure, not
measurements.  Ranges (``2.2-4.1``) are two numbers.  The outputs of a page are what
its built HTML page (``_build/html/book/*.html``) shows in its cells' output areas
(``div.cell_output``: streams, ``text/plain``, tables, Markdown), figures' alt texts
included, and every frame's alt text of its frame sliders (embedded pictures skipped).
(The build's ``jupyter_execute`` copies are not used: a page taken from the execution
cache is written there without its outputs.)  A prose number counts as printed when some output
number, read at the prose's precision, is the same (sign ignored), directly or as a
percentage (0.632 printed, "63.2 %" written).

Exceptions live in ``book/prose_numbers.yml``: per page, a number and why it need not be
printed (a version, a number quoted from a source and printed elsewhere...).  Entries whose
reason starts with ``pending`` are numbers that were printed by no output when this check
was introduced (issue 14), kept so that the book builds while the prose is fixed;
``--pending`` rewrites them from the current build (remove them as the prose is fixed).
An entry that no longer matches anything (the number left the prose, or an output prints
it now) is an error too, so the list only shrinks.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "_ext"))
from booktoc import toc_notebooks  # noqa: E402  (_ext/booktoc.py: the table of contents, read once)
ALLOWED = ROOT / "book" / "prose_numbers.yml"
HTML = ROOT / "_build" / "html"

# --------------------------------------------------------------------------- prose
_FENCE = re.compile(r"^(\s*)(`{3,}|~{3,}|:{3,})(.*)$")
# roles and inline code: {cite}`key`, {eq}`label`, `code`
_ROLE_OR_CODE = re.compile(r"(\{[\w:-]+\})?(`+)(.+?)\2", re.S)
_LINK_TARGET = re.compile(r"\]\(([^)\s]*)(\s+\"[^\"]*\")?\)")
_URL = re.compile(r"https?://\S+|www\.\S+")
_HTML_TAG = re.compile(r"<[^>]+>")
_EQ_LABEL = re.compile(r"\$\$\s*\(([^)]*)\)")
_UNITS = r"(?:\s?%|\s?\\%|\s(?:percent(?:age)?\s+points?|points?|seconds?|s|minutes?|min|hours?|h|ms)\b|\s?x\b|\s?\\times\b|\s?×)"
_NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+\.\d+(?:[eE][-+−]?\d+)?|\d+[eE][-+−]?\d+|\d+"
NUMBER = re.compile(r"(?<![\w.,])(?:" + _NUM + r")(?!(?!x\b)\w|\.\d)")  # "2.0x" is a number
MEASURED_UNIT = re.compile(_UNITS)


def prose_of(markdown: str) -> str:
    """The prose of a Markdown cell: code, link targets, options and labels removed."""
    out, fence, directives = [], None, []
    for line in markdown.splitlines():
        m = _FENCE.match(line)
        if fence is not None:  # inside a code block: skip to its closing fence
            if m and m.group(2)[0] == fence[0] and len(m.group(2)) >= len(fence) and not m.group(3).strip():
                fence = None
            continue
        if m:
            mark, info = m.group(2), m.group(3).strip()
            if not info and directives and mark[0] == directives[-1][0] and len(mark) >= len(directives[-1]):
                directives.pop()  # the end of a directive
            elif info.startswith("{") and not re.match(
                    r"\{(code|code-cell|code-block|literalinclude)\}", info):
                directives.append(mark)  # {note}, {admonition}, {math}...: their body is prose
            else:
                fence = mark  # a code block
            continue
        if re.match(r"\s*:[\w-]+:", line):  # a directive option (:label:, :class:, ...)
            continue
        out.append(line)
    text = "\n".join(out)
    text = _ROLE_OR_CODE.sub(" ", text)
    text = _LINK_TARGET.sub("]", text)
    text = _URL.sub(" ", text)
    text = _HTML_TAG.sub(" ", text)
    text = _EQ_LABEL.sub("$$", text)
    return text


@dataclass(frozen=True)
class Number:
    text: str        # as written, e.g. "0.975" or "48"
    value: float
    decimals: int
    percent: bool    # followed by a percent sign
    context: str     # the words around it

    def __str__(self) -> str:
        return self.text


def _value(token: str) -> tuple[float, int]:
    t = token.replace(",", "").replace("−", "-")
    mant = re.split(r"[eE]", t)[0]
    decimals = len(mant.split(".")[1]) if "." in mant else 0
    if re.search(r"[eE]", t):
        exp = int(re.split(r"[eE]", t)[1])
        decimals = max(0, decimals - exp)
    return float(t), decimals


_JOIN = re.compile(r"\s*(?:-|\u2013|\u2014|to|/|,|and|or)\s*$")


def measured_numbers(prose: str) -> list[Number]:
    """The measured-looking numbers of a prose text, in order.  A number in a list or
    range whose last member has a unit (``48 / 31 / 6 / 2.5 %``, ``20 to 50 seconds``)
    has that unit too."""
    found = []
    matches = list(NUMBER.finditer(prose))
    units = [MEASURED_UNIT.match(prose[m.end():m.end() + 24]) for m in matches]
    for i in range(len(matches) - 2, -1, -1):  # right to left: a unit passes leftwards
        between = prose[matches[i].end():matches[i + 1].start()]
        if not units[i] and units[i + 1] and _JOIN.match(between):
            units[i] = units[i + 1]
    for m, unit in zip(matches, units):
        token = m.group(0)
        after = prose[m.end():m.end() + 24]
        before = prose[max(0, m.start() - 1):m.start()]
        if "." not in token and not re.search(r"[eE]", token) and not unit:
            continue
        if re.fullmatch(r"\d+\.\d+", token) and re.match(r"\.\d", after):  # a version 3.11.7
            continue
        if before in ("v",) or re.search(r"(?:Python|PyTorch|torch|torchvision|version|CUDA)\s*$",
                                         prose[max(0, m.start() - 14):m.start()]):
            continue
        if re.search(r"(?:eq\.|[Ee]quations?|[Ss]ections?|\u00a7)\s*\(?$",
                     prose[max(0, m.start() - 14):m.start()]):  # an equation's number, (4.1)
            continue
        value, decimals = _value(token)
        context = " ".join(prose[max(0, m.start() - 40):m.end() + 25].split())
        found.append(Number(token, value, decimals,
                            bool(unit and "%" in unit.group(0)), context))
    return found


# --------------------------------------------------------------------------- outputs
_BASE64 = re.compile(r"data:[\w/+.-]+;base64,[A-Za-z0-9+/=]+|[A-Za-z0-9+/=]{80,}")
_OUT_NUMBER = re.compile(r"(?<![\w.])[-−]?(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d*\.\d+(?:[eE][-+]?\d+)?|\d+(?:[eE][-+]?\d+)?)")


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def html_output_texts(html: str) -> list[str]:
    """Everything the output areas of a built page show, as text: printed text, tables,
    alt texts, and each frame slider's alt for every frame (pictures left out)."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    texts = []
    for out in soup.select("div.cell_output"):
        for data in out.select('script[type="application/json"]'):
            texts.append(_BASE64.sub(" ", data.get_text()))
            data.decompose()
        for script in out.select("script, style"):
            script.decompose()
        texts += [img.get("alt", "") for img in out.select("img")]
        texts.append(out.get_text(" "))
    return texts


def printed_values(texts: list[str]) -> list[float]:
    vals = []
    for t in texts:
        for m in _OUT_NUMBER.finditer(t):
            try:
                vals.append(abs(float(m.group(0).replace(",", "").replace("−", "-"))))
            except ValueError:
                pass
    return vals


def is_printed(n: Number, printed: list[float]) -> bool:
    """Some printed number, read at the prose's precision, is ``n`` (or ``n`` %)."""
    want = abs(n.value)
    tol = 0.5 * 10 ** (-n.decimals) + 1e-12
    for x in printed:
        for c in (x, x * 100.0, x / 100.0):
            if abs(c - want) <= tol and (n.decimals > 0 or abs(c - want) < 0.5 or c == want):
                return True
    return False


# --------------------------------------------------------------------------- pages
def markdown_cells(nb: dict) -> list[str]:
    return [_text(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]


def unprinted(source_nb: dict, outputs: list[str]) -> list[Number]:
    """The measured-looking numbers of a notebook's prose that no output (``outputs``: the
    texts of its outputs) prints."""
    printed = printed_values(outputs)
    missing = []
    for md in markdown_cells(source_nb):
        for n in measured_numbers(prose_of(md)):
            if not is_printed(n, printed):
                missing.append(n)
    return missing


def load_allowed(path: Path = ALLOWED) -> dict[str, dict[str, str]]:
    if not path.is_file():
        return {}
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {page: {str(k): str(v) for k, v in (entries or {}).items()} for page, entries in data.items()}


@dataclass
class PageResult:
    page: str
    missing: list            # Number, printed by no output and not allowed
    allowed: list            # (Number, reason)
    stale: list              # allow-list entries that match nothing any more
    n_numbers: int


def check(root: Path = ROOT, html: Path | None = None,
          allowed: dict | None = None) -> list[PageResult]:
    """Check every notebook page of ``root``'s book against its built page in ``html``."""
    html = html or root / "_build" / "html"
    allowed = load_allowed(root / "book" / "prose_numbers.yml") if allowed is None else allowed
    results = []
    for src in toc_notebooks(root):
        built = html / src.relative_to(root).with_suffix(".html")
        if not built.is_file():
            raise FileNotFoundError(f"{built}: page not built (build the book first)")
        nb = json.loads(src.read_text(encoding="utf-8"))
        outputs = html_output_texts(built.read_text(encoding="utf-8"))
        page = src.stem
        allow = allowed.get(page, {})
        n_all = sum(len(measured_numbers(prose_of(md))) for md in markdown_cells(nb))
        missing, ok = [], []
        for n in unprinted(nb, outputs):
            (ok.append((n, allow[n.text])) if n.text in allow else missing.append(n))
        used = {n.text for n, _ in ok}
        stale = [k for k in allow if k not in used]
        results.append(PageResult(page, missing, ok, stale, n_all))
    return results


def failures(results: list[PageResult]) -> list[str]:
    lines = []
    for r in results:
        for n in r.missing:
            lines.append(f"{r.page}: {n.text} is printed by no output of the page (\u2026{n.context}\u2026)")
        for k in r.stale:
            lines.append(f"{r.page}: book/prose_numbers.yml lists {k}, which the prose no longer "
                         "states or an output now prints: remove it")
    return lines


def write_pending(results: list[PageResult], path: Path = ALLOWED) -> None:
    """Rewrite ``path``: keep the reasoned entries, list every other unprinted number as
    pending."""
    import yaml

    kept = {page: {k: v for k, v in e.items() if not v.startswith("pending")}
            for page, e in load_allowed(path).items()}
    for r in results:
        for n in r.missing + [n for n, reason in r.allowed if reason.startswith("pending")]:
            kept.setdefault(r.page, {})[n.text] = f"pending: printed by no output ({n.context})"
    kept = {p: e for p, e in kept.items() if e}
    head = [line for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("#")] \
        if path.is_file() else []
    body = yaml.safe_dump(kept, sort_keys=True, allow_unicode=True, width=200)
    path.write_text("\n".join(head) + ("\n" if head else "") + body, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--report", action="store_true", help="list every unprinted number; exit 0")
    ap.add_argument("--pending", action="store_true",
                    help="rewrite the pending entries of book/prose_numbers.yml from this build")
    ap.add_argument("--html", type=Path, default=None,
                    help="the built book (default _build/html)")
    args = ap.parse_args(argv)
    try:
        results = check(ROOT, args.html)
    except FileNotFoundError as exc:
        print(f"check_numbers: {exc}", file=sys.stderr)
        return 2
    if args.pending:
        write_pending(results)
        results = check(ROOT, args.html)
    if args.report:
        for r in results:
            unp = [n.text for n in r.missing] + [f"{n.text} ({why.split(':')[0]})" for n, why in r.allowed]
            print(f"{r.page}: {r.n_numbers} measured-looking numbers, {len(unp)} printed by no output"
                  + (": " + ", ".join(unp) if unp else ""))
        return 0
    bad = failures(results)
    for line in bad:
        print(line, file=sys.stderr)
    n = sum(r.n_numbers for r in results)
    pend = sum(1 for r in results for _, why in r.allowed if why.startswith("pending"))
    if bad:
        print(f"check_numbers: {len(bad)} disagreement(s) between prose and outputs "
              f"({n} numbers checked)", file=sys.stderr)
        return 1
    print(f"check_numbers: every measured-looking number of the prose is printed by an output "
          f"of its page ({n} numbers checked; {pend} pending in book/prose_numbers.yml)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
