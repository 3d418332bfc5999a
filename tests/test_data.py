"""Data sources and the on-device loader (no network, no ../shared needed)."""
import hashlib
import pickle
import re
import urllib.error

import numpy as np
import pytest
import torch
import torchvision.datasets.cifar as tv_cifar

from pgviz import data
from pgviz.data import DataError, DeviceLoader


# ----------------------------------------------------------------------------
# A tiny CIFAR-10 in torchvision's own on-disk format
# ----------------------------------------------------------------------------
def _write_fake_cifar(root, n_per_batch=6, n_test=8, seed=0):
    """Write cifar-10-batches-py/ as torchvision reads it; return {filename: md5}."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    md5 = {}

    def dump(name, obj):
        path = folder / name
        with open(path, "wb") as f:
            pickle.dump(obj, f)
        md5[name] = hashlib.md5(path.read_bytes()).hexdigest()

    for i in range(1, 6):
        dump(f"data_batch_{i}", {"data": rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8),
                                 "labels": [int(v) for v in rng.integers(0, 10, n_per_batch)]})
    test_labels = [int(v) for v in rng.integers(0, 10, n_test)]
    test_labels[3] = 7  # the first horse of the test set is image 3 ...
    test_labels[:3] = [0, 1, 2]  # ... because none comes before it
    dump("test_batch", {"data": rng.integers(0, 256, (n_test, 3072), dtype=np.uint8), "labels": test_labels})
    dump("batches.meta", {"label_names": list(data.CIFAR10_CLASSES)})
    return md5


@pytest.fixture
def fake_cifar(tmp_path, monkeypatch):
    """torchvision's CIFAR10 class over local files; its md5 table points at *these* files.

    torchvision verifies every file against the md5 sums in ``CIFAR10.train_list`` etc.;
    real sums cannot match fake files, so the test swaps in the fake files' own sums and
    lets torchvision's real integrity check run.  Downloading is made to fail loudly.
    """
    md5 = _write_fake_cifar(tmp_path)
    monkeypatch.setattr(tv_cifar.CIFAR10, "train_list", [[f"data_batch_{i}", md5[f"data_batch_{i}"]] for i in range(1, 6)])
    monkeypatch.setattr(tv_cifar.CIFAR10, "test_list", [["test_batch", md5["test_batch"]]])
    monkeypatch.setattr(tv_cifar.CIFAR10, "meta", {**tv_cifar.CIFAR10.meta, "md5": md5["batches.meta"]})

    def no_network(*a, **k):
        raise urllib.error.URLError("no network in tests")
    monkeypatch.setattr(tv_cifar, "download_and_extract_archive", no_network)
    return tmp_path


def test_cifar10_through_torchvision_from_local_files(fake_cifar):
    ds = data.load_dataset("cifar10", data_dir=fake_cifar)
    assert ds.train_images.shape == (30, 32, 32, 3) and ds.train_images.dtype == torch.uint8
    assert ds.test_images.shape == (8, 32, 32, 3)
    assert ds.train_labels.dtype == torch.int64 and ds.label_names == data.CIFAR10_CLASSES
    # NHWC exactly as torchvision holds it
    ref = tv_cifar.CIFAR10(str(fake_cifar), train=False)
    assert np.array_equal(ds.test_images.numpy(), ref.data)
    assert ds.test_labels.tolist() == ref.targets
    horse = data.horse_image(dataset=ds)
    assert np.array_equal(horse, ref.data[3])
    assert data.example_image("horse", dataset=ds)[1] == 3


def test_cifar10_corrupt_file_is_refused_by_checksum(fake_cifar):
    (fake_cifar / "cifar-10-batches-py" / "data_batch_2").write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"--data PATH\.npz"):
        data.load_dataset("cifar10", data_dir=fake_cifar)


def test_cifar10_offline_error_names_the_npz_way_out(tmp_path, monkeypatch):
    def offline(*a, **k):
        raise urllib.error.URLError("[Errno -2] Name or service not known")
    monkeypatch.setattr(tv_cifar, "download_and_extract_archive", offline)
    with pytest.raises(DataError) as err:
        data.load_dataset("cifar10", data_dir=tmp_path / "cache")
    msg = str(err.value)
    assert "\n" not in msg and "--data PATH.npz" in msg and "could not be downloaded" in msg


def test_default_source_follows_env(monkeypatch, tmp_path):
    monkeypatch.delenv("PGVIZ_DATA", raising=False)
    assert data.default_source() == "cifar10"
    monkeypatch.setenv("PGVIZ_DATA", "synthetic")
    assert data.default_source() == "synthetic"
    assert data.load_dataset().source == "synthetic"


# ----------------------------------------------------------------------------
# .npz files
# ----------------------------------------------------------------------------
def _npz(path, n=50, **over):
    rng = np.random.default_rng(1)
    arrays = {"images": rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8),
              "labels": (np.arange(n) % 10).astype(np.uint8),
              "label_names": np.array(data.CIFAR10_CLASSES)}
    arrays.update(over)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(path, **arrays)
    return path


def test_npz_fixed_heldout_split(tmp_path):
    p = _npz(tmp_path / "d.npz", n=50)
    a, b = data.load_dataset(str(p)), data.load_dataset(str(p))
    assert len(a.test_labels) == 10 and len(a.train_labels) == 40
    assert torch.equal(a.test_images, b.test_images)  # fixed split, whatever else happens
    torch.manual_seed(123)  # the global seed must not matter either
    c = data.load_dataset(str(p))
    assert torch.equal(a.test_images, c.test_images)
    # train and test are disjoint and together are the file
    src = np.load(p)["images"].reshape(50, -1)
    rows = {r.tobytes() for r in src}
    tr = {r.tobytes() for r in a.train_images.reshape(40, -1).numpy()}
    te = {r.tobytes() for r in a.test_images.reshape(10, -1).numpy()}
    assert not (tr & te) and (tr | te) == rows
    # eval uses every image of the file
    imgs, labels, _ = data.load_eval_set(str(p))
    assert len(labels) == 50 and np.array_equal(imgs.numpy(), np.load(p)["images"])


def test_repr_names_the_file_not_the_machines_path(tmp_path):
    """A chapter prints its Dataset: the build machine's folders must not show (issue 14)."""
    p = _npz(tmp_path / "subset.npz", n=20)
    ds = data.load_dataset(str(p))
    assert repr(ds) == "Dataset(source='subset.npz', train=16, test=4, classes=10)"
    assert str(tmp_path) not in repr(ds) and ds.source == str(p)  # the path is still kept
    assert "source='synthetic'" in repr(data.load_dataset("synthetic"))


