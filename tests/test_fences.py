"""Code fences and directive fences in the chapters' Markdown are balanced.

MyST reads a backtick directive (```` ```{admonition} ````) as a CommonMark code fence:
its body runs to the first line of at least as many backticks with nothing after them.
A code block inside it that uses the *same* number of backticks therefore closes the
directive early: the rest of the body prints outside its box and the directive's own
closing fence opens an empty code block (book/05's third solution once did exactly that).
The same holds for colon fences (``:::``) nested in colon fences.

For every Markdown cell of every chapter (and every ``book/*.md``) this parses the fences
the way CommonMark does, then parses each directive's body again, and reports

* a fence that is never closed (at the top level or inside a directive's body): inside a
  directive this is the tell-tale of an inner fence that closed the outer one;
* a code block with nothing in it.

Fast and offline; the built-HTML counterpart is tests/test_built_html.py.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"

# an opening or closing fence: up to 3 spaces (relative to its container), then
# 3+ backticks, tildes or colons, then an info string
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,}|:{3,})(?P<info>.*)$")


def _opener(line: str):
    m = FENCE.match(line)
    if not m or (m["fence"][0] == "`" and "`" in m["info"]):  # ``` with a backtick in its info is not a fence
        return None
    return m


def _closes(line: str, fence: str) -> bool:
    m = FENCE.match(line)
    return bool(m and m["fence"][0] == fence[0] and len(m["fence"]) >= len(fence)
                and not m["info"].strip())


def parse_fences(lines: list[str], max_indent: int | None = 3) -> list[dict]:
    """Top-level fenced blocks of ``lines``: opening line number, fence, info, body, closed.

    ``max_indent`` limits the indentation of fences (CommonMark: 3 spaces at the top level);
    ``None`` accepts any (inside directive bodies, where list items indent code blocks).
    """
    blocks, i = [], 0
    while i < len(lines):
        m = _opener(lines[i])
        if m is None or (max_indent is not None and len(m["indent"]) > max_indent):
            i += 1
            continue
        fence, body, j, closed = m["fence"], [], i + 1, False
        while j < len(lines):
            if _closes(lines[j], fence) and (max_indent is None or len(FENCE.match(lines[j])["indent"]) <= max_indent):
                closed = True
                break
            body.append(lines[j])
            j += 1
        blocks.append({"line": i + 1, "fence": fence, "info": m["info"].strip(), "body": body,
                       "closed": closed})
        i = j + 1
    return blocks


def fence_problems(text: str) -> list[str]:
    """Problems with the fences of one Markdown text (empty list: none)."""
    problems = []

    def walk(lines, where, offset, max_indent):
        for b in parse_fences(lines, max_indent):
            line = offset + b["line"]
            is_directive = b["info"].startswith("{")
            if not b["closed"]:
                problems.append(f"line {line}: {b['fence']}{b['info']} is never closed{where}")
            if not is_directive and not "".join(b["body"]).strip():
                problems.append(f"line {line}: empty code block {b['fence']}{b['info']}{where}")
            if is_directive:
                inner = f" (inside {b['fence']}{b['info']} of line {line}: an inner fence with as many "\
                        f"{'backticks' if b['fence'][0] == '`' else 'colons'} closed it early; give the "\
                        "outer fence more)"
                walk(b["body"], inner, line, None)

    walk(text.splitlines(), "", 0, 3)
    return problems


def markdown_texts() -> list[tuple[str, str]]:
    out = []
    for path in sorted(BOOK.glob("*.ipynb")):
        for k, cell in enumerate(json.loads(path.read_text(encoding="utf-8"))["cells"]):
            if cell["cell_type"] == "markdown":
                src = cell["source"]
                out.append((f"{path.name} cell {k}", "".join(src) if isinstance(src, list) else src))
    for path in sorted(BOOK.glob("*.md")):
        out.append((path.name, path.read_text(encoding="utf-8")))
    return out


TEXTS = markdown_texts()


@pytest.mark.parametrize("where,text", TEXTS, ids=[w for w, _ in TEXTS])
def test_fences_balanced(where, text):
    problems = fence_problems(text)
    assert not problems, f"{where}:\n  " + "\n  ".join(problems)


# ---------------------------------------------------------------------------
# the checker itself
# ---------------------------------------------------------------------------
BROKEN = """\
```{admonition} Solutions
:class: dropdown

1. An answer.
2. With code:

   ```python
   x = 1
   ```

   The end of the answer.
```
"""


def test_checker_catches_an_inner_fence_closing_the_outer_one():
    problems = fence_problems(BROKEN)
    assert any("line 7: ```python is never closed (inside ```{admonition} Solutions of line 1" in p
               for p in problems), problems
    assert any("line 12" in p and "never closed" in p for p in problems), problems  # the stray closer


def test_checker_accepts_the_fixed_forms():
    four = "`" + BROKEN.replace("\n```\n", "\n````\n", 1).rstrip("\n") + "`\n"
    assert four.startswith("````{admonition}") and four.rstrip().endswith("````")
    assert fence_problems(four) == []
    colons = BROKEN.replace("```{admonition}", ":::{admonition}", 1)
    colons = colons[: colons.rstrip().rfind("```")] + ":::\n"
    assert fence_problems(colons) == []
    assert fence_problems("```{tableofcontents}\n```\n") == []          # directives may be empty
    assert fence_problems("text\n\n```python\n```\n") == ["line 3: empty code block ```python"]
