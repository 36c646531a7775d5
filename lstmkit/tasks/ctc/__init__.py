"""Recognition with CTC: spoken digits, and spelling to sound."""

from .task import CTCTask

__all__ = ["CTCTask"]
