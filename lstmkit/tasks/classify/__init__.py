"""Many-to-one classification of variable-length sequences of features."""

from .task import ClassifyTask

__all__ = ["ClassifyTask"]
