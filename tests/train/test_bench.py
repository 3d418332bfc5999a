"""pgviz bench: images per second of each method in both precisions, and the ratios."""
import json
import os
import subprocess
import sys

import pytest

ENV = {**os.environ, "OMP_NUM_THREADS": "2", "OMP_WAIT_POLICY": "PASSIVE"}


def pgviz(*args):
    return subprocess.run([sys.executable, "-m", "pgviz", *map(str, args)], capture_output=True, text=True,
                          env=ENV, timeout=120)


def last_json(stdout):
    return json.loads(stdout.strip().splitlines()[-1])


def test_bench_prints_every_rate_and_the_ratios(tmp_path):
    r = pgviz("bench", "--device", "cpu", "--batch-size", 16, "--steps", 1, "--repeats", 1)
    assert r.returncode == 0, r.stderr
    res = last_json(r.stdout)
    assert set(res["images_per_second"]) == {"xent", "pg", "pg_two_backward", "pg_exact", "rloo_4", "value"}
    assert all(v > 0 for v in res["images_per_second"].values())
    assert res["ratio_pg_vs_xent"] == pytest.approx(res["images_per_second"]["pg"] / res["images_per_second"]["xent"], rel=1e-2)
    assert res["ratio_pg_vs_two_backward"] > 0
    # both precisions timed in the same run; the headline is the resolved --precision
    by = res["images_per_second_by_precision"]
    assert set(by) == {"fp32", "bf16"} and res["precision"] in by
    assert res["images_per_second"] == by[res["precision"]]
    assert res["ratio_bf16_vs_fp32"] == pytest.approx(by["bf16"]["pg"] / by["fp32"]["pg"], rel=1e-2)
    r = pgviz("bench", "--device", "cpu", "--batch-size", 8, "--steps", 1, "--repeats", 1,
              "--precision", "fp32")
    assert r.returncode == 0 and last_json(r.stdout)["precision"] == "fp32", r.stderr


def test_each_ratio_is_the_median_of_paired_rounds_with_its_spread():
    r = pgviz("bench", "--device", "cpu", "--batch-size", 8, "--steps", 1, "--repeats", 3)
    assert r.returncode == 0, r.stderr
    paired = last_json(r.stdout)["ratios_paired"]
    assert set(paired) == {"pg_vs_xent", "pg_vs_two_backward", "bf16_vs_fp32"}
    for s in paired.values():
        assert 0 < s["min"] <= s["q1"] <= s["median"] <= s["q3"] <= s["max"]


def test_bench_times_the_trainers_step_on_the_trainers_batches(monkeypatch):
    """Every registry row goes through pgviz.train.loop.train_step (the function the
    trainer's loop calls), on batches the trainer's loader made (gathered, augmented,
    normalised), with the weight average on; only pg_two_backward has its own step."""
    from pgviz import batches
    from pgviz.train import bench as bench_mod, loop

    made, augmented, calls, two = set(), [], [], []
    real_norm, real_aug, real_step, real_two = batches.normalize, batches.augment, loop.train_step, bench_mod._two_backward_step

    def norm(images, *a, **k):
        out = real_norm(images, *a, **k)
        made.add(id(out))
        return out

    def aug(images, *a, **k):
        augmented.append(len(images))
        return real_aug(images, *a, **k)

    def step(model, opt, average, x, y, **k):
        calls.append((k["objective"], id(x) in made, average is not None, k["options"]))
        return real_step(model, opt, average, x, y, **k)

    def two_step(model, opt, average, x, y, **k):
        two.append((id(x) in made, average is not None))
        return real_two(model, opt, average, x, y, **k)

    monkeypatch.setattr(batches, "normalize", norm)
    monkeypatch.setattr(batches, "augment", aug)
    monkeypatch.setattr(loop, "train_step", step)
    monkeypatch.setattr(bench_mod, "_two_backward_step", two_step)
    res = bench_mod.bench("cpu", model="lenet", batch_size=4, steps=2, repeats=1, warmup=0)
    rows = len(res["images_per_second"])
    # every (method, precision) pair ran 2 steps; all but pg_two_backward through train_step
    assert len(calls) == (rows - 1) * 2 * 2 and len(two) == 2 * 2
    assert {c[0] for c in calls} >= {"xent", "pg", "rloo"}
    assert all(fresh and averaged for _, fresh, averaged, _ in calls)
    assert all(fresh and averaged for fresh, averaged in two)
    assert augmented == [4] * (len(calls) + len(two))  # one augmentation per timed batch
    assert [c[3]["entropy_weight"] for c in calls] == [0.01] * len(calls)  # the trainer's default
    assert [c[3]["samples"] for c in calls if c[0] == "rloo"] == [4] * 4
