"""Evaluation: greedy accuracy, float32 unless asked, the input size a network takes."""
import pytest
import torch

from helpers import train_config

from pgviz import data, models
from pgviz.train import evaluate, predict, train


def test_evaluate_matches_a_manual_count(small):
    torch.manual_seed(0)
    model = models.get_model("fast", 10)
    r = evaluate(model, small.test_images, small.test_labels, batch_size=50)
    model.eval()
    with torch.no_grad():
        pred = model(data.normalize(small.test_images))[:, :10].argmax(1)
    assert r["n"] == 128 and r["accuracy"] == pytest.approx((pred == small.test_labels).float().mean().item())
    assert model.training is False


def test_evaluation_is_fp32_unless_asked(small):
    torch.manual_seed(0)
    model = models.get_model("fast", 10)
    model.eval()
    with torch.no_grad():
        ref = torch.log_softmax(model(data.normalize(small.test_images[:32]))[:, :10].float(), 1).exp()
    probs, _ = predict(model, small.test_images[:32])  # auto: float32 on every machine
    assert torch.equal(probs, ref)
    low, _ = predict(model, small.test_images[:32], precision="bf16")
    assert not torch.equal(low, ref) and torch.allclose(low, ref, atol=0.05)


def test_lenet_model_needs_32x32_images(tmp_path):
    ds = data.make_synthetic(64, 32, size=16)
    with pytest.raises(data.DataError, match="cannot take 16x16 images"):
        train(train_config(tmp_path, model="lenet"), dataset=ds)
    assert train(train_config(tmp_path / "f", epochs=1, model="fast"), dataset=ds)["status"] == "finished"



def test_the_eval_command_evaluates_in_the_precision_asked_for(tmp_path, small, monkeypatch, capsys):
    """Planted bug: ``pgviz eval`` ignored ``--precision`` (always float32, while its line
    said bf16).  The autocast it runs under is the one asked for (auto -> fp32), the line
    records it, and bf16's numbers are not float32's."""
    import json

    from pgviz.cli import main
    from pgviz.train import evaluation

    train(train_config(tmp_path, epochs=0, model="lenet"), dataset=small)
    real, seen = evaluation.autocast, []

    def spy(device, precision="auto"):
        seen.append(precision)
        return real(device, precision)

    monkeypatch.setattr(evaluation, "autocast", spy)
    rows = {}
    for asked, used in (("fp32", "fp32"), ("bf16", "bf16"), ("auto", "fp32")):
        seen.clear()
        assert main(["eval", "--checkpoint", str(tmp_path / "checkpoint.pt"), "--data", "synthetic",
                     "--device", "cpu", "--precision", asked]) == 0
        rows[asked] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert seen and set(seen) == {used}, asked
        assert rows[asked]["precision"] == used
    assert rows["bf16"]["expected_reward"] != rows["fp32"]["expected_reward"]
    assert rows["auto"]["expected_reward"] == rows["fp32"]["expected_reward"]
