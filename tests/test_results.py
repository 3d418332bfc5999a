"""pgviz.results: finished runs read back, summarised over seeds, and drawn (pgviz.figures.comparison)."""
import json

import numpy as np
import pytest
import torch

from pgviz import data, results
from pgviz import figures as F
from pgviz.train import train

from helpers import lenet_config

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def tiny():
    return data.make_synthetic(n_train=256, n_test=64)


_cfg = lenet_config


def test_results_summary_matches_the_runs(tiny, tmp_path):
    root = tmp_path / "compare"
    for name, objective in [("xent", "xent"), ("pg", "pg")]:
        for seed in (0, 1):
            train(_cfg(root / name / f"seed{seed}", objective=objective, seed=seed), dataset=tiny)
    # a torn line from a killed writer is ignored
    with open(root / "pg" / "seed1" / "metrics.jsonl", "a") as f:
        f.write('{"event": "epo')
    # a run still in progress (no end line) is left out unless asked for
    unfinished = root / "pg" / "seed2"
    unfinished.mkdir()
    lines = open(root / "pg" / "seed0" / "metrics.jsonl").read().splitlines()
    (unfinished / "metrics.jsonl").write_text("\n".join(l for l in lines if '"end"' not in l) + "\n")
    assert len(results.load_runs(root, finished_only=False)["pg"]) == 3
    runs = results.load_runs(root)
    assert sorted(runs) == ["pg", "xent"] and all(len(v) == 2 for v in runs.values())
    finals = {}
    for name in runs:
        finals[name] = []
        for seed in (0, 1):
            lines = [json.loads(l) for l in open(root / name / f"seed{seed}" / "metrics.jsonl") if l.startswith('{"event": "epoch"')]
            finals[name].append(lines[-1]["test_acc"])
    rows = {r["setting"]: r for r in results.summary_table(runs)}
    for name, accs in finals.items():
        assert rows[name]["test_acc_mean"] == pytest.approx(np.mean(accs))
        assert rows[name]["test_acc_std"] == pytest.approx(np.std(accs, ddof=1))
        assert rows[name]["seeds"] == 2 and rows[name]["epochs"] == 2
    assert np.isnan(rows["xent"]["entropy_final_mean"]) and 0 < rows["pg"]["entropy_final_mean"] <= np.log(10)
    run = runs["pg"][0]
    assert results.epoch_reaching(run, 0.0) == 1 and results.epoch_reaching(run, 1.01) is None
    assert results.REFERENCE_ACCURACIES == (0.552, 0.644)  # from pgviz.sources, not typed in results
    assert set(rows["pg"]["epoch_reaching_mean"]) == {0.552, 0.644}
    assert rows["pg"]["epoch_reaching_mean"][0.644] in (None, 1.0, 1.5, 2.0)
    table = results.format_table(results.summary_table(runs, order=["xent", "pg"]))
    assert table.splitlines()[2].startswith("| xent | – | 2 | 2 |")
    html = F.comparison_table(results.summary_table(runs))._repr_html_()
    assert html.count("<tr>") == 3 and f"{100 * rows['pg']['test_acc_mean']:.1f} ±" in html
    ax = F.plot_runs(runs, x="time", reference={"article": 0.552})
    assert len(ax.get_lines()) == 3


def _write_rows(folder, rows):
    folder.mkdir(parents=True)
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_a_resumed_run_is_finished_by_its_last_end_row(tmp_path):
    """Planted bug: "finished" read from the first ``end`` row.  The metrics log of a resumed
    run holds one ``end`` row per segment; only the last says whether the run is done.
    seed0: interrupted at epoch 1, resumed, finished at epoch 2 (finished).  seed1: finished
    at 2 epochs, resumed for 3 and interrupted (not finished: it was asked for 3)."""
    root = tmp_path / "compare"
    start = lambda epochs, at: {"event": "start", "seed": 0, "epochs": epochs, "resumed_from_step": at}
    epoch = lambda k: {"event": "epoch", "epoch": k, "step": 4 * k, "test_acc": 0.1 * k}
    end = lambda status, k: {"event": "end", "status": status, "epochs": k, "step": 4 * k}
    _write_rows(root / "pg" / "seed0", [start(2, None), epoch(1), end("interrupted", 1),
                                        start(2, 4), epoch(2), end("finished", 2)])
    _write_rows(root / "pg" / "seed1", [start(2, None), epoch(1), epoch(2), end("finished", 2),
                                        start(3, 8), end("interrupted", 2)])
    (run,) = results.load_runs(root)["pg"]
    assert run["end"] == end("finished", 2) and run["config"]["resumed_from_step"] == 4
    assert [e["epoch"] for e in run["epochs"]] == [1, 2]
    both = results.load_runs(root, finished_only=False)["pg"]
    assert [r["end"]["status"] for r in both] == ["finished", "interrupted"]
    assert both[1]["config"]["epochs"] == 3
