"""Hygiene of the book's chapters (book/*.ipynb) and its table of contents.

* no committed outputs, execution counts or widget state (the book executes
  the chapters at build time; the repository keeps sources only);
* ``_toc.yml`` and ``book/`` agree: every toc entry exists and every chapter
  file in ``book/`` is in the toc;
* every chapter is a valid nbformat-4 notebook with a Python kernelspec, so it
  opens in JupyterLab with a double-click and runs top to bottom;
* every chapter imports ``pgviz`` and defines no function or class that shadows
  a ``pgviz`` name, nor one that looks like library logic (estimators, losses,
  training, sampling ...): small draw helpers for ``pgviz.widgets.interactive``
  and lambdas are fine.

Fast and offline: notebooks are read as JSON, code is parsed with ``ast``,
``pgviz`` is parsed, not imported.
"""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
from booktoc import toc_files

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
TOC = ROOT / "_toc.yml"
CHAPTER_SUFFIXES = (".ipynb", ".md")

# A def/class in a chapter whose name matches this is library logic in disguise,
# unless it is a drawing/UI helper (DRAW_PREFIX).
LIBRARY_LIKE = re.compile(
    r"(loss|grad|variance|estimat|sample|train|softmax|entropy|baseline|simulat|"
    r"reinforce|surrogate|backward|optimi[sz]|update_policy|policy_step)", re.I)
DRAW_PREFIX = re.compile(r"^_?(draw|plot|show|render|on_|fmt|format|label)", re.I)
# ... and it is more than a one- or two-liner (``def grads(m): return [p.grad ...]``
# is a helper; an estimator written out in a chapter is not).
MAX_HELPER_STATEMENTS = 2


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
def resolve_toc_entry(entry: str) -> Path | None:
    path = ROOT / entry
    if path.suffix in CHAPTER_SUFFIXES and path.is_file():
        return path
    for suffix in CHAPTER_SUFFIXES:
        cand = path.with_name(path.name + suffix)
        if cand.is_file():
            return cand
    return None


def chapter_files() -> list[Path]:
    return sorted(p for p in BOOK.rglob("*") if p.suffix in CHAPTER_SUFFIXES
                  and ".ipynb_checkpoints" not in p.parts and p.is_file())


def notebooks() -> list[Path]:
    return [p for p in chapter_files() if p.suffix == ".ipynb"]


