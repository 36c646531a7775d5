"""Language models of words or characters: perplexity, scoring, generation."""

from .task import LanguageModelTask

__all__ = ["LanguageModelTask"]
