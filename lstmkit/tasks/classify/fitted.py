"""What the classifier fits on its training split, and the one scaling of its inputs that
training, ``predict``, the streaming session and the ONNX graph all apply."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch import Tensor

from ...runs.fitted import Fitted
from ...runs.records import standardised

__all__ = ["ClassifierFitted"]


@dataclass
class ClassifierFitted(Fitted):
    classes: list[str]          # the labels, sorted; a class's index is its output unit
    features: int               # F, features per step
    mean: list[float]           # (F,) the training steps' mean, per feature
    std: list[float]            # (F,) their standard deviation (at least 1e-8)

    def scaled(self, x: np.ndarray, where: str) -> Tensor:
        """Steps (T, F) as the model reads them: standardised, float32; a ``ValueError`` naming
        ``where`` for a value that is not finite after scaling."""
        return standardised(x, self.mean, self.std, where)
