"""Sentiment of short texts: a classifier over tokens (with pretrained word vectors)."""

from .task import SentimentTask

__all__ = ["SentimentTask"]
