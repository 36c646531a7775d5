"""Sequence tagging (part of speech, named entities) with a BiLSTM and a CRF."""

from .task import TaggingTask

__all__ = ["TaggingTask"]
