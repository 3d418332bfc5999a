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
