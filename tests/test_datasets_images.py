"""Image data sets: scikit-learn's digits and MNIST read from local IDX gz files."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from bayesstruct.datasets import load_dataset, load_digits, load_mnist
from bayesstruct.exceptions import BayesStructError, InvalidArgumentError, UnknownNameError

MNIST_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
needs_mnist = pytest.mark.skipif(
    not MNIST_DIR.is_dir(), reason=f"MNIST IDX files not available at {MNIST_DIR} (not shipped with the repo)"
)


# --- digits ---------------------------------------------------------------------------


def test_digits_shapes_ranges_labels():
    x, y = load_digits()
    assert x.shape == (1797, 64) and x.dtype == torch.float32
    assert y.shape == (1797,) and y.dtype == torch.int64
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    assert set(y.tolist()) == set(range(10))
    img, _ = load_digits(flatten=False, num_samples=10)
    assert img.shape == (10, 1, 8, 8)
    raw, _ = load_digits(normalize=False, num_samples=50)
    assert float(raw.max()) <= 16.0 and float(raw.max()) > 1.0


def test_digits_subset_reproducible_and_validated():
    a = load_digits(num_samples=100, seed=3)
    b = load_digits(num_samples=100, seed=3)
    c = load_digits(num_samples=100, seed=4)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
    for bad in (0, -1, 1.5, 10**6):
        with pytest.raises(InvalidArgumentError, match="num_samples"):
            load_digits(num_samples=bad)


# --- MNIST on the real files ----------------------------------------------------------


@needs_mnist
def test_mnist_counts_and_range():
    x, y = load_mnist(MNIST_DIR, split="train")
    assert x.shape == (60000, 784) and x.dtype == torch.float32
    assert y.shape == (60000,) and y.dtype == torch.int64
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    xt, yt = load_mnist(MNIST_DIR, split="test", flatten=False)
    assert xt.shape == (10000, 1, 28, 28) and yt.shape == (10000,)
    # label counts documented in the data's README
    assert torch.bincount(yt, minlength=10).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@needs_mnist
def test_mnist_seeded_subset_reproducible():
    a = load_mnist(MNIST_DIR, split="test", num_samples=500, seed=1)
    b = load_mnist(MNIST_DIR, split="test", num_samples=500, seed=1)
    c = load_mnist(MNIST_DIR, split="test", num_samples=500, seed=2)
    assert a[0].shape == (500, 784) and a[1].shape == (500,)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[1], c[1])
    assert 0.0 <= float(a[0].min()) and float(a[0].max()) <= 1.0
    assert set(a[1].tolist()) <= set(range(10))


@needs_mnist
def test_load_dataset_mnist_spec():
    x, y = load_dataset("mnist:" + str(MNIST_DIR), split="test", num_samples=50)
    assert x.shape == (50, 784) and y.shape == (50,)


@needs_mnist
def test_mnist_bad_arguments():
    with pytest.raises(InvalidArgumentError, match="split"):
        load_mnist(MNIST_DIR, split="validation")
    with pytest.raises(InvalidArgumentError, match="num_samples"):
        load_mnist(MNIST_DIR, split="test", num_samples=10001)


# --- MNIST on tiny synthetic IDX files ------------------------------------------------


def _idx_images(n: int, rows: int = 28, cols: int = 28, magic: int = 0x803, seed: int = 0) -> bytes:
    data = np.random.default_rng(seed).integers(0, 256, size=(n, rows, cols), dtype=np.uint8)
    return np.array([magic, n, rows, cols], dtype=">u4").tobytes() + data.tobytes()


def _idx_labels(n: int, magic: int = 0x801) -> bytes:
    return np.array([magic, n], dtype=">u4").tobytes() + (np.arange(n) % 10).astype(np.uint8).tobytes()


def _write(directory: Path, split: str = "test", images: bytes | None = None, labels: bytes | None = None,
           sums: bool = False) -> Path:
    prefix = "t10k" if split == "test" else "train"
    files = {
        f"{prefix}-images-idx3-ubyte.gz": _idx_images(12) if images is None else images,
        f"{prefix}-labels-idx1-ubyte.gz": _idx_labels(12) if labels is None else labels,
    }
    lines = []
    for name, payload in files.items():
        (directory / name).write_bytes(gzip.compress(payload))
        lines.append(f"{hashlib.sha256((directory / name).read_bytes()).hexdigest()}  {name}")
    if sums:
        (directory / "SHA256SUMS").write_text("\n".join(lines) + "\n")
    return directory


def test_synthetic_mnist_reads(tmp_path):
    _write(tmp_path, sums=True)
    x, y = load_mnist(tmp_path, split="test")
    assert x.shape == (12, 784) and y.tolist() == [i % 10 for i in range(12)]
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    raw, _ = load_mnist(tmp_path, split="test", normalize=False, flatten=False)
    assert raw.shape == (12, 1, 28, 28) and float(raw.max()) > 1.0
    x2, _ = load_dataset(f"mnist:{tmp_path}", split="test", num_samples=5, seed=0)
    assert x2.shape == (5, 784)


def test_missing_directory(tmp_path):
    with pytest.raises(InvalidArgumentError, match="path.*does not exist"):
        load_mnist(tmp_path / "nope")


def test_missing_file_lists_contents(tmp_path):
    _write(tmp_path, split="test")
    with pytest.raises(InvalidArgumentError, match="path") as info:
        load_mnist(tmp_path, split="train")
    msg = str(info.value)
    assert "train-images-idx3-ubyte.gz" in msg and "t10k-images-idx3-ubyte.gz" in msg


def test_wrong_magic(tmp_path):
    _write(tmp_path, images=_idx_images(12, magic=0x801))
    with pytest.raises(InvalidArgumentError, match="path.*magic"):
        load_mnist(tmp_path, split="test")


def test_truncated_data(tmp_path):
    _write(tmp_path, images=_idx_images(12)[:-100])
    with pytest.raises(InvalidArgumentError, match="path.*truncated"):
        load_mnist(tmp_path, split="test")


def test_truncated_gzip(tmp_path):
    _write(tmp_path)
    f = tmp_path / "t10k-images-idx3-ubyte.gz"
    f.write_bytes(f.read_bytes()[:-50])
    with pytest.raises(InvalidArgumentError, match="path"):
        load_mnist(tmp_path, split="test")


def test_count_mismatch(tmp_path):
    _write(tmp_path, labels=_idx_labels(11))
    with pytest.raises(InvalidArgumentError, match="path.*12.*11"):
        load_mnist(tmp_path, split="test")


def test_checksum_mismatch(tmp_path):
    _write(tmp_path, sums=True)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx_labels(12)[:-1] + b"\x09"))
    with pytest.raises(InvalidArgumentError, match="path.*corrupt or different file"):
        load_mnist(tmp_path, split="test")


def test_file_path_instead_of_directory(tmp_path):
    f = tmp_path / "x.gz"
    f.write_bytes(b"")
    with pytest.raises(InvalidArgumentError, match="path.*not a directory"):
        load_mnist(f)


# --- load_dataset ---------------------------------------------------------------------


def test_load_dataset_digits():
    x, y = load_dataset("digits", num_samples=20, seed=0)
    assert x.shape == (20, 64) and y.dtype == torch.int64


def test_load_dataset_unknown():
    with pytest.raises(UnknownNameError, match="digits.*mnist:PATH"):
        load_dataset("cifar10")
    with pytest.raises(BayesStructError, match="needs a directory after 'mnist:'"):
        load_dataset("mnist:")


def test_sha256sums_written_as_dot_slash_names_are_checked(tmp_path):
    # `sha256sum ./*.gz > SHA256SUMS` writes "./NAME"; such an entry must still be checked, not skipped
    _write(tmp_path, sums=True)
    sums = tmp_path / "SHA256SUMS"
    lines = [line.replace("  ", "  ./", 1) for line in sums.read_text().splitlines()]
    sums.write_text("\n".join(lines) + "\n")
    assert load_mnist(tmp_path, split="test")[0].shape == (12, 784)
    bad = ["0" * 64 + line[64:] if "images" in line else line for line in lines]
    sums.write_text("\n".join(bad) + "\n")
    with pytest.raises(InvalidArgumentError, match="SHA256|sha256|checksum"):
        load_mnist(tmp_path, split="test")
