"""What a language model fits on its training text: the vocabulary and the level of its tokens,
with the one tokenizing and numbering of text that training, ``predict``, generation and the
streaming session apply (the ONNX graph's caller numbers tokens with the same vocabulary)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch
from torch import Tensor

from ...data import text
from ...runs.fitted import Fitted

__all__ = ["VocabularyFitted"]


@dataclass
class VocabularyFitted(Fitted):
    vocab: list[str]        # "<eos>", "<unk>", then the kept tokens, most frequent first; an id is an index here
    level: str              # "word" (split at whitespace) or "char"

    @cached_property
    def index(self) -> dict[str, int]:
        """Token -> id."""
        return {t: i for i, t in enumerate(self.vocab)}

    @property
    def separator(self) -> str:
        """What goes between two tokens in text: a space for words, nothing for characters."""
        return "" if self.level == "char" else " "

    def tokenize(self, value: str) -> list[str]:
        """The tokens of a text: its characters (level char) or its words."""
        return list(value.strip()) if self.level == "char" else value.split()

    def ids(self, tokens: list[str]) -> Tensor:
        """The ids (T,) of ``tokens``; one the vocabulary lacks is ``<unk>``."""
        unk = self.index[text.UNK]
        return torch.tensor([self.index.get(t, unk) for t in tokens], dtype=torch.long)
