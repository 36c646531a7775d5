"""Readers of the user's own data files: JSON lines and one- or two-column CSV series.

Every error names the file and the line, and says what was expected.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np

__all__ = ["decode_utf8", "parse_jsonl", "numbered_jsonl", "read_jsonl", "read_numbered_jsonl", "read_series",
           "read_labelled_series"]


def decode_utf8(data: bytes, where: str) -> str:
    """``data`` as UTF-8 text; a ``ValueError`` naming ``where``, the line and the byte that is not."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        column = error.start - data.rfind(b"\n", 0, error.start)
        raise ValueError(f"{where} line {line} is not UTF-8 text (byte {column} of the line, "
                         f"{data[error.start:error.start + 1]!r})") from None


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number here: expected finite numbers")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is beyond the range of a float: expected finite numbers")
    return value


def numbered_jsonl(lines: Iterable[str], where: str) -> list[tuple[int, object]]:
    """``(line number, record)`` of JSON lines (blank lines skipped); an error names ``where``,
    the line and the column. ``NaN``, ``Infinity`` and numbers too large for a float are refused:
    none of them is data a model can learn from or predict for."""
    records = []
    for number, line in enumerate(lines, 1):
        if line.strip():
            try:
                records.append((number, json.loads(line, parse_constant=_no_constant, parse_float=_finite_float)))
            except json.JSONDecodeError as error:
                raise ValueError(f"{where} line {number}, column {error.colno}: not valid JSON ({error.msg})") from None
            except ValueError as error:
                raise ValueError(f"{where} line {number}: {error}") from None
    return records


def parse_jsonl(lines: Iterable[str], where: str) -> list:
    """The records of :func:`numbered_jsonl`, without their line numbers."""
    return [record for _, record in numbered_jsonl(lines, where)]


def read_numbered_jsonl(path: Path, what: str) -> list[tuple[int, object]]:
    """``(line number, record)`` of a JSON-lines file (blank lines skipped); errors name the file and line."""
    where = f"{what} {str(path)!r}"
    return numbered_jsonl(decode_utf8(Path(path).read_bytes(), where).splitlines(), where)


def read_jsonl(path: Path, what: str) -> list[dict]:
    """Records of a JSON-lines file (blank lines skipped); errors name the file and line."""
    return [record for _, record in read_numbered_jsonl(path, what)]


def _read_csv(path: Path, *, labelled: bool) -> tuple[list[float], list[int]]:
    """Values of the first column (and 0/1 labels of the second, missing = 0); a header line is
    allowed; errors name the line."""
    values, labels = [], []
    with open(path, newline="") as f:
        for number, row in enumerate(csv.reader(f), 1):
            if not row or not row[0].strip():
                continue
            try:
                value = float(row[0])
                label = int(float(row[1])) if labelled and len(row) > 1 and row[1].strip() else 0
            except ValueError:
                if number == 1 and not values:
                    continue                                     # header
                expected, got = ("'value,label'", row) if labelled else ("a number", row[0])
                raise ValueError(f"series file {str(path)!r} line {number}: expected {expected}, got {got!r}") from None
            if not math.isfinite(value):
                raise ValueError(f"series file {str(path)!r} line {number}: expected a finite number, got {row[0]!r}")
            values.append(value)
            labels.append(label)
    return values, labels


def read_series(path: Path) -> np.ndarray:
    """The numbers of a one-column CSV file (a header line is allowed); errors name the line."""
    values, _ = _read_csv(path, labelled=False)
    if len(values) < 2:
        raise ValueError(f"series file {str(path)!r}: expected at least 2 values, got {len(values)}")
    return np.asarray(values)


def read_labelled_series(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(values, labels)`` of a CSV file 'value,label' (label 1 = anomaly; the column may be left out)."""
    values, labels = _read_csv(path, labelled=True)
    return np.asarray(values), np.asarray(labels, dtype=np.int64)
