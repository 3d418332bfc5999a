"""The book's table of contents, read once for the scripts and the tests (scripts/check_numbers.py,
tests/test_notebooks.py, test_browser.py, ...); `_ext` is on their import path."""
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

__all__ = ["toc_files", "toc_notebooks"]


def toc_files(toc_path: Path = ROOT / "_toc.yml") -> list:
    """Every ``file:`` in _toc.yml (root first, reading order), as written there."""
    import yaml

    toc = yaml.safe_load(Path(toc_path).read_text())
    files = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                files.append(entry["file"])
            walk(entry.get("sections"))
            walk(entry.get("chapters"))
            for part in entry.get("parts", []) or []:
                walk(part.get("chapters"))

    walk(toc.get("chapters"))
    for part in toc.get("parts", []) or []:
        walk(part.get("chapters"))
    return files


def toc_notebooks(root: Path = ROOT) -> list:
    """The notebooks among :func:`toc_files` of ``root``'s book, as paths (reading order)."""
    paths = [root / (f[:-len(".ipynb")] if f.endswith(".ipynb") else f) for f in toc_files(root / "_toc.yml")]
    return [p.with_name(p.name + ".ipynb") for p in paths if p.with_name(p.name + ".ipynb").is_file()]
