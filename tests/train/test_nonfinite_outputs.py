"""Network outputs that are NaN or infinite (issue 17): from the Python API a one-line
ValueError, never torch's raw "probability tensor contains either inf, nan or element < 0";
in training the run's divergence (TrainingDiverged, the last good checkpoint kept), found
with no extra device read-back (tests/train/test_syncs.py counts them)."""
import json

import pytest
import torch

from helpers import assert_finite_checkpoint, train_config

from pgviz import data, estimator, objectives
from pgviz.train import TrainingDiverged, train

LABELS = torch.tensor([1, 2, 3, 4])


def _outputs(bad: float) -> torch.Tensor:
    out = torch.randn(4, 11, generator=torch.Generator().manual_seed(0))
    out[1, 3] = bad
    return out


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("name, options", [("pg", {}), ("rloo", {"samples": 4}), ("value", {}),
                                           ("sampled-softmax", {}), ("xent", {})])
def test_objective_step_refuses_non_finite_outputs_in_one_line(name, options, bad):
    with pytest.raises(ValueError) as err:
        objectives.objective_step(name, _outputs(bad), LABELS, generator=torch.Generator().manual_seed(0), **options)
    msg = str(err.value)
    assert "\n" not in msg and "1 of the network's 44 outputs are NaN or infinite" in msg, msg
    assert "probability tensor" not in msg


@pytest.mark.parametrize("name, options", [("pg", {}), ("rloo", {"samples": 4}), ("value", {}),
                                           ("sampled-softmax", {})])
def test_the_trainer_s_step_reports_a_nan_loss_for_non_finite_outputs(name, options):
    """check_range=False (the trainer): no error, no read-back; the reported loss is NaN,
    also where the loss itself stays finite (value and sampled softmax with -inf)."""
    for bad in (float("nan"), float("-inf")):
        loss, stats = objectives.objective_step(name, _outputs(bad), LABELS, generator=torch.Generator().manual_seed(0),
                                                check_range=False, **options)
        assert torch.isnan(stats["loss"]), (name, bad, stats["loss"])
    loss, stats = objectives.objective_step(name, _outputs(0.5), LABELS, generator=torch.Generator().manual_seed(0),
                                            check_range=False, **options)
    assert torch.isfinite(stats["loss"]) and stats["loss"] == loss.detach()  # finite outputs: the loss as it is


def test_sampling_groups_from_a_nan_policy_is_one_line():
    with pytest.raises(ValueError, match="policy's probabilities are not finite") as err:
        estimator.rloo_loss(torch.full((4, 11), float("nan")), LABELS, samples=4)
    assert "\n" not in str(err.value) and "probability tensor" not in str(err.value)


def test_non_finite_outputs_in_training_are_a_divergence(tmp_path):
    """Sampled softmax never reads the last output column (the baseline head of the policy
    objectives): NaN there left its loss finite and the run went on; now it stops as
    diverged at the next logged step (CPU: every step), epoch 1 kept."""
    def poison_outputs(event):
        if event["event"] == "epoch" and event["epoch"] == 1:
            def nan_column(module, inputs, out):
                out = out.clone()
                out[:, -1] = float("nan")  # weights, gradients and the loss stay finite
                return out
            event["live_model"].register_forward_hook(nan_column)

    with pytest.raises(TrainingDiverged, match=r"loss became nan near step 3 \(epoch 2\).*last good checkpoint "
                                               r"\(epoch 1\) was kept") as err:
        train(train_config(tmp_path, objective="sampled-softmax", epochs=3), callbacks=[poison_outputs],
              dataset=data.make_synthetic(128, 32))  # 2 steps per epoch
    assert "\n" not in str(err.value)
    assert assert_finite_checkpoint(tmp_path / "checkpoint.pt")["epoch"] == 1
    rows = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    assert [r["epoch"] for r in rows if r["event"] == "epoch"] == [1]
