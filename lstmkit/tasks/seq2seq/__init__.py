"""Sequence to sequence with attention and beam search (grapheme to phoneme, translation)."""

from .task import Seq2SeqTask

__all__ = ["Seq2SeqTask"]
