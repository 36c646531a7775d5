"""JSON that every parser reads: Python's ``json`` writes NaN and Infinity, which JSON has not.

A non-finite number in a result (a metric of an empty or degenerate split) is written as
``null``; nothing lstmkit writes (metrics.json, predictions, evaluate's output) holds ``NaN``.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["dumps", "finite"]


def finite(value: Any) -> Any:
    """``value`` with every non-finite float inside it (dicts, lists, tuples) replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def dumps(value: Any, **options) -> str:
    """``json.dumps`` of ``value`` with non-finite floats as null (and a refusal of any left)."""
    return json.dumps(finite(value), allow_nan=False, **options)
