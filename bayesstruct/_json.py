"""Standard JSON (RFC 8259) for the results' ``to_json``: no NaN or infinity.

Python's ``json`` writes ``NaN`` and ``-Infinity``, which jq, JavaScript and strict parsers
refuse; a non-finite float (a NaN Pareto k, the ``log_prior`` of a structure with prior
probability 0) is written as ``null`` instead.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["dumps", "finite_or_none"]


def finite_or_none(value: Any) -> Any:
    """``value`` with every non-finite float (in nested dicts, lists and tuples) as ``None``."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    return value


def dumps(value: Any, **kwargs: Any) -> str:
    """``json.dumps`` of ``value`` as standard JSON (non-finite floats as ``null``)."""
    return json.dumps(finite_or_none(value), allow_nan=False, **kwargs)