def test_npz_with_its_own_test_set(tmp_path):
    rng = np.random.default_rng(2)
    p = _npz(tmp_path / "d.npz", n=20, test_images=rng.integers(0, 256, (7, 32, 32, 3), dtype=np.uint8),
             test_labels=np.arange(7))
    ds = data.load_dataset(str(p))
    assert len(ds.train_labels) == 20 and ds.test_labels.tolist() == list(range(7))
    assert len(data.load_eval_set(str(p))[1]) == 27


@pytest.mark.parametrize("over, match", [
    ({"images": np.zeros((10, 32, 32, 3), np.float32)}, "uint8"),
    ({"images": np.zeros((10, 3, 32, 32), np.uint8)}, "shape"),
    ({"labels": np.full(50, 10)}, r"0\.\.9"),
    ({"labels": np.full(50, -1)}, r"0\.\.9"),
    ({"labels": np.zeros(49, np.int64)}, "shape"),
    ({"labels": None}, "missing array 'labels'"),
])
def test_npz_validation(tmp_path, over, match):
    p = _npz(tmp_path / "bad.npz", **over)
    with pytest.raises(DataError, match=match) as err:
        data.load_dataset(str(p))
    assert "\n" not in str(err.value)


def test_npz_missing_and_corrupt(tmp_path):
    with pytest.raises(DataError, match="not found"):
        data.load_dataset(str(tmp_path / "nope.npz"))
    bad = tmp_path / "corrupt.npz"
    bad.write_bytes(b"PK\x03\x04 this is not a zip")
    with pytest.raises(DataError, match="not a readable"):
        data.load_dataset(str(bad))
    with pytest.raises(DataError, match="unknown data source"):
        data.load_dataset("imagenet")


# ----------------------------------------------------------------------------
# Synthetic data and the device loader
# ----------------------------------------------------------------------------
def test_synthetic_is_deterministic_and_balanced():
    a, b = data.make_synthetic(200, 100), data.make_synthetic(200, 100)
    assert torch.equal(a.train_images, b.train_images) and torch.equal(a.test_labels, b.test_labels)
    assert a.train_images.shape == (200, 32, 32, 3) and a.train_images.dtype == torch.uint8
    assert torch.bincount(a.train_labels, minlength=10).tolist() == [20] * 10
    assert not torch.equal(a.train_images, data.make_synthetic(200, 100, seed=1).train_images)
    # class means differ clearly: the set is learnable
    means = torch.stack([a.train_images[a.train_labels == k].float().mean((0, 1, 2)) for k in range(10)])
    assert torch.cdist(means, means).add(torch.eye(10) * 1e3).min() > 3


