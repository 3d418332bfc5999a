"""CIFAR-shaped data: where it comes from, and a loader that lives on the device.

Three sources, named by one string (``--data`` on the command line, ``PGVIZ_DATA`` in
the environment):

* ``cifar10``   the full data set through :class:`torchvision.datasets.CIFAR10`,
                downloaded once into a cache directory (torchvision checks the md5 sums);
* ``PATH.npz``  a file with ``images`` (uint8, N x 32 x 32 x 3) and ``labels``; its
                ``test_images``/``test_labels`` are the test set when present, otherwise a
                fixed 20 % of it is held out (the same split whatever the training seed);
* ``synthetic`` a small learnable CIFAR-shaped set made here, deterministically.

:class:`DeviceLoader` is the fast pipeline: the whole uint8 set is moved to the device
once; shuffling (``torch.randperm``), the random flip, the pad-and-crop and the
normalisation run on whole batches there.  No per-image Python work.
"""
from __future__ import annotations

import hashlib
import math
import os
import socket
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from .download import Deadline

__all__ = [
    "CIFAR10_CLASSES", "CIFAR10_MEAN", "CIFAR10_STD", "DataError", "Dataset", "DeviceLoader",
    "augment", "canonical_source", "default_cache_dir", "default_source", "example_image", "fingerprint",
    "horse_image",
    "load_cifar10", "load_dataset", "load_eval_set", "load_npz", "make_synthetic", "normalize",
]

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck"]
# Per-channel statistics of the CIFAR-10 training set, in [0, 1] units.
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)

#: Fraction of an ``.npz`` held out as the test set when it has no ``test_images``.
TEST_FRACTION = 0.2
#: Seed of that split: fixed, independent of any training seed.
SPLIT_SEED = 20240


class DataError(ValueError):
    """A data source that cannot be used; the message is one line meant for the user."""


@dataclass
class Dataset:
    """A labelled image set split into train and test parts (all tensors on the CPU).

    ``*_images`` are uint8 ``[N, 32, 32, 3]`` (NHWC, as CIFAR-10 stores them);
    ``*_labels`` are int64 ``[N]``.
    """

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    label_names: list = field(default_factory=lambda: list(CIFAR10_CLASSES))
    source: str = ""

    @property
    def n_classes(self) -> int:
        return len(self.label_names)

    def __repr__(self) -> str:
        # a file is named, not located: no machine's path in a printed output (the full
        # path stays in ``source``)
        shown = Path(self.source).name if os.sep in self.source else self.source
        return (f"Dataset(source={shown!r}, train={len(self.train_labels)}, "
                f"test={len(self.test_labels)}, classes={self.n_classes})")


# ----------------------------------------------------------------------------
# Sources
# ----------------------------------------------------------------------------
def default_source() -> str:
    """``$PGVIZ_DATA`` when set, else ``"cifar10"``."""
    return os.environ.get("PGVIZ_DATA", "").strip() or "cifar10"


def canonical_source(source: str) -> str:
    """The name a run records for ``source``: ``cifar10`` and ``synthetic`` as they are
    (the keywords win over files of that name), anything else as an absolute path, so that
    ``./x.npz`` and ``x.npz`` are one source and ``./synthetic`` is a file, not the keyword."""
    source = str(source).strip()
    if source in ("cifar10", "synthetic"):
        return source
    if not source:  # Path("") is the current folder: never what an empty --data meant
        raise DataError("--data must be cifar10, synthetic or a path to an .npz, got an empty string")
    return str(Path(source).expanduser().absolute())


def fingerprint(ds: "Dataset") -> str:
    """A hash of a data set's images, labels and class names (hex): resuming a run on other
    data is refused by comparing it (:mod:`pgviz.train`)."""
    h = hashlib.blake2b(digest_size=16)
    for t in (ds.train_images, ds.train_labels, ds.test_images, ds.test_labels):
        t = t.contiguous().cpu()
        h.update(str((tuple(t.shape), str(t.dtype))).encode())
        h.update(t.numpy().tobytes())
    h.update("\n".join(map(str, ds.label_names)).encode())
    return h.hexdigest()


