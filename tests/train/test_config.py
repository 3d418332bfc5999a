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

