"""The recogniser's predictions as tensors (the Open Inference Protocol): padded feature frames in,
the transcript out (BYTES) with its score."""

from __future__ import annotations

import numpy as np

from ...runs.tensors import TensorSpec, rows
from .fitted import RecognizerFitted

__all__ = ["RecognizerTensors"]


class RecognizerTensors:
    def __init__(self, fitted: RecognizerFitted):
        self.fitted = fitted

    def inputs(self) -> list[TensorSpec]:
        width = self.fitted.features // self.fitted.stack
        return [TensorSpec("x", "FP32", [-1, -1, width]), TensorSpec("lengths", "INT64", [-1], True)]

    def outputs(self) -> list[TensorSpec]:
        return [TensorSpec("text", "BYTES", [-1]), TensorSpec("score", "FP32", [-1])]

    def example(self) -> dict:
        return {"x": [[0.0] * (self.fitted.features // self.fitted.stack)] * 8 * self.fitted.stack}

    def records(self, tensors: dict[str, np.ndarray]) -> list[dict]:
        return [{"x": row.tolist()} for row in rows(tensors, "x")]

    def tensors(self, predictions: list[dict]) -> dict[str, np.ndarray]:
        return {"text": np.asarray([p["text"] for p in predictions], dtype=np.object_),
                "score": np.asarray([p["score"] for p in predictions], dtype=np.float32)}
