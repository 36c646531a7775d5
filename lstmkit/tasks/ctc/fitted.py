"""What the recogniser fits on its training split: its labels, the scaling of its input features,
and what the dataset adds (the letters of grapheme to phoneme, the spoken-digits recipe)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import Tensor

from ...runs.fitted import Fitted
from ...runs.records import standardised

__all__ = ["RecognizerFitted", "stack_frames"]


def stack_frames(x: np.ndarray, k: int) -> np.ndarray:
    """(T, F) -> (ceil(T / k), k·F): each k consecutive frames side by side (the last padded with its own)."""
    if k == 1:
        return x
    T = len(x)
    pad = -T % k
    if pad:
        x = np.concatenate([x, np.repeat(x[-1:], pad, 0)])
    return x.reshape(-1, k * x.shape[1])


@dataclass
class RecognizerFitted(Fitted):
    labels: list[str]                       # label k is output unit k + 1 (0 is the blank)
    features: int                           # F, features per (stacked) step
    mean: list[float]                       # (F,) the training steps' mean, per feature
    std: list[float]                        # (F,) their standard deviation (at least 1e-8)
    stack: int                              # frames stacked into one step
    join: str                               # what goes between two labels in text
    dataset: str                            # where the data came from (digits, cmudict, files)
    letters: list[str] | None = None        # cmudict: the letters a word is one-hot encoded over
    stress: bool | None = None              # cmudict: whether the phonemes carry stress
    recipe: dict[str, Any] | None = None    # digits: how the corpus was synthesised

    def scaled(self, x: np.ndarray, where: str) -> Tensor:
        """Steps (T, F) as the model reads them: standardised, float32; a ``ValueError`` naming
        ``where`` for a value that is not finite after scaling."""
        return standardised(x, self.mean, self.std, where)
