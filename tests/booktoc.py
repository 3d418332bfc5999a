"""The book's table of contents, read the way the tests need it (shared by several test files)."""
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


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
