"""The sequence-to-sequence model's predictions as tensors (the Open Inference Protocol): sources
in (BYTES), the best target out (BYTES) with its score."""

from __future__ import annotations

import numpy as np

from ...runs.tensors import TensorSpec, strings
from .fitted import TranslationFitted

__all__ = ["TranslationTensors"]


class TranslationTensors:
    def __init__(self, fitted: TranslationFitted):
        self.fitted = fitted

    def inputs(self) -> list[TensorSpec]:
        return [TensorSpec("source", "BYTES", [-1])]

    def outputs(self) -> list[TensorSpec]:
        return [TensorSpec("target", "BYTES", [-1]), TensorSpec("score", "FP32", [-1])]

    def example(self) -> dict:
        return {"source": "a"}

    def records(self, tensors: dict[str, np.ndarray]) -> list[dict]:
        return [{"source": source} for source in strings(tensors, "source")]

    def tensors(self, predictions: list[dict]) -> dict[str, np.ndarray]:
        return {"target": np.asarray([p["target"] for p in predictions], dtype=np.object_),
                "score": np.asarray([p["score"] for p in predictions], dtype=np.float32)}
