"""What a trained network predicts, and how often it is right (greedy accuracy)."""
from __future__ import annotations

import torch

from .. import estimator
from ..data import DataError, normalize
from .runtime import autocast, device_settings, eval_precision

__all__ = ["check_input_size", "evaluate", "inputs_standardized", "predict"]


def inputs_standardized(model: torch.nn.Module) -> bool:
    """Whether ``model`` takes standardised images (the default) or raw [0, 1] pixels: its
    ``standardize`` attribute (:func:`pgviz.models.get_model`)."""
    return getattr(model, "standardize", True)


def check_input_size(model: torch.nn.Module, images: torch.Tensor, name: str = "") -> None:
    """Raise :class:`~pgviz.data.DataError` (one line) if ``model`` cannot take images of this
    size (the ``lenet`` and ``notebook`` networks need 32 x 32); runs one image through it in eval mode."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(normalize(images[:1].to(next(model.parameters()).device), standardize=inputs_standardized(model)))
    except RuntimeError:
        h, w = images.shape[1:3]
        raise DataError(f"model {name or type(model).__name__!r} cannot take {h}x{w} images "
                        f"(it needs 32x32); use --model fast, which takes any size") from None
    finally:
        model.train(was_training)


@torch.no_grad()
def predict(model: torch.nn.Module, images: torch.Tensor, *, batch_size: int = 1000, device=None,
            precision: str = "auto"):
    """``(probs [N, K], baseline [N])`` for uint8 NHWC ``images`` (model put in eval mode).

    The images are fed as the model was trained on them (:func:`inputs_standardized`).
    ``precision="auto"`` evaluates in **float32** everywhere (unlike training; the rule is
    :func:`~pgviz.train.runtime.eval_precision`); ``"bf16"`` asks for autocast.
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    used = eval_precision(precision)
    was_training = model.training
    model.eval()
    probs, base = [], []
    for i in range(0, len(images), batch_size):
        x = normalize(images[i:i + batch_size].to(device), standardize=inputs_standardized(model))
        with device_settings(device, used), autocast(device, used):
            out = model(x).float()
        log_probs, v = estimator.split_outputs(out)
        probs.append(log_probs.exp().cpu())
        base.append(v.cpu())
    model.train(was_training)
    return torch.cat(probs), torch.cat(base)


def evaluate(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, *,
             batch_size: int = 1000, device=None, precision: str = "auto") -> dict:
    """Greedy accuracy on ``images`` (uint8 NHWC) and ``labels`` (``precision`` as in :func:`predict`).

    Returns ``{"accuracy", "expected_reward" (mean pi(true label)), "baseline" (mean V), "n"}``.
    """
    probs, base = predict(model, images, batch_size=batch_size, device=device, precision=precision)
    labels = labels.cpu().long()
    return {
        "accuracy": (probs.argmax(1) == labels).float().mean().item(),
        "expected_reward": probs.gather(1, labels[:, None]).mean().item(),
        "baseline": base.mean().item(),
        "n": len(labels),
    }