def load_nb(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def cell_source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def code_to_python(src: str) -> str:
    """Cell source with IPython magics / shell escapes turned into Python."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        return TransformerManager().transform_cell(src)
    except ImportError:  # pragma: no cover - IPython ships with jupyter
        return "\n".join("" if ln.lstrip().startswith(("%", "!")) else ln
                         for ln in src.splitlines())


def pgviz_names() -> dict[str, str]:
    """Public names defined at the top level of any pgviz module (subpackages too) -> module."""
    names: dict[str, str] = {}
    for mod in sorted((ROOT / "pgviz").rglob("*.py")):
        tree = ast.parse(mod.read_text(encoding="utf-8"))
        for node in tree.body:
            found = []
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                found.append(node.name)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for t in targets:
                    if isinstance(t, ast.Name) and t.id == "__all__" and isinstance(
                            node.value, (ast.List, ast.Tuple)):
                        found += [e.value for e in node.value.elts
                                  if isinstance(e, ast.Constant) and isinstance(e.value, str)]
            for name in found:
                if not name.startswith("_"):
                    dotted = ".".join(mod.relative_to(ROOT).with_suffix("").parts)
                    names.setdefault(name, dotted.removesuffix(".__init__"))
    return names


def n_statements(node: ast.AST) -> int:
    """Statements inside a def/class body, nested ones included."""
    return sum(isinstance(n, ast.stmt) for n in ast.walk(node)) - 1


def _ids(paths):
    return [p.relative_to(ROOT).as_posix() for p in paths]


NOTEBOOKS = notebooks()


# ---------------------------------------------------------------------------
# table of contents
# ---------------------------------------------------------------------------
def test_toc_entries_exist():
    missing = [e for e in toc_files() if resolve_toc_entry(e) is None]
    assert not missing, f"_toc.yml lists files that are not in the repository: {missing}"


def test_every_chapter_is_in_toc():
    listed = {resolve_toc_entry(e) for e in toc_files()}
    extra = [p.relative_to(ROOT).as_posix() for p in chapter_files() if p not in listed]
    assert not extra, f"chapter files in book/ missing from _toc.yml: {extra}"


def test_toc_has_no_duplicates():
    files = [re.sub(r"\.(ipynb|md)$", "", f) for f in toc_files()]
    dupes = sorted({f for f in files if files.count(f) > 1})
    assert not dupes, f"_toc.yml lists these more than once: {dupes}"


# ---------------------------------------------------------------------------
# per-notebook hygiene
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_valid_and_runnable(path):
    import nbformat

    nb = nbformat.read(path, as_version=nbformat.NO_CONVERT)
    assert nb.nbformat == 4, f"{path.name}: nbformat {nb.nbformat}, expected 4"
    nbformat.validate(nb)
    ks = nb.metadata.get("kernelspec", {})
    assert ks.get("language", "python") == "python" and ks.get("name"), (
        f"{path.name}: no Python kernelspec in metadata; JupyterLab would ask for a kernel")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_no_committed_outputs(path):
    nb = load_nb(path)
    bad = []
    for k, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            if cell.get("attachments"):
                bad.append(f"cell {k}: attachments")
            continue
        if cell.get("outputs"):
            bad.append(f"cell {k}: {len(cell['outputs'])} output(s)")
        if cell.get("execution_count") is not None:
            bad.append(f"cell {k}: execution_count={cell['execution_count']}")
    if "widgets" in nb.get("metadata", {}):
        bad.append("notebook metadata holds ipywidgets state")
    assert not bad, (f"{path.name} has committed outputs (clear them: jupyter nbconvert "
                     f"--clear-output --inplace {path.relative_to(ROOT)}): {bad}")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_chapter_imports_pgviz(path):
    cells = load_nb(path)["cells"]
    if not any(c["cell_type"] == "code" for c in cells):
        return  # a text-only page (glossary, where next): nothing to run, nothing to import
    imports = set()
    for cell in cells:
        if cell["cell_type"] != "code":
            continue
        tree = ast.parse(code_to_python(cell_source(cell)))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imports |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imports.add(node.module.split(".")[0])
    assert "pgviz" in imports, f"{path.name} never imports pgviz"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_chapter_does_not_redefine_library(path):
    library = pgviz_names()
    bad = []
    for k, cell in enumerate(load_nb(path)["cells"]):
        if cell["cell_type"] != "code":
            continue
        try:
            tree = ast.parse(code_to_python(cell_source(cell)))
        except SyntaxError as exc:
            bad.append(f"cell {k}: does not parse ({exc})")
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                kind = "class" if isinstance(node, ast.ClassDef) else "def"
                name = node.name
                if name in library:
                    bad.append(f"cell {k}: {kind} {name} shadows {library[name]}.{name}")
                elif (LIBRARY_LIKE.search(name) and not DRAW_PREFIX.match(name)
                      and n_statements(node) > MAX_HELPER_STATEMENTS):
                    bad.append(f"cell {k}: {kind} {name} ({n_statements(node)} statements) "
                               "looks like library logic; move it into pgviz and import it")
                if isinstance(node, ast.ClassDef):
                    bases = [ast.unparse(b) for b in node.bases]
                    if any(b.split(".")[-1] in ("Module", "Optimizer", "Dataset") for b in bases):
                        bad.append(f"cell {k}: class {name}({', '.join(bases)}) belongs in pgviz")
            elif isinstance(node, ast.Assign):  # name = lambda ... shadowing pgviz
                for t in node.targets:
                    if (isinstance(t, ast.Name) and t.id in library
                            and isinstance(node.value, ast.Lambda)):
                        bad.append(f"cell {k}: {t.id} = lambda shadows {library[t.id]}.{t.id}")
    assert not bad, f"{path.name} redefines library code:\n  " + "\n  ".join(bad)


# ---------------------------------------------------------------------------
# the checker itself (runs even before any chapter exists)
# ---------------------------------------------------------------------------
def test_pgviz_names_found():
    names = pgviz_names()
    assert names, "no public names found in pgviz/*.py"
    assert all(not n.startswith("_") for n in names)


def test_library_like_heuristic():
    helper = ast.parse("def grads(m):\n    return [p.grad for p in m.parameters()]").body[0]
    estimator = ast.parse("def my_loss(o, y):\n    lp = o.log_softmax(-1)\n"
                          "    r = (lp.argmax(-1) == y).float()\n    return -(r * lp).mean()").body[0]
    assert n_statements(helper) <= MAX_HELPER_STATEMENTS < n_statements(estimator)
    assert LIBRARY_LIKE.search("my_pg_loss") and not DRAW_PREFIX.match("my_pg_loss")
    assert LIBRARY_LIKE.search("draw_variance") and DRAW_PREFIX.match("draw_variance")
    assert not LIBRARY_LIKE.search("draw") and not LIBRARY_LIKE.search("show_horse")
