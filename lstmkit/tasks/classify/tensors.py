"""The classifier's predictions as tensors (the Open Inference Protocol): padded sequences in,
class probabilities and labels out."""

from __future__ import annotations

import numpy as np

from ...runs.tensors import TensorSpec, rows, class_outputs, class_tensors
from .fitted import ClassifierFitted

__all__ = ["ClassifierTensors"]


class ClassifierTensors:
    def __init__(self, fitted: ClassifierFitted):
        self.fitted = fitted

    def inputs(self) -> list[TensorSpec]:
        return [TensorSpec("x", "FP32", [-1, -1, self.fitted.features]), TensorSpec("lengths", "INT64", [-1], True)]

    def outputs(self) -> list[TensorSpec]:
        return class_outputs(self.fitted.classes)

    def example(self) -> dict:
        return {"x": [[0.0] * self.fitted.features] * 4}

    def records(self, tensors: dict[str, np.ndarray]) -> list[dict]:
        return [{"x": row.tolist()} for row in rows(tensors, "x")]

    def tensors(self, predictions: list[dict]) -> dict[str, np.ndarray]:
        return class_tensors(predictions, self.fitted.classes)
