"""The language model's scores as tensors (the Open Inference Protocol): texts in (BYTES), each
text's perplexity out."""

from __future__ import annotations

import numpy as np

from ...runs.tensors import TensorSpec, strings
from .fitted import VocabularyFitted

__all__ = ["LanguageModelTensors"]


class LanguageModelTensors:
    def __init__(self, fitted: VocabularyFitted):
        self.fitted = fitted

    def inputs(self) -> list[TensorSpec]:
        return [TensorSpec("text", "BYTES", [-1])]

    def outputs(self) -> list[TensorSpec]:
        return [TensorSpec("perplexity", "FP32", [-1])]

    def example(self) -> dict:
        return {"text": "the"}

    def records(self, tensors: dict[str, np.ndarray]) -> list[dict]:
        return [{"text": text} for text in strings(tensors, "text")]

    def tensors(self, predictions: list[dict]) -> dict[str, np.ndarray]:
        return {"perplexity": np.asarray([p["perplexity"] for p in predictions], dtype=np.float32)}
