"""Anomaly detection by one-step prediction error."""

from .task import AnomalyTask

__all__ = ["AnomalyTask"]
