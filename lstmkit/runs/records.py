"""What the ``predict`` records of every task share: their base schema, and the checks and
messages that the CLI, the server and the tasks give for a bad record."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from pydantic import BaseModel, StrictFloat, ValidationError
from torch import Tensor

__all__ = ["Record", "Number", "frames", "finite_float32", "standardised", "excerpt", "problems"]

_FLOAT32_MAX = float(np.finfo(np.float32).max)

#: A number in a record: a JSON integer or float; ``true`` and ``"1"`` are refused, not read as 1.
Number = StrictFloat


class Record(BaseModel):
    """Base of the ``predict`` schemas: fields it does not know are ignored (a labelled record
    predicts too), NaN and infinities are refused; ``EXAMPLE`` shows the shape."""

    model_config = {"extra": "ignore", "allow_inf_nan": False}
    EXAMPLE: ClassVar[str] = "{...}"


def frames(value: object, where: str, *, width: int | None = None, step: str = "frame") -> np.ndarray:
    """``value``, a list of ``step``s each a list of numbers, as a float64 array (T, F): at least
    one step, every one with ``width`` (or the same number, at least 1 of) features, every value a
    JSON number (not a boolean, not a string), finite and within float32's range as given, before
    any scaling can absorb it. A ``ValueError`` names ``where`` and what is wrong."""
    if not isinstance(value, list) or not value or not all(isinstance(f, list) for f in value):
        raise ValueError(f"{where}: expected a list of {step}s, each a list of numbers, got {excerpt(value, 80)}")
    widths = sorted({len(f) for f in value})
    if widths[0] == 0 or len(widths) > 1 or (width is not None and widths != [width]):
        wanted = f"{width} features" if width is not None else "the same number (>= 1) of features"
        raise ValueError(f"{where}: expected every {step} with {wanted}, got {step}s of {widths} features")
    for t, f in enumerate(value):
        for i, v in enumerate(f):
            if type(v) not in (int, float):
                raise ValueError(f"{where}: expected numbers, got {excerpt(v, 40)} ({type(v).__name__}) at "
                                 f"{step} {t} feature {i}")
    array = np.asarray(value, dtype=np.float64)
    bad = ~np.isfinite(array) | (np.abs(array) > _FLOAT32_MAX)
    if bad.any():
        t, i = (int(k) for k in np.argwhere(bad)[0])
        raise ValueError(f"{where}: expected finite numbers within float32's range (|x| <= {_FLOAT32_MAX:.4g}), "
                         f"got {float(array[t, i])!r} at {step} {t} feature {i}")
    return array


def finite_float32(values, where: str) -> Tensor:
    """``values`` (already scaled for the model) as a float32 tensor; a ``ValueError`` naming
    ``where`` and the first bad position when one is NaN, infinite or beyond float32's range (an
    input of 1e308 would otherwise become inf in the model and NaN in its output)."""
    array = np.asarray(values, dtype=np.float64)
    bad = ~np.isfinite(array) | (np.abs(array) > _FLOAT32_MAX)
    if bad.any():
        at = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{where}: expected finite numbers within float32's range after scaling, got "
                         f"{array[at]!r} at position {at if len(at) > 1 else at[0]}")
    return torch.from_numpy(array.astype(np.float32))


def standardised(x, mean, std, where: str) -> Tensor:
    """``(x - mean) / std`` (per feature) as the float32 tensor a model reads, checked as
    :func:`finite_float32` checks it."""
    return finite_float32((np.asarray(x, dtype=np.float64) - np.asarray(mean)) / np.asarray(std), where)


def excerpt(value: object, limit: int = 100) -> str:
    """``repr(value)`` cut to ``limit`` characters: an error quotes a bad record, never all of it."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def problems(error: ValidationError, limit: int | None = None) -> str:
    """A pydantic error as ``field: message; ...`` (the first ``limit`` problems)."""
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'record'}: {e['msg']}" for e in error.errors()[:limit])
