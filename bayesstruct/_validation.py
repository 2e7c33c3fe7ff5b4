"""Checks at the public boundary: each raises an error that names the argument."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from bayesstruct.exceptions import InvalidArgumentError


def as_tensor(value: Any, name: str, *, ndim: int | None = None) -> torch.Tensor:
    """Convert ``value`` to a float64 tensor, rejecting NaN/inf and wrong ranks."""
    try:
        t = torch.as_tensor(np.asarray(value, dtype=np.float64) if not torch.is_tensor(value) else value)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"`{name}` must be an array of numbers; got {type(value).__name__} ({exc})") from None
    t = t.to(torch.float64)
    if ndim is not None and t.dim() != ndim:
        raise InvalidArgumentError(f"`{name}` must be {ndim}-dimensional; got shape {tuple(t.shape)}")
    if t.numel() and not torch.isfinite(t).all():
        bad = int((~torch.isfinite(t)).sum())
        raise InvalidArgumentError(f"`{name}` contains {bad} NaN or infinite value(s); remove or impute them first")
    return t


def check_xy(x: Any, y: Any | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Validate a 1-D regression data set: finite, same length, non-empty."""
    xt = as_tensor(x, "x")
    if xt.dim() not in (1, 2):
        raise InvalidArgumentError(f"`x` must be 1-D (N,) or 2-D (N, D); got shape {tuple(xt.shape)}")
    if xt.shape[0] == 0:
        raise InvalidArgumentError("`x` is empty; at least one data point is needed")
    if y is None:
        return xt, None
    yt = as_tensor(y, "y", ndim=1)
    if yt.shape[0] != xt.shape[0]:
        raise InvalidArgumentError(
            f"`x` and `y` must have the same length; got len(x)={xt.shape[0]} and len(y)={yt.shape[0]}"
        )
    return xt, yt


def check_positive(value: Any, name: str) -> float:
    """A finite, strictly positive number (bools rejected: ``True`` is no step size)."""
    if isinstance(value, bool):
        raise InvalidArgumentError(f"`{name}` must be a positive number; got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"`{name}` must be a positive number; got {value!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise InvalidArgumentError(f"`{name}` must be a finite number > 0; got {value!r}")
    return v


def check_nonnegative(value: Any, name: str) -> float:
    """A finite number >= 0 (bools rejected)."""
    if isinstance(value, bool):
        raise InvalidArgumentError(f"`{name}` must be a finite number >= 0; got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    if not math.isfinite(v) or v < 0:
        raise InvalidArgumentError(f"`{name}` must be a finite number >= 0; got {value!r}")
    return v


def check_positive_int(value: Any, name: str, *, minimum: int = 1) -> int:
    """An integer >= ``minimum`` (bools rejected)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidArgumentError(f"`{name}` must be an integer >= {minimum}; got {value!r}")
    if value < minimum:
        raise InvalidArgumentError(f"`{name}` must be an integer >= {minimum}; got {value}")
    return int(value)


def check_gamma_pair(value: Any, name: str) -> tuple[float, float]:
    """A Gamma prior given as ``(shape, rate)``: two finite numbers > 0."""
    try:
        a, b = value
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"`{name}` must be a (shape, rate) pair of numbers > 0; got {value!r}") from None
    try:
        return check_positive(a, name), check_positive(b, name)
    except InvalidArgumentError:
        raise InvalidArgumentError(f"`{name}` must be a (shape, rate) pair of numbers > 0; got {value!r}") from None


def check_seed(seed: Any, name: str = "seed") -> int:
    """A random seed: an integer in ``[0, 2**63)`` (what ``torch.Generator.manual_seed`` and
    ``numpy.random.default_rng`` both take; bools rejected)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**63:
        raise InvalidArgumentError(f"`{name}` must be an integer in [0, 2**63); got {seed!r}")
    return int(seed)

