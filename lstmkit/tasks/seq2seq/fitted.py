"""What a sequence-to-sequence run fits on its training pairs: both vocabularies, how each side is
cut into tokens (characters, words, or SentencePiece subwords trained on the training split), and
the one tokenizing, numbering and detokenizing of text that training, evaluation and ``predict``
apply."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from functools import cached_property, lru_cache

from ...runs.fitted import Fitted

__all__ = ["TranslationFitted", "UNK", "SPECIALS", "split_tokens", "subword_model"]

UNK = 1                                    # the source's unknown token (0 is padding)
SPECIALS = ["<pad>", "<s>", "</s>"]         # the target's first ids


def split_tokens(text: str, how: str) -> list[str]:
    """``text`` as characters (``how`` "chars") or words; spaces around it are no tokens, in
    training as in prediction (a source of spaces only has none)."""
    return list(text.strip()) if how == "chars" else text.split()


@lru_cache(maxsize=4)
def subword_model(serialised: str):
    """The SentencePiece model of a run (serialised, base64)."""
    import sentencepiece
    return sentencepiece.SentencePieceProcessor(model_proto=base64.b64decode(serialised))


@dataclass
class TranslationFitted(Fitted):
    source_vocab: list[str]                 # a source token's id is 2 + its index (1: unknown, 0: padding)
    target_vocab: list[str]                 # a target token's id is len(SPECIALS) + its index
    dataset: str                            # where the pairs came from (cmudict, bible, files)
    source_tokens: str                      # how the source is cut: chars, words or subwords
    target_tokens: str                      # and the target
    source_subwords: str | None = None      # subwords: each side's SentencePiece model (base64)
    target_subwords: str | None = None

    @cached_property
    def source_index(self) -> dict[str, int]:
        return {t: k + 2 for k, t in enumerate(self.source_vocab)}

    @cached_property
    def target_index(self) -> dict[str, int]:
        return {t: k + len(SPECIALS) for k, t in enumerate(self.target_vocab)}

    def source(self, text: str) -> list[str]:
        """The source tokens of ``text``."""
        if self.source_tokens == "subwords":
            return subword_model(self.source_subwords).encode(text.strip(), out_type=str)
        return split_tokens(text.strip().lower() if self.dataset == "cmudict" else text.strip(), self.source_tokens)

    def target(self, text: str) -> list[str]:
        """The target tokens of ``text``."""
        if self.target_tokens == "subwords":
            return subword_model(self.target_subwords).encode(text.strip(), out_type=str)
        return split_tokens(text.strip(), self.target_tokens)

    def target_words(self, ids: list[int]) -> list[str]:
        """The target tokens of decoded ids (without the end)."""
        return [self.target_vocab[k - len(SPECIALS)] for k in ids]

    def detokenize(self, tokens: list[str]) -> str:
        """Target tokens as text."""
        if self.target_tokens == "subwords":
            return subword_model(self.target_subwords).decode_pieces(tokens)
        return ("" if self.target_tokens == "chars" else " ").join(tokens)
