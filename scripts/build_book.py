#!/usr/bin/env python
"""Build the book so that it reads offline; the entry point CI calls.

    python scripts/build_book.py            # jupyter-book build . -W --keep-going
    python scripts/build_book.py --all      # extra arguments go to jupyter-book build
    python scripts/build_book.py --zip      # also write _build/pgviz-book-html.zip

Steps (from a clean clone; only the package registries are needed):

1. install MathJax 3 from the npm registry into the ignored ``.cache/npm``
   (skipped when it is already there; see ``_ext/offline_assets.py``, the
   Sphinx extension ``_config.yml`` loads, which serves it from
   ``_build/html/_static/mathjax``);
2. ``jupyter-book build . -W --keep-going`` (every chapter is executed; the
   execution cache in ``_build/.jupyter_cache`` makes unchanged rebuilds quick);
3. check the result: ``_static/mathjax/tex-chtml.js`` is there and no page or
   stylesheet loads anything from the network (script/link/img/iframe/CSS url).

``PGVIZ_DATA`` (the CIFAR-10 source for the book) defaults to
``../shared/data/cifar10-train-subset.npz`` when that file exists.
Exit status: 0 on success, non-zero if any step fails.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "_ext"))
import offline_assets  # noqa: E402  (_ext/offline_assets.py)

HTML = ROOT / "_build" / "html"


def log(msg: str) -> None:
    print(f"[build_book] {msg}", flush=True)


def check_offline(html: Path) -> list[str]:
    problems = []
    if not (html / "_static" / "mathjax" / "tex-chtml.js").is_file():
        problems.append(f"{html}/_static/mathjax/tex-chtml.js is missing")
    for rel, hits in offline_assets.find_external_resources(html).items():
        problems += [f"{rel} loads {h} from the network" for h in hits]
    return problems


def write_zip(html: Path, dest: Path) -> None:
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(html.rglob("*")):
            if path.is_file() and ".doctrees" not in path.parts:
                zf.write(path, Path("pgviz-book") / path.relative_to(html))
    log(f"wrote {dest} ({dest.stat().st_size / 1e6:.1f} MB): unzip it and open "
        "pgviz-book/index.html")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--zip", action="store_true", help="also zip _build/html for offline readers")
    ap.add_argument("--no-check", action="store_true", help="skip the post-build offline check")
    args, extra = ap.parse_known_args(argv)

    os.chdir(ROOT)
    shared = (ROOT / ".." / "shared" / "data" / "cifar10-train-subset.npz").resolve()
    if "PGVIZ_DATA" not in os.environ and shared.is_file():
        os.environ["PGVIZ_DATA"] = str(shared)
    log(f"PGVIZ_DATA={os.environ.get('PGVIZ_DATA', '(unset: pgviz default)')}")
    # Chapter kernels must use matplotlib's inline backend, or figures drawn with pyplot
    # vanish from the book; a MPLBACKEND such as Agg in the environment would override it.
    if os.environ.pop("MPLBACKEND", None):
        log("MPLBACKEND unset for the chapter kernels (figures need the inline backend)")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

    t0 = time.time()
    try:
        es5 = offline_assets.ensure_mathjax(ROOT)
    except RuntimeError as exc:
        log(f"ERROR: {exc}")
        return 2
    log(f"MathJax {offline_assets.mathjax_version(es5)} from {es5}")

    cmd = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()",
           "build", ".", "-W", "--keep-going", *extra]
    log("running: jupyter-book " + " ".join(cmd[3:]))
    rc = subprocess.call(cmd)
    if rc != 0:
        log(f"ERROR: jupyter-book build failed (exit {rc})")
        return rc
    if not args.no_check:
        problems = check_offline(HTML)
        if problems:
            log("ERROR: the built book is not self-contained:")
            for p in problems:
                print("   ", p)
            return 3
        log("offline check passed: MathJax is local, no page loads from the network")
    if args.zip:
        write_zip(HTML, ROOT / "_build" / "pgviz-book-html.zip")
    log(f"done in {time.time() - t0:.0f} s: open {HTML / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