def test_normalize_is_channels_last_and_standardised():
    imgs = data.make_synthetic(64, 10).train_images
    x = data.normalize(imgs)
    assert x.shape == (64, 3, 32, 32) and x.is_contiguous(memory_format=torch.channels_last)
    m = torch.tensor(data.CIFAR10_MEAN) * 255
    s = torch.tensor(data.CIFAR10_STD) * 255
    assert torch.allclose(x[5, :, 3, 4], (imgs[5, 3, 4].float() - m) / s)


def test_augment_is_a_flip_and_a_window_of_the_padded_image():
    imgs = torch.randint(0, 256, (16, 32, 32, 3), dtype=torch.uint8)
    g = torch.Generator().manual_seed(0)
    out = data.augment(imgs, g)
    padded = torch.nn.functional.pad(imgs, (0, 0, 4, 4, 4, 4))
    flipped = 0
    for i in range(16):
        found = None
        for dy in range(9):
            for dx in range(9):
                win = padded[i, dy:dy + 32, dx:dx + 32]
                if torch.equal(out[i], win):
                    found = "plain"
                elif torch.equal(out[i], win.flip(1)):
                    found = "flip"
        assert found is not None, f"image {i} is not a (flipped) crop"
        flipped += found == "flip"
    assert 0 < flipped < 16
    assert torch.equal(data.augment(imgs, torch.Generator().manual_seed(0)), out)  # reproducible


def test_loader_covers_each_image_once_per_epoch_and_is_seeded():
    imgs = torch.arange(100, dtype=torch.uint8).view(100, 1, 1, 1).expand(100, 32, 32, 3).contiguous()
    labels = torch.arange(100)
    ld = DeviceLoader(imgs, labels, 32, augment=False, seed=3)
    assert len(ld) == 3  # drop_last while training
    seen = torch.cat([y for _, y in ld])
    assert len(seen) == 96 and len(set(seen.tolist())) == 96
    x, y = next(iter(DeviceLoader(imgs, labels, 32, augment=False, seed=3)))
    # the images travel with their labels
    m = torch.tensor(data.CIFAR10_MEAN)[0] * 255
    s = torch.tensor(data.CIFAR10_STD)[0] * 255
    assert torch.allclose(x[:, 0, 0, 0] * s + m, y.float(), atol=1e-3)
    other = next(iter(DeviceLoader(imgs, labels, 32, augment=False, seed=4)))[1]
    assert not torch.equal(y, other)
    ev = DeviceLoader(imgs, labels, 32, train=False)
    assert torch.equal(torch.cat([y for _, y in ev]), labels)  # eval: all, in order


def test_loader_state_resumes_mid_epoch_exactly():
    ds = data.make_synthetic(100, 10)
    a = DeviceLoader(ds.train_images, ds.train_labels, 16, seed=0)
    it = iter(a)
    next(it), next(it)
    state = a.state_dict()
    rest_a = [x for x, _ in it] + [x for x, _ in a]  # rest of this epoch, then a full one
    b = DeviceLoader(ds.train_images, ds.train_labels, 16, seed=99)
    b.load_state_dict(state)
    rest_b = [x for x, _ in b] + [x for x, _ in b]
    assert len(rest_a) == len(rest_b) == 4 + 6
    assert all(torch.equal(p, q) for p, q in zip(rest_a, rest_b))


# ----------------------------------------------------------------------------
# Issue 11
# ----------------------------------------------------------------------------
def test_cifar10_download_gives_up_on_a_silent_network(tmp_path, monkeypatch):
    """A server that accepts the connection and never answers: a clear error in seconds."""
    import socket
    import threading
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    held = []
    stop = threading.Event()

    def accept():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])  # ... and say nothing
            except OSError:
                pass
    t = threading.Thread(target=accept, daemon=True)
    t.start()
    monkeypatch.setattr(tv_cifar.CIFAR10, "url", f"http://127.0.0.1:{srv.getsockname()[1]}/cifar.tar.gz")
    monkeypatch.setenv("PGVIZ_DOWNLOAD_TIMEOUT", "1")
    result = []

    def load():
        try:
            data.load_dataset("cifar10", data_dir=tmp_path / "cache")
        except Exception as exc:
            result.append(exc)
    loader = threading.Thread(target=load, daemon=True)  # a hang fails the test, not the suite
    loader.start()
    loader.join(timeout=30)
    stop.set()
    t.join()
    for c in held:
        c.close()
    srv.close()
    assert not loader.is_alive(), "the download still hangs after 30 s"
    assert len(result) == 1 and isinstance(result[0], DataError), result
    msg = str(result[0])
    # the silence (a socket timeout) or the whole download's deadline, whichever comes first
    assert re.search(r"(did not answer within|did not finish within the) 1 s", msg), msg
    assert "--data PATH.npz" in msg and "\n" not in msg
    assert socket.getdefaulttimeout() is None  # restored


