"""What the text classifier fits on its training split: its classes and vocabulary, and how it
tokenizes (what a caller of the ONNX graph needs to make the ids as ``predict`` does)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...runs.fitted import Fitted

__all__ = ["TextFitted"]


@dataclass
class TextFitted(Fitted):
    classes: list[str]                          # the labels, sorted; a class's index is its output unit
    vocab: list[str]                            # most frequent first; id k is vocab[k - 2] (1: unknown, 0: padding)
    max_length: int                             # tokens read per text
    token_pattern: str                          # the tokenizer's regular expression (after lower-casing)
    word_vectors: dict[str, Any] | None = None  # the pretrained table's description (name, size, fingerprint)
