"""Embedded data sets (no downloads) and user CSV files."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import torch

from bayesstruct._validation import check_positive, check_positive_int
from bayesstruct.exceptions import InvalidArgumentError, UnknownNameError

__all__ = ["sinusoid", "load_csv"]


def sinusoid(n: int = 20, noise: float = 0.3, *, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The lecture's example: ``x`` evenly spaced on [0, 1], ``y = sin(2πx) + N(0, noise²)``.

    Returns float64 tensors ``x`` and ``y`` of shape ``(n,)`` (PRML §1.1, fig. 3.14).
    """
    n = check_positive_int(n, "n")
    noise = check_positive(noise, "noise")
    rng = np.random.default_rng(seed)
    x = np.linspace(0.0, 1.0, n)
    y = np.sin(2 * math.pi * x) + noise * rng.standard_normal(n)
    return torch.as_tensor(x), torch.as_tensor(y)


def load_csv(path: str | Path, x: str, y: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Columns ``x`` and ``y`` of a CSV file with a header row, as float64 tensors."""
    path = Path(path)
    if not path.is_file():
        raise InvalidArgumentError(f"`data`: no such file {str(path)!r}")
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        columns = reader.fieldnames or []
        for arg, col in (("x", x), ("y", y)):
            if col not in columns:
                raise UnknownNameError(f"`{arg}` column {col!r} is not in {str(path)!r}; its columns are {columns}")
        xs, ys = [], []
        for lineno, row in enumerate(reader, start=2):
            try:
                xs.append(float(row[x]))
                ys.append(float(row[y]))
            except (TypeError, ValueError):
                raise InvalidArgumentError(f"{path}:{lineno}: columns {x!r}/{y!r} must be numbers; got {row[x]!r}, {row[y]!r}") from None
    if not xs:
        raise InvalidArgumentError(f"{str(path)!r} has no data rows")
    return torch.tensor(xs, dtype=torch.float64), torch.tensor(ys, dtype=torch.float64)