def test_eval_set_is_the_test_split(monkeypatch, fake_cifar):
    syn = data.make_synthetic()
    images, labels, names = data.load_eval_set("synthetic")
    assert torch.equal(images, syn.test_images) and torch.equal(labels, syn.test_labels)
    ds = data.load_dataset("cifar10", data_dir=fake_cifar)
    images, labels, names = data.load_eval_set("cifar10", data_dir=fake_cifar)
    assert torch.equal(images, ds.test_images) and torch.equal(labels, ds.test_labels)
    assert len(images) == 8 and names == data.CIFAR10_CLASSES


def test_random_crop_offsets_cover_0_to_2_pad():
    """Every offset 0..2*pad occurs in both directions (and nothing else)."""
    n, pad = 400, 4
    rows = torch.arange(1, 33, dtype=torch.uint8)
    img = torch.zeros(n, 32, 32, 3, dtype=torch.uint8)
    img[..., 0] = rows[:, None]  # channel 0: row number + 1
    img[..., 1] = rows[None, :]  # channel 1: column number + 1
    out = data.augment(img, torch.Generator().manual_seed(0), pad=pad, flip=False)

    def offsets(first_line):  # values along the first row/column of each crop
        nz = (first_line > 0).int().argmax(1)  # zeros of padding come first when offset < pad
        start = first_line[torch.arange(n), nz].long() - 1
        return (start - nz + pad).tolist()

    dy = offsets(out[:, :, 0, 0])
    dx = offsets(out[:, 0, :, 1])
    assert set(dy) == set(range(2 * pad + 1)) and set(dx) == set(range(2 * pad + 1))


def test_npz_reads_only_the_arrays_it_uses(tmp_path, monkeypatch):
    path = _npz(tmp_path / "extra.npz", huge_unused=np.zeros(10, np.float64))
    read = []
    real = np.lib.npyio.NpzFile.__getitem__
    monkeypatch.setattr(np.lib.npyio.NpzFile, "__getitem__", lambda self, k: read.append(k) or real(self, k))
    ds = data.load_npz(path)
    assert len(ds.train_labels) == 40
    assert "huge_unused" not in read and set(read) <= {"images", "labels", "label_names",
                                                        "test_images", "test_labels"}


@pytest.mark.parametrize("names", [[], ["cat"]])
def test_npz_needs_two_label_names(tmp_path, names):
    path = _npz(tmp_path / "n.npz", labels=np.zeros(50, np.uint8), label_names=np.array(names, dtype="<U5"))
    with pytest.raises(DataError, match="at least 2 classes"):
        data.load_npz(path)


def test_canonical_source_and_fingerprint(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert data.canonical_source("synthetic") == "synthetic" and data.canonical_source(" cifar10 ") == "cifar10"
    assert data.canonical_source("./x.npz") == data.canonical_source("x.npz") == str(tmp_path / "x.npz")
    assert data.canonical_source("./synthetic") == str(tmp_path / "synthetic")
    with pytest.raises(DataError, match="not found"):
        data.load_dataset("./synthetic")
    a, b = data.make_synthetic(64, 32), data.make_synthetic(64, 32)
    assert data.fingerprint(a) == data.fingerprint(b)
    b.train_images[0, 0, 0, 0] ^= 1
    assert data.fingerprint(a) != data.fingerprint(b)


def test_fingerprint_sees_every_label_and_the_class_names():
    """Planted bug: a fingerprint of the images alone lets a run resume on relabelled data.
    One label changed (in the training or the test part), or a class renamed, changes it."""
    a = data.make_synthetic(64, 32)
    base = data.fingerprint(a)
    for part in ("train_labels", "test_labels"):
        b = data.make_synthetic(64, 32)
        labels = getattr(b, part)
        labels[0] = (labels[0] + 1) % b.n_classes
        assert torch.equal(b.train_images, a.train_images) and torch.equal(b.test_images, a.test_images)
        assert data.fingerprint(b) != base, part
    c = data.make_synthetic(64, 32)
    c.label_names = [*c.label_names[:-1], "zebra"]
    assert data.fingerprint(c) != base
