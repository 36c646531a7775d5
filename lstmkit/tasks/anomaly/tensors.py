"""The anomaly detector's predictions as tensors (the Open Inference Protocol): padded series in,
each point's score (0 past a row's length) and the threshold out."""

from __future__ import annotations

import numpy as np

from ...runs.tensors import TensorSpec, rows, padded
from .fitted import AnomalyFitted

__all__ = ["AnomalyTensors"]


class AnomalyTensors:
    def __init__(self, fitted: AnomalyFitted):
        self.fitted = fitted

    def inputs(self) -> list[TensorSpec]:
        return [TensorSpec("values", "FP32", [-1, -1]), TensorSpec("lengths", "INT64", [-1], True)]

    def outputs(self) -> list[TensorSpec]:
        return [TensorSpec("scores", "FP32", [-1, -1]), TensorSpec("threshold", "FP32", [-1])]

    def example(self) -> dict:
        return {"values": [0.0] * (self.fitted.window + 4)}

    def records(self, tensors: dict[str, np.ndarray]) -> list[dict]:
        return [{"values": row.tolist()} for row in rows(tensors, "values")]

    def tensors(self, predictions: list[dict]) -> dict[str, np.ndarray]:
        return {"scores": padded([p["scores"] for p in predictions]),
                "threshold": np.asarray([p["threshold"] for p in predictions], dtype=np.float32)}
