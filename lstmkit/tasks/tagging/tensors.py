"""The tagger's predictions as tensors (the Open Inference Protocol): sentences in (BYTES, words
separated by spaces), their tags out (BYTES, one per word, separated by spaces)."""

from __future__ import annotations

import numpy as np

from ...runs.tensors import TensorSpec, strings
from .fitted import TaggerFitted

__all__ = ["TaggerTensors"]


class TaggerTensors:
    def __init__(self, fitted: TaggerFitted):
        self.fitted = fitted

    def inputs(self) -> list[TensorSpec]:
        return [TensorSpec("sentence", "BYTES", [-1])]

    def outputs(self) -> list[TensorSpec]:
        return [TensorSpec("tags", "BYTES", [-1])]

    def example(self) -> dict:
        return {"tokens": ["the", "word"]}

    def records(self, tensors: dict[str, np.ndarray]) -> list[dict]:
        return [{"tokens": sentence.split()} for sentence in strings(tensors, "sentence")]

    def tensors(self, predictions: list[dict]) -> dict[str, np.ndarray]:
        return {"tags": np.asarray([" ".join(p["tags"]) for p in predictions], dtype=np.object_)}
