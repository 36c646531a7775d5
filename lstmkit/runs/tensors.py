"""A task's predictions as named tensors: the form the Open Inference Protocol (KServe v2,
Triton, Seldon MLServer) speaks. A task that has one declares ``Task.tensors``, a class built
from the run's fitted state with:

- ``inputs()`` / ``outputs()``: the :class:`TensorSpec` of each tensor (``-1``: any size);
- ``records(tensors)``: the ``predict`` records of a batch of named input arrays;
- ``tensors(predictions)``: the named output arrays of those records' predictions.
- ``example()``: one small valid ``predict`` record of the run (a server's warm-up runs it
  before it says it is ready).

Variable-length sequences travel padded, beside an optional ``lengths`` INT64 tensor (absent:
every row is whole); text travels as BYTES (UTF-8). Errors are ``ValueError``s naming the tensor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["TensorSpec", "DATATYPES", "rows", "strings", "padded", "class_outputs", "class_tensors"]

#: The Open Inference Protocol's datatypes lstmkit reads and writes, with their NumPy types.
DATATYPES = {"FP32": np.float32, "FP64": np.float64, "INT32": np.int32, "INT64": np.int64, "BYTES": np.object_}


@dataclass(frozen=True)
class TensorSpec:
    """One named tensor: its datatype (``FP32``, ``INT64``, ``BYTES``...) and shape (``-1``: any
    size); ``optional`` inputs may be left out."""

    name: str
    datatype: str
    shape: list[int]
    optional: bool = False

    def describe(self) -> dict:
        out = {"name": self.name, "datatype": self.datatype, "shape": self.shape}
        return out | ({"parameters": {"optional": True}} if self.optional else {})


def rows(tensors: dict[str, np.ndarray], name: str, *, lengths: str = "lengths") -> list[np.ndarray]:
    """The rows of the padded tensor ``name`` (B, T, ...) each cut to its length (the INT64
    tensor ``lengths`` (B,), or the whole row without it)."""
    x = tensors[name]
    if x.ndim < 2:
        raise ValueError(f"input {name!r}: expected a padded batch (batch, time, ...), got shape {list(x.shape)}")
    B, T = x.shape[:2]
    if lengths not in tensors:
        return list(x)
    n = tensors[lengths]
    if n.shape != (B,):
        raise ValueError(f"input {lengths!r}: expected shape [{B}] (one length per row of {name!r}), got {list(n.shape)}")
    if (n < 1).any() or (n > T).any():
        raise ValueError(f"input {lengths!r}: expected lengths from 1 to {T}, got {n.tolist()}")
    return [row[:k] for row, k in zip(x, n.tolist())]


def strings(tensors: dict[str, np.ndarray], name: str) -> list[str]:
    """The BYTES tensor ``name`` (B,) as text, one string per row."""
    x = tensors[name]
    if x.ndim != 1:
        raise ValueError(f"input {name!r}: expected shape [batch], got {list(x.shape)}")
    out = []
    for i, value in enumerate(x.tolist()):
        try:
            out.append(value.decode("utf-8") if isinstance(value, bytes) else str(value))
        except UnicodeDecodeError:
            raise ValueError(f"input {name!r}: row {i} is not UTF-8 text") from None
    return out


def padded(values: list[list[float]], fill: float = 0.0) -> np.ndarray:
    """Rows of different lengths as one float32 array (B, max length), ``fill`` past each row."""
    width = max((len(v) for v in values), default=0)
    out = np.full((len(values), width), fill, dtype=np.float32)
    for i, v in enumerate(values):
        out[i, :len(v)] = v
    return out


def class_outputs(classes: list[str]) -> list[TensorSpec]:
    """The outputs of a classifier of ``classes``: ``probabilities`` (B, C) and ``label`` (B,)."""
    return [TensorSpec("probabilities", "FP32", [-1, len(classes)]), TensorSpec("label", "BYTES", [-1])]


def class_tensors(predictions: list[dict], classes: list[str]) -> dict[str, np.ndarray]:
    """A classifier's predictions as :func:`class_outputs` tensors (columns in ``classes`` order)."""
    probabilities = np.asarray([[p["probabilities"][c] for c in classes] for p in predictions], dtype=np.float32)
    return {"probabilities": probabilities.reshape(len(predictions), len(classes)),
            "label": np.asarray([p["label"] for p in predictions], dtype=np.object_)}

