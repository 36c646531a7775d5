"""What the anomaly detector fits (scaling on the normal series, the threshold on its held-out
part), and its scoring, written once: a point's score is the mean of the squared one-step
prediction errors of the last ``smooth`` points (each 0 before the first ``window`` points), which
the batch path applies to a whole series at once and the streaming session to one new point
from the errors it keeps (the ONNX graph writes the same steps as operators, from these fields)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...runs.fitted import Fitted

__all__ = ["AnomalyFitted"]


@dataclass
class AnomalyFitted(Fitted):
    mean: float                       # of the normal series' fitting part
    std: float                        # its standard deviation (at least 1e-8)
    window: int                       # W, past points the one-step predictor reads
    smooth: int                       # S, squared errors averaged into a score
    quantile: float                   # the held-out scores' quantile that is the threshold
    threshold: float | None = None    # set after each validation, from the held-out normal data

    def scaled(self, values) -> np.ndarray:
        """Values as the model reads them (float64; the caller checks them for float32)."""
        return (np.asarray(values, dtype=np.float64) - self.mean) / self.std

    def smoothed(self, errors, start: int = 0) -> np.ndarray:
        """The scores of the points ``start``, ``start + 1``, ... from their squared errors: the
        trailing mean over S points (errors before ``start`` count as 0, so a stream passes the
        S - 1 errors before the point it scores), and 0 for the first W points of the series."""
        errors = np.asarray(errors, dtype=np.float64)
        scores = np.convolve(errors, np.ones(self.smooth) / self.smooth)[:len(errors)]
        scores[:max(0, self.window - start)] = 0.0
        return scores

    def flagged(self, scores: np.ndarray) -> list[int]:
        """The indices of the points scored above the threshold."""
        return np.flatnonzero(np.asarray(scores) > self.threshold).tolist()
