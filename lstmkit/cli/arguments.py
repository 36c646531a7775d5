"""Argument types the subcommands share: a bad number is argparse's usage error, not a traceback
or a silently odd run."""

from __future__ import annotations

import argparse

__all__ = ["positive_int", "non_negative_int"]


def _int(text: str, low: int, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
    return value


def positive_int(text: str) -> int:
    return _int(text, 1, "a positive int")


def non_negative_int(text: str) -> int:
    return _int(text, 0, "an int >= 0")
