"""The forecaster's predictions as tensors (the Open Inference Protocol): padded histories in, the
next ``horizon`` values out."""

from __future__ import annotations

import numpy as np

from ...runs.tensors import TensorSpec, rows
from .fitted import ForecastFitted

__all__ = ["ForecastTensors"]


class ForecastTensors:
    def __init__(self, fitted: ForecastFitted):
        self.fitted = fitted

    def inputs(self) -> list[TensorSpec]:
        return [TensorSpec("history", "FP32", [-1, -1]), TensorSpec("lengths", "INT64", [-1], True)]

    def outputs(self) -> list[TensorSpec]:
        return [TensorSpec("forecast", "FP32", [-1, self.fitted.horizon])]

    def example(self) -> dict:
        return {"history": [1.0] * self.fitted.window}

    def records(self, tensors: dict[str, np.ndarray]) -> list[dict]:
        return [{"history": row.tolist()} for row in rows(tensors, "history")]

    def tensors(self, predictions: list[dict]) -> dict[str, np.ndarray]:
        return {"forecast": np.asarray([p["forecast"] for p in predictions], dtype=np.float32)
                .reshape(len(predictions), self.fitted.horizon)}
