"""Parallel tempering (replica exchange; Swendsen & Wang 1986, Geyer 1991) for the structure
samplers: the ladder of inverse temperatures and the exchange of neighbouring replicas.

Replica k targets ``p(D | Γ)^β_k p(Γ)``; :func:`propose_exchange` picks a neighbouring pair
k, k+1 uniformly and accepts swapping their states with probability
``min(1, exp((β_k − β_{k+1})(log p(D | Γ_{k+1}) − log p(D | Γ_k))))``, which leaves the
product of the replicas' targets invariant.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from bayesstruct._validation import check_positive_int
from bayesstruct.exceptions import InvalidArgumentError


def check_temperatures(temperatures: Any) -> list[float]:
    """Inverse temperatures of parallel tempering, the first 1 and the rest decreasing in (0, 1);
    an int n gives the geometric ladder 1, 1/2, ..., 2^-(n-1); None gives [1] (no tempering)."""
    if temperatures is None:
        return [1.0]
    if isinstance(temperatures, (int, np.integer)) and not isinstance(temperatures, bool):
        n = check_positive_int(temperatures, "temperatures")
        return [0.5**k for k in range(n)]
    try:
        betas = [float(b) for b in temperatures]
    except (TypeError, ValueError):
        betas = []
    if (not betas or betas[0] != 1.0 or any(not (0.0 < b < a) for a, b in zip(betas, betas[1:]))
            or isinstance(temperatures, (str, bytes))):
        raise InvalidArgumentError(f"`temperatures` must be a number of temperatures or a decreasing list of inverse "
                                   f"temperatures starting at 1, e.g. [1, 0.5, 0.25]; got {temperatures!r}")
    return betas


def propose_exchange(betas: Sequence[float], log_likelihoods: Sequence[float], rng: np.random.Generator) -> int | None:
    """The index ``k`` of the neighbouring pair ``(k, k+1)`` whose states are to be swapped, or
    None when the proposed exchange is rejected (or there is one temperature)."""
    if len(betas) < 2:
        return None
    k = int(rng.integers(len(betas) - 1))
    log_ratio = (betas[k] - betas[k + 1]) * (log_likelihoods[k + 1] - log_likelihoods[k])
    return k if rng.random() < math.exp(min(0.0, log_ratio)) else None  # not log(u): u can be 0.0
