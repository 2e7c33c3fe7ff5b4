"""Embedded data sets (no downloads) and user CSV files."""

from __future__ import annotations

import csv
import gzip
import hashlib
import math
import os
import zlib
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from bayesstruct._validation import check_positive, check_positive_int, check_seed
from bayesstruct.exceptions import InvalidArgumentError, UnknownNameError

__all__ = ["sinusoid", "ranking_data", "load_csv", "load_mnist", "load_digits", "load_dataset"]


def _check_path(path: Any, name: str = "path") -> Path:
    if not isinstance(path, (str, os.PathLike)) or (isinstance(path, str) and not path.strip()):
        raise InvalidArgumentError(f"`{name}` must be a path (str or pathlib.Path); got {path!r}")
    return Path(path)


def sinusoid(n: int = 20, noise: float = 0.3, *, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The lecture's example: ``x`` evenly spaced on [0, 1], ``y = sin(2πx) + N(0, noise²)``.

    Returns float64 tensors ``x`` and ``y`` of shape ``(n,)`` (PRML §1.1, fig. 3.14).
    """
    n = check_positive_int(n, "n")
    noise = check_positive(noise, "noise")
    rng = np.random.default_rng(check_seed(seed))
    x = np.linspace(0.0, 1.0, n)
    y = np.sin(2 * math.pi * x) + noise * rng.standard_normal(n)
    return torch.as_tensor(x), torch.as_tensor(y)


def ranking_data(n: int = 200, noise: float = 0.3, *, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Relevance scores of a log-tf·idf ranking function, the lecture's superposition example.

    ``x[:, 0]`` is a term frequency, tf ~ Poisson(4); ``x[:, 1]`` an inverse document
    frequency, idf ~ Uniform(0, 5); ``y = log(1 + tf) · idf + N(0, noise²)`` (the "log tf ×
    idf" weight of Salton & Buckley 1988, i.e. the superposition ``mul(log1p(x0), x1)``).
    Returns float64 tensors ``x`` ``(n, 2)`` and ``y`` ``(n,)``.
    """
    n = check_positive_int(n, "n")
    noise = check_positive(noise, "noise")
    rng = np.random.default_rng(check_seed(seed))
    tf = rng.poisson(4.0, n).astype(np.float64)
    idf = rng.uniform(0.0, 5.0, n)
    y = np.log1p(tf) * idf + noise * rng.standard_normal(n)
    return torch.as_tensor(np.stack([tf, idf], axis=1)), torch.as_tensor(y)


def _check_columns(columns: Any, arg: str) -> list[str]:
    if isinstance(columns, str):
        columns = [columns]
    if isinstance(columns, (list, tuple)) and columns and all(isinstance(c, str) and c for c in columns):
        if len(set(columns)) != len(columns):
            raise InvalidArgumentError(f"`{arg}` names a column twice: {list(columns)}")
        return list(columns)
    raise InvalidArgumentError(f"`{arg}` must be a column name or a non-empty list of column names; got {columns!r}")


def load_csv(path: str | Path, x: str | Sequence[str], y: str | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Columns of a CSV file with a header row, as float64 tensors ``(x, y)``.

    ``x`` is one column name, read as an ``(N,)`` tensor, or a list of names, read as an
    ``(N, len(x))`` matrix in that order (a superposition's variables, a Bayesian network's
    nodes); ``y`` is the target column, or None for none (then the second tensor is None).
    Every value must be a finite number: a NaN or infinite entry is refused with its line.
    """
    path = _check_path(path, "data")
    names = _check_columns(x, "x")
    if y is not None:
        if not isinstance(y, str) or not y:
            raise InvalidArgumentError(f"`y` must be a column name or None; got {y!r}")
        if y in names:
            raise InvalidArgumentError(f"`y` column {y!r} is also one of the `x` columns {names}")
    if path.is_dir():
        raise InvalidArgumentError(f"`data` {str(path)!r} is a directory; give a CSV file")
    if not path.is_file():
        raise InvalidArgumentError(f"`data`: no such file {str(path)!r}")
    wanted = names + ([y] if y is not None else [])
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:  # -sig: a byte-order mark (Excel's "CSV UTF-8") is dropped
            reader = csv.DictReader(fh)
            columns = reader.fieldnames or []
            if not columns:
                raise InvalidArgumentError(f"`data` {str(path)!r} is empty; expected a header row with the column names")
            repeated = sorted({c for c in columns if columns.count(c) > 1})
            if repeated:
                raise InvalidArgumentError(f"`data` {str(path)!r}: the header names {repeated} more than once; "
                                           "each column needs its own name")
            for col in wanted:
                if col not in columns:
                    arg = "y" if col == y else "x"
                    raise UnknownNameError(f"`{arg}` column {col!r} is not in {str(path)!r}; its columns are {columns}")
            rows = []
            for row in reader:
                lineno = reader.line_num  # the file's line (csv skips blank lines; a quoted field may span several)
                if None in row:  # DictReader files surplus fields under None: a decimal comma, an unquoted comma
                    raise InvalidArgumentError(
                        f"{path}:{lineno}: {len(columns) + len(row[None])} fields, but the header names {len(columns)} "
                        "columns; quote a field that contains a comma, and write decimals with a point (1.5, not 1,5)"
                    )
                try:
                    values = [float(row[c]) for c in wanted]
                except (TypeError, ValueError):
                    raise InvalidArgumentError(f"{path}:{lineno}: columns {'/'.join(map(repr, wanted))} must be numbers; "
                                               f"got {', '.join(repr(row[c]) for c in wanted)}") from None
                if not all(math.isfinite(v) for v in values):
                    raise InvalidArgumentError(f"{path}:{lineno}: columns {'/'.join(map(repr, wanted))} must be finite "
                                               f"numbers; got {', '.join(repr(row[c]) for c in wanted)} "
                                               "(remove or impute the row)")
                rows.append(values)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InvalidArgumentError(f"`data`: {str(path)!r} is not a readable text CSV file ({exc})") from None
    if not rows:
        raise InvalidArgumentError(f"{str(path)!r} has no data rows")
    table = torch.tensor(rows, dtype=torch.float64)
    xs = table[:, 0] if isinstance(x, str) else table[:, : len(names)]
    return xs, (table[:, -1] if y is not None else None)


# ---------------------------------------------------------------------------
# Image data sets: MNIST from local IDX files, scikit-learn's 8x8 digits.
# ---------------------------------------------------------------------------

_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
_IDX_IMAGES_MAGIC = 0x00000803  # unsigned byte, 3 dimensions
_IDX_LABELS_MAGIC = 0x00000801  # unsigned byte, 1 dimension


def _check_num_samples(num_samples: Any) -> int | None:
    if num_samples is None:
        return None
    return check_positive_int(num_samples, "num_samples")


def _subset(n_total: int, num_samples: int | None, seed: int) -> np.ndarray | None:
    """Indices of a seeded random subset (sorted), or ``None`` for everything."""
    if num_samples is None:
        return None
    if num_samples > n_total:
        raise InvalidArgumentError(f"`num_samples` must be <= {n_total} (the size of the data set); got {num_samples}")
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_total, size=num_samples, replace=False))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _read_sha256sums(path: Path) -> dict[str, str]:
    """``{file name: hex digest}`` from a ``sha256sum``-style file."""
    sums: dict[str, str] = {}
    for line in path.read_text().splitlines():
        parts = line.strip().split(None, 1)
        if len(parts) != 2:
            continue
        digest, name = parts
        name = name.strip().lstrip("*")
        sums[name[2:] if name.startswith("./") else name] = digest.lower()  # `sha256sum ./*.gz` writes ./NAME
    return sums


def _read_idx(path: Path, magic: int) -> np.ndarray:
    """Parse a gzip-compressed IDX file of unsigned bytes; every problem names `path`."""
    try:
        with gzip.open(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise InvalidArgumentError(f"`path`: {str(path)!r} is not a readable gzip file ({exc}); corrupt or different file") from None
    ndim = magic & 0xFF
    header_len = 4 + 4 * ndim
    if len(raw) < 4:
        raise InvalidArgumentError(f"`path`: {str(path)!r} is too short ({len(raw)} bytes) to be an IDX file")
    got_magic = int.from_bytes(raw[:4], "big")
    if got_magic != magic:
        raise InvalidArgumentError(
            f"`path`: {str(path)!r} has IDX magic number 0x{got_magic:08x}, expected 0x{magic:08x}; "
            "corrupt or different file"
        )
    if len(raw) < header_len:
        raise InvalidArgumentError(f"`path`: {str(path)!r} is truncated inside its IDX header")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(dims, dtype=np.int64))
    got = len(raw) - header_len
    if got != expected:
        what = "truncated" if got < expected else "longer than its header says"
        raise InvalidArgumentError(
            f"`path`: {str(path)!r} is {what}: header dims {dims} need {expected} data bytes, found {got}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header_len).reshape(dims)


def load_mnist(
    path: str | Path,
    *,
    split: str = "train",
    num_samples: int | None = None,
    seed: int = 0,
    flatten: bool = True,
    normalize: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST from the four IDX gz files in directory ``path`` (never downloads).

    Returns ``(images, labels)``: float32 images of shape ``(N, 784)`` (``flatten=True``)
    or ``(N, 1, 28, 28)``, scaled to [0, 1] when ``normalize`` (else 0..255), and int64
    labels of shape ``(N,)``. ``split`` is ``"train"`` (60,000) or ``"test"`` (10,000);
    ``num_samples`` takes a random subset drawn with ``seed``. If a ``SHA256SUMS`` file
    sits next to the data, the files read are checked against it.
    """
    if not isinstance(split, str) or split not in _MNIST_FILES:
        raise InvalidArgumentError(f"`split` must be one of {sorted(_MNIST_FILES)}; got {split!r}")
    num_samples = _check_num_samples(num_samples)
    seed = check_seed(seed)
    directory = _check_path(path).expanduser()
    if not directory.is_dir():
        what = "is a file, not a directory" if directory.exists() else "does not exist"
        raise InvalidArgumentError(
            f"`path`: {str(directory)!r} {what}; give the directory holding the MNIST IDX .gz files "
            f"({', '.join(f for pair in _MNIST_FILES.values() for f in pair)})"
        )
    names = _MNIST_FILES[split]
    missing = [n for n in names if not (directory / n).is_file()]
    if missing:
        contents = sorted(p.name for p in directory.iterdir())
        raise InvalidArgumentError(
            f"`path`: {str(directory)!r} lacks the MNIST {split} file(s) {missing}; "
            f"the directory contains {contents if contents else 'nothing'}"
        )
    sums_file = directory / "SHA256SUMS"
    if sums_file.is_file():
        sums = _read_sha256sums(sums_file)
        for n in names:
            if n in sums and _sha256(directory / n) != sums[n]:
                raise InvalidArgumentError(
                    f"`path`: {str(directory / n)!r} does not match its SHA256SUMS entry; "
                    "corrupt or different file (re-copy it, or remove SHA256SUMS if the change is intended)"
                )
    images = _read_idx(directory / names[0], _IDX_IMAGES_MAGIC)
    labels = _read_idx(directory / names[1], _IDX_LABELS_MAGIC)
    if images.shape[1:] != (28, 28):
        raise InvalidArgumentError(
            f"`path`: {str(directory / names[0])!r} holds images of {images.shape[1]}x{images.shape[2]} pixels, "
            "MNIST's are 28x28; corrupt or different file"
        )
    if labels.size and int(labels.max()) > 9:
        raise InvalidArgumentError(
            f"`path`: {str(directory / names[1])!r} holds label {int(labels.max())}, MNIST's labels are 0..9; "
            "corrupt or different file"
        )
    if images.shape[0] != labels.shape[0]:
        raise InvalidArgumentError(
            f"`path`: {str(directory)!r} holds {images.shape[0]} {split} images but {labels.shape[0]} labels"
        )
    idx = _subset(images.shape[0], num_samples, seed)
    if idx is not None:
        images, labels = images[idx], labels[idx]
    return _to_tensors(images, labels, scale=255.0, flatten=flatten, normalize=normalize)


def _to_tensors(
    images: np.ndarray, labels: np.ndarray, *, scale: float, flatten: bool, normalize: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    n, h, w = images.shape
    x = images.astype(np.float32)
    if normalize:
        x /= np.float32(scale)
    x = x.reshape(n, h * w) if flatten else x.reshape(n, 1, h, w)
    return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(labels.astype(np.int64))


def load_digits(
    *, num_samples: int | None = None, seed: int = 0, flatten: bool = True, normalize: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's bundled 8x8 handwritten digits (1,797 images, no download).

    Returns float32 images ``(N, 64)`` or ``(N, 1, 8, 8)``, in [0, 1] when ``normalize``
    (pixel values 0..16 divided by 16), and int64 labels 0..9.
    """
    num_samples = _check_num_samples(num_samples)
    seed = check_seed(seed)
    try:
        from sklearn.datasets import load_digits as _sk_load_digits
    except ImportError:
        raise InvalidArgumentError("load_digits needs scikit-learn: pip install scikit-learn (the `digits` extra)") from None
    bunch = _sk_load_digits()
    images = np.asarray(bunch.images)
    labels = np.asarray(bunch.target)
    idx = _subset(images.shape[0], num_samples, seed)
    if idx is not None:
        images, labels = images[idx], labels[idx]
    return _to_tensors(images, labels, scale=16.0, flatten=flatten, normalize=normalize)


_DATASET_FORMS = '"digits", "mnist:PATH" (PATH: directory of the MNIST IDX .gz files)'


def load_dataset(spec: str, **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Resolve a data-set spec as written on the command line.

    ``"digits"`` -> :func:`load_digits`; ``"mnist:PATH"`` -> :func:`load_mnist` on the
    directory ``PATH``. ``kwargs`` (``split``, ``num_samples``, ``seed``, ...) are passed on.
    """
    if not isinstance(spec, str):
        raise UnknownNameError(f"data set spec must be a string, one of {_DATASET_FORMS}; got {spec!r}")
    name, sep, rest = spec.partition(":")
    key = name.strip().lower()
    allowed = {"digits": ("num_samples", "seed", "flatten", "normalize"),
               "mnist": ("split", "num_samples", "seed", "flatten", "normalize")}.get(key, ())
    unknown = sorted(set(kwargs) - set(allowed))
    if allowed and unknown:
        raise InvalidArgumentError(f"unknown option(s) {unknown} for data set {key!r}; valid options are {list(allowed)}")
    if key == "digits" and not sep:
        return load_digits(**kwargs)
    if key == "mnist":
        if not rest.strip():
            raise InvalidArgumentError(f"data set {spec!r} needs a directory after 'mnist:', e.g. 'mnist:data/mnist'")
        try:
            return load_mnist(rest.strip(), **kwargs)
        except InvalidArgumentError as exc:  # name the spec the user wrote, not load_mnist's argument
            message = str(exc)
            if message.startswith("`path`: "):
                raise InvalidArgumentError(f"data set {spec!r}: " + message[len("`path`: "):]) from None
            raise
    raise UnknownNameError(f"unknown data set {spec!r}; valid forms are {_DATASET_FORMS}")
