"""Random state that travels between device types (a run started on a GPU, finished on a laptop).

A generator's state is device-shaped: a CUDA (Philox) generator's is 16 bytes, a CPU
(Mersenne Twister) one's 5,056.  :func:`restore_generator` loads a saved state when it fits
the generator and otherwise re-seeds it from :func:`portable_seed` ``(seed, step, stream)``,
so a resume on another device type continues (with fresh, reproducible streams) instead of
failing.  The CUDA global generator is saved and restored beside the CPU one.
"""
from __future__ import annotations

import hashlib
from typing import Optional

import torch

__all__ = ["cuda_rng_state", "portable_seed", "recorded_device", "restore_cuda_rng", "restore_generator"]

#: Bytes of a CUDA generator's state (seed and offset), as ``get_state()`` gives it.
CUDA_STATE_BYTES = 16


def portable_seed(seed: int, step: int, stream: str) -> int:
    """A 63-bit seed that depends only on the run's ``seed``, the ``step`` and the stream's name."""
    digest = hashlib.sha256(f"pgviz:{int(seed)}:{int(step)}:{stream}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def restore_generator(gen: torch.Generator, state: torch.Tensor, reseed: int) -> bool:
    """Load ``state`` into ``gen`` if it was made by a generator of the same kind (same
    size); else seed ``gen`` with ``reseed``.  True when the saved state was loaded."""
    if state is not None and state.numel() == gen.get_state().numel():
        gen.set_state(state)
        return True
    gen.manual_seed(reseed)
    return False


def recorded_device(ckpt: dict) -> Optional[str]:
    """The device type a checkpoint was written on: recorded (``device_used``), or, for an
    older checkpoint, read off its loader generator's size (16 bytes: cuda); None if unknown."""
    if ckpt.get("device_used"):
        return str(ckpt["device_used"]).split(":")[0]
    state = (ckpt.get("loader") or {}).get("generator")
    if state is None:
        return None
    return "cuda" if state.numel() == CUDA_STATE_BYTES else "cpu"


def cuda_rng_state(device: torch.device) -> Optional[torch.Tensor]:
    """The CUDA global generator's state for ``device`` (None off CUDA)."""
    if device.type != "cuda":
        return None
    return torch.cuda.get_rng_state(device)


def restore_cuda_rng(state: Optional[torch.Tensor], device: torch.device) -> None:
    """Restore the CUDA global generator when the run is on CUDA and one was saved."""
    if state is not None and device.type == "cuda":
        torch.cuda.set_rng_state(state, device)