#: Seconds a whole CIFAR-10 download may take (``$PGVIZ_DOWNLOAD_TIMEOUT``; 170 MB).
DOWNLOAD_TIMEOUT = 600.0
#: Seconds the network may stay silent before a download gives up (at most the above).
SILENCE_TIMEOUT = 30.0


#: The longest ``$PGVIZ_DOWNLOAD_TIMEOUT`` accepted (a day): more is a typo, not a wait.
MAX_DOWNLOAD_TIMEOUT = 86400.0


def download_timeout() -> float:
    """``$PGVIZ_DOWNLOAD_TIMEOUT`` in seconds (default :data:`DOWNLOAD_TIMEOUT`): a finite
    number in (0, :data:`MAX_DOWNLOAD_TIMEOUT`], else :class:`DataError` (one line)."""
    text = os.environ.get("PGVIZ_DOWNLOAD_TIMEOUT", "").strip()
    if not text:
        return DOWNLOAD_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (math.isfinite(value) and 0 < value <= MAX_DOWNLOAD_TIMEOUT):
        raise DataError(f"PGVIZ_DOWNLOAD_TIMEOUT must be a number of seconds in (0, {MAX_DOWNLOAD_TIMEOUT:g}], "
                        f"got {text!r}")
    return value


def default_cache_dir() -> Path:
    """Where ``cifar10`` is downloaded: ``$PGVIZ_CACHE`` or ``~/.cache/pgviz``."""
    env = os.environ.get("PGVIZ_CACHE", "").strip()
    return Path(env).expanduser() if env else Path.home() / ".cache" / "pgviz"


def load_dataset(source: Optional[str] = None, *, data_dir=None, download: bool = True) -> Dataset:
    """Load ``source`` (``cifar10``, ``synthetic`` or a path to an ``.npz``).

    ``source=None`` means :func:`default_source` (the ``PGVIZ_DATA`` variable).
    Raises :class:`DataError` with a one-line reason when the source is unusable.
    """
    source = default_source() if source is None else str(source).strip()
    if source == "cifar10":
        return load_cifar10(data_dir, download=download)
    if source == "synthetic":
        return make_synthetic()
    if source.endswith(".npz") or os.path.exists(source) or os.sep in source or "/" in source:
        return load_npz(source)
    raise DataError(f"unknown data source {source!r}: use 'cifar10', 'synthetic' or a path to an .npz file")


def load_eval_set(source: Optional[str] = None, *, data_dir=None, download: bool = True):
    """The images a checkpoint is evaluated on: ``(images, labels, label_names)``.

    For an ``.npz`` that is *all* of its images (``images`` then ``test_images`` if any); for ``cifar10`` and ``synthetic`` it is the test set.
    """
    source = default_source() if source is None else str(source).strip()
    if source not in ("cifar10", "synthetic"):
        images, labels, names, test_images, test_labels = _read_npz(source)
        if test_images is not None:
            images, labels = torch.cat([images, test_images]), torch.cat([labels, test_labels])
        return images, labels, names
    ds = load_dataset(source, data_dir=data_dir, download=download)
    return ds.test_images, ds.test_labels, ds.label_names


def load_cifar10(root=None, *, download: bool = True) -> Dataset:
    """CIFAR-10 through :class:`torchvision.datasets.CIFAR10` (50,000 train, 10,000 test).

    A download ends within ``$PGVIZ_DOWNLOAD_TIMEOUT`` seconds (default 600) in all,
    however slowly the bytes come (:class:`pgviz.download.Deadline`), and gives up sooner
    when the network is silent for :data:`SILENCE_TIMEOUT` seconds: a message, not a hang.
    """
    from torchvision.datasets import CIFAR10

    root = Path(root).expanduser() if root is not None else default_cache_dir()
    timeout = download_timeout()
    old_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(min(timeout, SILENCE_TIMEOUT))  # torchvision's urlopen takes none of its own
    deadline = Deadline(timeout)
    try:
        with deadline:
            train = CIFAR10(str(root), train=True, download=download)
        test = CIFAR10(str(root), train=False, download=False)
    except Exception as exc:  # URLError, timeout, checksum failure, missing files, ...
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if deadline.expired:
            reason = f"the download did not finish within the {timeout:g} s of PGVIZ_DOWNLOAD_TIMEOUT"
        elif isinstance(exc, (socket.timeout, TimeoutError)) or "timed out" in reason:
            reason = f"the network did not answer within {min(timeout, SILENCE_TIMEOUT):g} s"
        raise DataError(
            f"CIFAR-10 is not available in {root} and could not be downloaded ({reason}); "
            f"offline, pass a local file instead: --data PATH.npz (or set PGVIZ_DATA=PATH.npz)"
        ) from None
    finally:
        socket.setdefaulttimeout(old_timeout)
    return Dataset(
        torch.from_numpy(np.ascontiguousarray(train.data)),
        torch.tensor(train.targets, dtype=torch.int64),
        torch.from_numpy(np.ascontiguousarray(test.data)),
        torch.tensor(test.targets, dtype=torch.int64),
        list(train.classes),
        source="cifar10",
    )


