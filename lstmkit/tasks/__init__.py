"""Seeded generators for the classic recurrent-network tasks (spec: shared/spec/classic_tasks.md §2)."""

from .surrogate import brnn_surrogate

__all__ = ["brnn_surrogate"]
