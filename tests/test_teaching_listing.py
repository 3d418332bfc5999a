"""Chapter 5's teaching listing (the article's four steps, written out) against the library.

The listing lives in ``book/05_implementation.ipynb`` as the one code cell tagged
``teaching-listing``.  This test takes that cell's source as it is, runs it on a small
synthetic batch (no data set needed) and checks that the parameter gradients it leaves
in ``.grad`` equal those of ``pgviz.estimator.pg_two_backward`` and
``pgviz.estimator.pg_loss`` for the same sampled actions.  If the listing or the library
drifts, this fails.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from pgviz import estimator, models

ROOT = Path(__file__).resolve().parent.parent
CHAPTER = ROOT / "book" / "05_implementation.ipynb"
TAG = "teaching-listing"


def listing_source() -> str:
    cells = [c for c in json.loads(CHAPTER.read_text(encoding="utf-8"))["cells"]
             if c["cell_type"] == "code" and TAG in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, f"expected one code cell tagged {TAG!r} in {CHAPTER.name}, found {len(cells)}"
    src = cells[0]["source"]
    return "".join(src) if isinstance(src, list) else src


def run_listing(src: str, seed: int = 0, batch: int = 16) -> dict:
    """Execute the listing with the names the chapter gives it (net, x, y, gen, torch, F)."""
    torch.manual_seed(seed)
    net = models.get_model("lenet")
    x = torch.randn(batch, 3, 32, 32, generator=torch.Generator().manual_seed(seed))
    y = torch.randint(0, 10, (batch,), generator=torch.Generator().manual_seed(seed + 1))
    ns = {"torch": torch, "F": F, "net": net, "x": x, "y": y,
          "gen": torch.Generator().manual_seed(seed + 2)}
    exec(compile(src, f"{CHAPTER.name}[{TAG}]", "exec"), ns)
    ns["grads"] = [p.grad.detach().clone() for p in net.parameters()]
    return ns


def library_grads(ns: dict, form: str) -> list[torch.Tensor]:
    net = ns["net"]
    net.zero_grad()
    kw = dict(actions=ns["a"], entropy_weight=ns["entropy_weight"])
    if form == "two":
        estimator.pg_two_backward(net(ns["x"]), ns["y"], **kw)
    else:
        estimator.pg_loss(net(ns["x"]), ns["y"], **kw).loss.backward()
    return [p.grad.detach().clone() for p in net.parameters()]


def same(g, h) -> bool:
    return len(g) == len(h) and all(torch.allclose(s, t, rtol=1e-5, atol=1e-7) for s, t in zip(g, h))


def test_listing_is_the_articles_four_steps_in_order():
    src = listing_source()
    code = [ln for ln in src.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    assert len(code) <= 20, f"the listing should stay short (~15 lines of code), it has {len(code)}"
    steps = [src.index(f"# {k}.") for k in (1, 2, 3, 4)]
    assert steps == sorted(steps), "the four steps must appear in the article's order"
    step2 = src[steps[1]:steps[2]]
    step3 = src[steps[2]:steps[3]]
    assert "torch.no_grad()" in step2 and "multinomial" in step2
    assert "retain_graph=True" in step3 and ".backward(" in step3
    assert "binary_cross_entropy" in src[steps[3]:] and src.count(".backward(") == 2
    assert all(len(ln) <= 72 for ln in src.splitlines())


@pytest.mark.parametrize("seed", [0, 1])
def test_listing_gradients_equal_both_library_forms(seed):
    ns = run_listing(listing_source(), seed=seed)
    assert ns["n_classes"] == 10 and ns["a"].shape == ns["y"].shape
    assert any(g.abs().sum() > 0 for g in ns["grads"])
    assert same(ns["grads"], library_grads(ns, "two"))
    assert same(ns["grads"], library_grads(ns, "one"))


def test_the_comparison_catches_a_wrong_listing():
    # flip the sign of the hand-made gradient (the article's "remember to negate this")
    src = listing_source()
    wrong = re.sub(r"\(V\.detach\(\) - R\)", "(R - V.detach())", src)
    assert wrong != src, "the listing no longer writes (V.detach() - R); update this test"
    ns = run_listing(wrong)
    assert not same(ns["grads"], library_grads(ns, "two"))