def _check_arrays(images, labels, what: str, path, n_classes: Optional[int]) -> tuple:
    if images.dtype != np.uint8:
        raise DataError(f"{path}: '{what}images' must be uint8, got {images.dtype}")
    if images.ndim != 4 or images.shape[3] != 3 or images.shape[1] < 8 or images.shape[2] < 8:
        raise DataError(f"{path}: '{what}images' must have shape (N, H, W, 3), got {images.shape}")
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise DataError(f"{path}: '{what}labels' must have shape ({images.shape[0]},), got {labels.shape}")
    if labels.dtype.kind not in "iu":
        raise DataError(f"{path}: '{what}labels' must be integers, got {labels.dtype}")
    if images.shape[0] == 0:
        raise DataError(f"{path}: '{what}images' is empty")
    top = n_classes if n_classes is not None else 10
    if labels.min() < 0 or labels.max() >= top:
        raise DataError(f"{path}: '{what}labels' must lie in 0..{top - 1}, found {labels.min()}..{labels.max()}")
    return torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(labels.astype(np.int64))


_NPZ_KEYS = ("images", "labels", "label_names", "test_images", "test_labels")


def _read_npz(path):
    """Read and validate an ``.npz``: (images, labels, names, test_images, test_labels)."""
    path = str(path)
    if not os.path.exists(path):
        raise DataError(f"data file not found: {path}")
    _check_zip(path)
    try:
        with np.load(path, allow_pickle=False) as f:  # lazy: read only the arrays used
            found = list(f.files)
            arrays = {k: f[k] for k in _NPZ_KEYS if k in found}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npz file ({type(exc).__name__})") from None
    for key in ("images", "labels"):
        if key not in arrays:
            raise DataError(f"{path}: missing array '{key}' (found: {', '.join(sorted(found)) or 'none'})")
    names = None
    if "label_names" in arrays:
        names = [str(n) for n in np.asarray(arrays["label_names"]).reshape(-1)]
        if len(names) < 2:
            raise DataError(f"{path}: 'label_names' must name at least 2 classes, found {len(names)}")
    n_classes = len(names) if names else None
    images, labels = _check_arrays(arrays["images"], arrays["labels"], "", path, n_classes)
    test_images = test_labels = None
    if "test_images" in arrays or "test_labels" in arrays:
        if not ("test_images" in arrays and "test_labels" in arrays):
            raise DataError(f"{path}: 'test_images' and 'test_labels' must come together")
        test_images, test_labels = _check_arrays(arrays["test_images"], arrays["test_labels"], "test_", path, n_classes)
        if test_images.shape[1:] != images.shape[1:]:
            raise DataError(f"{path}: 'test_images' shape {tuple(test_images.shape)} does not match 'images'")
    if names is None:
        names = list(CIFAR10_CLASSES) if int(labels.max()) < 10 else [str(i) for i in range(int(labels.max()) + 1)]
    return images, labels, names, test_images, test_labels


def heldout_split(n: int, fraction: float = TEST_FRACTION) -> tuple[torch.Tensor, torch.Tensor]:
    """Fixed ``(train_idx, test_idx)`` for ``n`` items: a permutation seeded by ``SPLIT_SEED``.

    The split never depends on the training seed, so every run and every objective is
    tested on the same held-out images.
    """
    g = torch.Generator().manual_seed(SPLIT_SEED)
    perm = torch.randperm(n, generator=g)
    n_test = max(1, int(round(n * fraction)))
    return perm[n_test:].sort().values, perm[:n_test].sort().values


