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
0. check that the data the chapters read (``PGVIZ_DATA``) can be loaded, and
   say so in one line if not (before any chapter runs);
1. key the execution cache on that data: a stamp of it (path, size and
   SHA-256 of a file's contents; the name of ``synthetic``/``cifar10``) is kept
   in ``_build/.pgviz-data-stamp``; when the data changes the cache
   ``_build/.jupyter_cache`` is emptied, and until a build with the new data
   finishes every page is rebuilt (``--all``), so a book never shows other
   data's outputs;
2. ``jupyter-book build . -W --keep-going`` (every chapter is executed; the
   execution cache in ``_build/.jupyter_cache`` makes unchanged rebuilds quick);
3. check the result: ``_static/mathjax/tex-chtml.js`` is there and no page or
   stylesheet loads anything from the network (script/link/img/iframe/CSS url);
4. check that prose and outputs agree: every measured-looking number in a page's
   prose is printed by an output of that page (``scripts/check_numbers.py``; its
   exceptions are ``book/prose_numbers.yml``).

``PGVIZ_DATA`` (the CIFAR-10 source for the book) defaults to
``../shared/data/cifar10-train-subset.npz`` when that file exists.
Exit status: 0 on success, 2 when the data cannot be had, 3 when the book is not
self-contained, 4 when its prose states a number that no output prints, non-zero if any
step fails.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "_ext"))
import offline_assets  # noqa: E402  (_ext/offline_assets.py)

sys.path.insert(0, str(ROOT / "scripts"))
import check_numbers  # noqa: E402  (scripts/check_numbers.py)

BUILD = ROOT / "_build"
HTML = BUILD / "html"
STAMP = ".pgviz-data-stamp"


def log(msg: str) -> None:
    print(f"[build_book] {msg}", flush=True)


def data_stamp(source: str | None) -> dict:
    """What identifies the chapters' data: a file's resolved path, size and the SHA-256 of
    its contents (not its mtime: a byte changed with the mtime put back is other data, and
    a file touched but unchanged is the same), or the name of a built-in source
    (``synthetic``, ``cifar10``: the latter with its cache)."""
    source = (source or "").strip() or "cifar10"
    if source in ("synthetic", "cifar10"):
        stamp = {"source": source}
        if source == "cifar10":
            sys.path.insert(0, str(ROOT))
            from pgviz.data import default_cache_dir
            stamp["cache"] = str(default_cache_dir().resolve())
        return stamp
    path = Path(source).expanduser().resolve()
    digest, size = hashlib.sha256(), 0
    try:
        with open(path, "rb") as f:  # the 15 MB subset hashes in about 0.05 s
            while chunk := f.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
    except OSError:
        return {"source": str(path), "missing": True}
    return {"source": str(path), "size": size, "sha256": digest.hexdigest()}


def key_cache(build: Path, stamp: dict) -> bool:
    """Key the execution cache on the data; True when every page must be rebuilt.

    ``STAMP`` names the data of the last *finished* build; ``STAMP.pending`` the data
    of a build under way (its cache entries are from that data).  Other data than
    both: the cache is emptied.  Anything but a finished build with this data: every
    page is rebuilt (Sphinx would otherwise keep pages of a build that stopped).
    """
    def read(path):
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None
    done, pending = read(build / STAMP), read(build / (STAMP + ".pending"))
    (build / STAMP).unlink(missing_ok=True)
    if stamp not in (done, pending):
        shutil.rmtree(build / ".jupyter_cache", ignore_errors=True)
    build.mkdir(parents=True, exist_ok=True)
    (build / (STAMP + ".pending")).write_text(json.dumps(stamp, sort_keys=True) + "\n")
    return done != stamp


def seal_cache(build: Path, stamp: dict) -> None:
    """The build finished: its data is the cache's key from now on."""
    build.mkdir(parents=True, exist_ok=True)
    (build / STAMP).write_text(json.dumps(stamp, sort_keys=True) + "\n")
    (build / (STAMP + ".pending")).unlink(missing_ok=True)


def check_data(source: str | None) -> str | None:
    """Load the chapters' data once; ``None`` if it works, else the one-line reason."""
    sys.path.insert(0, str(ROOT))
    from pgviz.data import DataError, load_dataset
    try:
        load_dataset(source or None)
    except DataError as exc:
        return " ".join(str(exc).split())
    return None


def check_offline(html: Path) -> list[str]:
    problems = []
    if not (html / "_static" / "mathjax" / "tex-chtml.js").is_file():
        problems.append(f"{html}/_static/mathjax/tex-chtml.js is missing")
    for rel, hits in offline_assets.find_external_resources(html).items():
        problems += [f"{rel} loads {h} from the network" for h in hits]
    return problems


def check_prose(root: Path, build: Path) -> list[str]:
    """Disagreements between the prose and the outputs of the built pages (step 4)."""
    try:
        results = check_numbers.check(root, build / "html")
    except FileNotFoundError as exc:
        return [str(exc)]
    return check_numbers.failures(results)


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
    ap.add_argument("--no-check", action="store_true",
                    help="skip the post-build checks (offline, prose numbers)")
    args, extra = ap.parse_known_args(argv)

    os.chdir(ROOT)
    shared = (ROOT / ".." / "shared" / "data" / "cifar10-train-subset.npz").resolve()
    if "PGVIZ_DATA" not in os.environ and shared.is_file():
        os.environ["PGVIZ_DATA"] = str(shared)
    given = os.environ.get("PGVIZ_DATA", "").strip()
    if given and given not in ("synthetic", "cifar10"):  # chapters run in book/: make it absolute
        os.environ["PGVIZ_DATA"] = str(Path(given).expanduser().absolute())
    log(f"PGVIZ_DATA={os.environ.get('PGVIZ_DATA', '(unset: pgviz default)')}")
    t0 = time.time()
    problem = check_data(os.environ.get("PGVIZ_DATA"))
    if problem:
        log(f"ERROR: the chapters' data cannot be loaded: {problem} (set PGVIZ_DATA to a CIFAR-shaped "
            f".npz, e.g. PGVIZ_DATA=../shared/data/cifar10-train-subset.npz, or to 'synthetic')")
        return 2
    stamp = data_stamp(os.environ.get("PGVIZ_DATA"))
    if key_cache(BUILD, stamp):
        log("no finished build with this data: every page is rebuilt (--all)")
        extra = [*extra, "--all"] if "--all" not in extra else extra
    # Chapter kernels must use matplotlib's inline backend, or figures drawn with pyplot
    # vanish from the book; a MPLBACKEND such as Agg in the environment would override it.
    if os.environ.pop("MPLBACKEND", None):
        log("MPLBACKEND unset for the chapter kernels (figures need the inline backend)")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

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
    seal_cache(BUILD, stamp)
    if not args.no_check:
        problems = check_offline(HTML)
        if problems:
            log("ERROR: the built book is not self-contained:")
            for p in problems:
                print("   ", p)
            return 3
        log("offline check passed: MathJax is local, no page loads from the network")
        t1 = time.time()
        bad = check_prose(ROOT, BUILD)
        if bad:
            log("ERROR: the prose states numbers that no output of its page prints "
                "(print them, or list them with a reason in book/prose_numbers.yml):")
            for line in bad:
                print("   ", line)
            return 4
        log(f"prose check passed: every measured-looking number is printed by an output of "
            f"its page ({time.time() - t1:.1f} s)")
    if args.zip:
        write_zip(HTML, ROOT / "_build" / "pgviz-book-html.zip")
    log(f"done in {time.time() - t0:.0f} s: open {HTML / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
