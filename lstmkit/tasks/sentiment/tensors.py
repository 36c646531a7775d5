"""The text classifier's predictions as tensors (the Open Inference Protocol): texts in (BYTES),
class probabilities and labels out."""

from __future__ import annotations

import numpy as np

from ...runs.tensors import TensorSpec, strings, class_outputs, class_tensors
from .fitted import TextFitted

__all__ = ["TextClassifierTensors"]


class TextClassifierTensors:
    def __init__(self, fitted: TextFitted):
        self.fitted = fitted

    def inputs(self) -> list[TensorSpec]:
        return [TensorSpec("text", "BYTES", [-1])]

    def outputs(self) -> list[TensorSpec]:
        return class_outputs(self.fitted.classes)

    def example(self) -> dict:
        return {"text": "a good film"}

    def records(self, tensors: dict[str, np.ndarray]) -> list[dict]:
        return [{"text": text} for text in strings(tensors, "text")]

    def tensors(self, predictions: list[dict]) -> dict[str, np.ndarray]:
        return class_tensors(predictions, self.fitted.classes)
