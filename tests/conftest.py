"""Test settings shared by the suite."""
import os
import sys
from pathlib import Path

import pytest

# The book's helpers (_ext/booktoc.py reads the table of contents for the tests and scripts).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "_ext"))

# Spin-waiting OpenMP threads are 5-20x slower on a shared CPU; must be set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("MPLBACKEND", "Agg")

# The slow set (``python3 -m pytest -q -m slow``; `.ci/run` runs it after the default set).
# Whole modules: they drive Chromium or a real JupyterLab over the built book.
SLOW_MODULES = {"test_browser.py", "test_accessibility.py", "test_jupyterlab.py"}
# Single tests that start several `python -m pgviz` processes or train for many steps
# (10-100 s each on the 2-core machine); their assertions are unchanged, only when they run.
SLOW_TESTS = {
    "tests/test_cli.py::test_a_failed_write_exits_3_and_keeps_the_checkpoint",
    "tests/test_cli.py::test_bad_input_exits_2_with_one_line",
    "tests/test_cli.py::test_ctrl_c_saves_and_resume_finishes",
    "tests/test_cli.py::test_data_path_and_keyword_on_resume",
    "tests/test_cli.py::test_resume_extends_a_finished_run_and_never_overwrites_it",
    "tests/test_cli.py::test_sigterm_saves_and_exits_143",
    "tests/test_cli_signals.py::test_sigterm_during_the_final_checkpoint_write_exits_143",
    "tests/test_cli_signals.py::test_two_ctrl_c_20_ms_apart_at_the_end_exit_130",
    "tests/test_cli_signals.py::test_ctrl_c_at_any_moment_of_start_up_is_one_line_exit_130",
    "tests/test_gap.py::test_cli_probe_and_bad_input",
    "tests/test_gap.py::test_probe_recorder_during_training",
    "tests/train/test_bench.py::test_bench_prints_every_rate_and_the_ratios",
    "tests/train/test_loop.py::test_objectives_learn_synthetic",
    "tests/test_objectives.py::test_new_objectives_train_on_synthetic",
    "tests/figures/test_panel.py::test_panel_shows_no_empty_image_and_draws_from_the_first_step",
    "tests/figures/test_panel.py::test_panel_trains_and_draws",
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        base = item.nodeid.split("[")[0]
        if item.path.name in SLOW_MODULES or base in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium per test module (see tests/browsers.py); skips without one,
    fails instead when PGVIZ_BROWSER_TEST is set."""
    from browsers import launch

    with launch() as b:
        yield b


@pytest.fixture(scope="session")
def soup_of():
    """The built book's pages, each parsed once: ``soup_of("book/04_regularisation")`` (a page of
    ``PGVIZ_BOOK_HTML``, default ``_build/html``) or ``soup_of(path)``.  Skips when the book is not
    built, fails when ``PGVIZ_BROWSER_TEST`` is set (CI) or a page is missing."""
    bs4 = pytest.importorskip("bs4")
    root = Path(os.environ.get("PGVIZ_BOOK_ROOT", Path(__file__).resolve().parent.parent))
    html = Path(os.environ.get("PGVIZ_BOOK_HTML", root / "_build" / "html"))
    if not any(html.glob("book/*.html")):
        if os.environ.get("PGVIZ_BROWSER_TEST", "") not in ("", "0"):
            pytest.fail(f"PGVIZ_BROWSER_TEST is set but {html} has no built book", pytrace=False)
        pytest.skip(f"{html} not built (python scripts/build_book.py)")
    cache = {}

    def get(page):
        path = page if isinstance(page, Path) else html / f"{page}.html"
        if path not in cache:
            if not path.is_file():
                pytest.fail(f"{path} missing from the build")
            cache[path] = bs4.BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")
        return cache[path]
    return get
