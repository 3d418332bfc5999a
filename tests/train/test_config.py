"""TrainConfig: every setting checked, in one line."""
import pytest

from helpers import train_config

from pgviz import data
from pgviz.train import ConfigError, train


@pytest.mark.parametrize("over, match", [
    ({"objective": "sarsa"}, "objective"), ({"lr": -1.0}, "learning rate"), ({"lr": float("nan")}, "learning rate"),
    ({"entropy_weight": -0.1}, "entropy"), ({"batch_size": 0}, "batch size"), ({"epochs": -1}, "epochs"),
    ({"model": "vgg"}, "model"), ({"device": "tpu"}, "device"),
])
def test_bad_config(tmp_path, over, match):
    with pytest.raises(ConfigError, match=match):
        train(train_config(tmp_path, **over), dataset=data.make_synthetic(16, 8))


@pytest.mark.parametrize("over, match", [
    ({"seed": "x"}, "seed"), ({"seed": 2 ** 63}, "seed"), ({"seed": -1}, "seed"),
    ({"epochs": True}, "epochs"), ({"epochs": 2.0}, "epochs"), ({"lr": "0.1"}, "learning rate|lr"),
    ({"lr": True}, "lr"), ({"batch_size": 64.0}, "batch size"), ({"augment": "yes"}, "augment"),
    ({"ema": None}, "ema"), ({"objective": 3}, "objective"), ({"out": 5}, "out"),
])
def test_bad_config_types(tmp_path, over, match):
    with pytest.raises(ConfigError, match=match):
        train_config(tmp_path, **over).validate()


def test_numpy_numbers_are_accepted(tmp_path):
    import numpy as np
    c = train_config(tmp_path, epochs=np.int64(3), lr=np.float32(0.5)).validate()
    assert type(c.epochs) is int and c.epochs == 3 and type(c.lr) is float



def test_resume_rules_keep_the_run_extend_epochs_and_reset_the_session():
    from pgviz.train import TrainConfig

    saved = {**TrainConfig(objective="rloo", options={"samples": 4}, data="synthetic", epochs=3, seed=7,
                           device="cpu", precision="bf16", out="/tmp/a").validate().__dict__}
    c = TrainConfig.resumed(saved, {"out": "/tmp/b"})
    assert (c.objective, c.options, c.seed, c.epochs) == ("rloo", {"samples": 4, "group_norm": False}, 7, 3)
    assert (c.device, c.precision, c.out) == ("auto", "auto", "/tmp/b")  # session: given or the default
    c = TrainConfig.resumed(saved, {"epochs": 5, "seed": 7, "options": {"samples": 4}, "device": "cpu"})
    assert (c.epochs, c.device) == (5, "cpu")
    for given, match in [({"seed": 8}, "--seed 8 differs from the checkpoint's 7"),
                         ({"options": {"samples": 2}}, "--samples 2 differs from the checkpoint's 4"),
                         ({"options": {"group_norm": True}}, "--group-norm differs from the checkpoint's False"),
                         ({"options": {"epsilon": 0.1}}, "--epsilon 0.1 applies to --objective value only"),
                         ({"augment": False}, "--no-augment differs"),
                         ({"data": "cifar10"}, "only --epochs, --device, --precision, --quiet and --data-dir")]:
        with pytest.raises(ConfigError, match=match):
            TrainConfig.resumed(saved, given)
    # the Python API takes the run from the checkpoint and the session from the config it is given
    mine = TrainConfig(objective="pg", epochs=9, device="cpu", out="/tmp/c")
    c = TrainConfig.resumed(saved, mine.session(), refuse=False)
    assert (c.objective, c.epochs, c.device, c.out, c.seed) == ("rloo", 9, "cpu", "/tmp/c", 7)
