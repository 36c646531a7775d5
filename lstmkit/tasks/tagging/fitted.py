"""What the tagger fits on its training sentences: its vocabularies (words, characters, tags), the
tagging scheme, and the one normalisation of a word that encoding, evaluation and ``predict``
apply (the ONNX graph's caller looks words up the same way, from these fields)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ...runs.fitted import Fitted

__all__ = ["TaggerFitted", "normalise"]


def normalise(word: str, lowercase: bool, digits_to_zero: bool) -> str:
    """The form a word is looked up in: lower-cased, digits as 0, as the fitted set-up says."""
    if lowercase:
        word = word.lower()
    return re.sub(r"\d", "0", word) if digits_to_zero else word


@dataclass
class TaggerFitted(Fitted):
    lowercase: bool                             # words looked up lower-cased
    digits_to_zero: bool                        # and with every digit as 0
    max_word_length: int                        # characters read per word by a character encoder
    vocab: list[str]                            # most frequent first; a word's id is 2 + its index (1: unknown)
    chars: list[str]                            # the training words' characters; id 2 + index (1: unknown)
    tags: list[str]                             # a tag's index is its output unit
    scheme: str                                 # the tagging scheme (BIO, BIOES) constraining the CRF, or "none"
    word_vectors: dict[str, Any] | None = None  # the pretrained table's description, if any

    def lookup(self, word: str) -> str:
        """The form ``word`` is looked up in."""
        return normalise(word, self.lowercase, self.digits_to_zero)