def _check_zip(path) -> None:
    """An ``.npz`` is a zip archive; anything else (an ``.npy`` array renamed ``x.npz``)
    is a :class:`DataError` before numpy reads it as something else."""
    if Path(path).is_file() and not zipfile.is_zipfile(path):
        raise DataError(f"{path}: not a readable .npz file (not a zip archive: an .npy array or another file named .npz?); "
                        f"save the data with numpy.savez")


def load_npz(path) -> Dataset:
    """An ``.npz`` data set (see the module docstring for its keys)."""
    images, labels, names, test_images, test_labels = _read_npz(path)
    if test_images is None:
        if len(labels) < 2:
            raise DataError(f"{path}: needs at least 2 images to hold some out for testing")
        tr, te = heldout_split(len(labels))
        images, labels, test_images, test_labels = images[tr], labels[tr], images[te], labels[te]
    return Dataset(images, labels, test_images, test_labels, names, source=str(path))


def make_synthetic(n_train: int = 1000, n_test: int = 500, n_classes: int = 10, *,
                   size: int = 32, seed: int = 0) -> Dataset:
    """A small, learnable, CIFAR-shaped set (deterministic for a given ``seed``).

    Class ``k`` has its own mean colour and its own stripe orientation/frequency; each
    image adds a random shift of the stripes, a random brightness and pixel noise, so a
    small CNN reaches high accuracy in a few epochs but not instantly.
    """
    g = torch.Generator().manual_seed(seed)
    colours = torch.rand(n_classes, 3, generator=g) * 0.6 + 0.2
    angles = torch.arange(n_classes) * (torch.pi / n_classes)
    freqs = 0.25 + 0.5 * torch.rand(n_classes, generator=g)
    yy, xx = torch.meshgrid(torch.arange(size, dtype=torch.float32),
                            torch.arange(size, dtype=torch.float32), indexing="ij")

    def make(n):
        labels = torch.arange(n) % n_classes
        labels = labels[torch.randperm(n, generator=g)]
        phase = torch.rand(n, generator=g) * 2 * torch.pi
        proj = (torch.cos(angles[labels])[:, None, None] * xx + torch.sin(angles[labels])[:, None, None] * yy)
        stripes = torch.sin(proj * freqs[labels][:, None, None] + phase[:, None, None])  # [n, H, W]
        bright = 0.8 + 0.4 * torch.rand(n, 1, 1, 1, generator=g)
        img = colours[labels][:, None, None, :] * bright + 0.15 * stripes[..., None]
        img = img + 0.12 * torch.randn(n, size, size, 3, generator=g)
        return (img.clamp(0, 1) * 255).round().to(torch.uint8), labels.to(torch.int64)

    tr_x, tr_y = make(n_train)
    te_x, te_y = make(n_test)
    names = list(CIFAR10_CLASSES) if n_classes == 10 else [f"class{i}" for i in range(n_classes)]
    return Dataset(tr_x, tr_y, te_x, te_y, names, source="synthetic")


def example_image(class_name: str = "horse", source=None, *, dataset: Optional[Dataset] = None,
                  split: str = "test"):
    """The first image of ``split`` labelled ``class_name``: ``(uint8 HWC numpy array, index)``."""
    ds = dataset if dataset is not None else load_dataset(source)
    if class_name not in ds.label_names:
        raise DataError(f"no class {class_name!r} in {ds.label_names}")
    k = ds.label_names.index(class_name)
    images, labels = (ds.test_images, ds.test_labels) if split == "test" else (ds.train_images, ds.train_labels)
    hits = (labels == k).nonzero()
    if len(hits) == 0:
        raise DataError(f"no {class_name!r} image in the {split} set of {ds.source}")
    i = int(hits[0])
    return images[i].numpy(), i


def horse_image(source=None, *, dataset: Optional[Dataset] = None):
    """"The horse": the first test image labelled horse, as a uint8 HWC numpy array."""
    return example_image("horse", source, dataset=dataset)[0]


# The batch transforms and the loader live in pgviz.batches; imported here so that
# ``data.normalize``, ``data.augment`` and ``data.DeviceLoader`` keep working.
from .batches import DeviceLoader, augment, normalize  # noqa: E402
