"""What the forecaster fits on its training split, and the one mapping between values and the
model's scale (transform, standardisation, phase features) that training, ``predict`` and the
streaming session apply (the ONNX graph writes the same steps as operators, from these fields)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ...runs.fitted import Fitted

__all__ = ["ForecastFitted", "TRANSFORMS", "transformed"]

# name -> (forward, inverse, smallest valid value, whether that value is allowed)
TRANSFORMS = {
    "none": (lambda v: v, lambda z: z, -np.inf, False),
    "sqrt": (np.sqrt, lambda z: np.maximum(z, 0.0) ** 2, 0.0, True),
    "log1p": (np.log1p, np.expm1, -1.0, False),
}


def transformed(values, transform: str, what: str = "series") -> np.ndarray:
    """``values`` (float64) through ``transform``; a ``ValueError`` naming ``what`` for values
    outside its domain."""
    forward, _, low, allowed = TRANSFORMS[transform]
    values = np.asarray(values, dtype=np.float64)
    if len(values) and (values.min() < low or (values.min() == low and not allowed)):
        raise ValueError(f"forecast: data.transform {transform!r} needs values "
                         f"{'>=' if allowed else '>'} {low:g}, got {what} with minimum {values.min():g}")
    return forward(values)


@dataclass
class ForecastFitted(Fitted):
    mean: float                   # of the transformed training part
    std: float                    # its standard deviation (at least 1e-8)
    window: int                   # W, past steps the model reads
    horizon: int                  # K, future steps it forecasts at once
    season: int                   # the seasonal period of the baselines and of MASE
    test_size: int | None         # steps of the test window (None: a fifth of the series)
    valid_size: int | None        # steps of the validation window before it
    periods: list[int]            # phase features: sin/cos of the step's phase in each period
    eval_stride: int | None       # steps between forecast origins in the test window (None: K)
    mase_scale: float             # the MASE denominator on the training part
    transform: str = "none"       # the variance-stabilising transform before scaling

    def to_model(self, values: np.ndarray, what: str = "series") -> np.ndarray:
        """Values -> the model's scale: the transform, then (v - mean) / std; a ``ValueError``
        naming ``what`` for values outside the transform's domain."""
        return (transformed(values, self.transform, what) - self.mean) / self.std

    def from_model(self, scaled: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`to_model`."""
        return TRANSFORMS[self.transform][1](scaled * self.std + self.mean)

    def features(self, scaled: np.ndarray, start: int) -> Tensor:
        """(T, 1 + 2P): the scaled values and sin/cos of each period's phase at steps start, start+1, ..."""
        t = np.arange(start, start + len(scaled))
        columns = [scaled] + [f(2 * np.pi * t / p) for p in self.periods for f in (np.sin, np.cos)]
        return torch.tensor(np.stack(columns, 1), dtype=torch.float32)
