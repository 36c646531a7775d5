"""Sequence lengths in an ONNX graph: the ``lengths`` input, every row's full length, the mask of
the valid steps and the reversal of each sequence within its length."""

from __future__ import annotations

import numpy as np

from .graph import Graph

__all__ = ["lengths_input", "full_lengths", "valid_steps", "reversal"]


def lengths_input(g: Graph) -> str:
    """The graph input ``lengths`` (batch,) int64, as the int32 the recurrent nodes read."""
    return g.op("Cast", [g.input("lengths", "INT64", ["batch"])], to=g.onnx.TensorProto.INT32)


def full_lengths(g: Graph, x: str) -> str:
    """int32 (B,): every row of batch-first ``x`` (B, T, ...) as long as its time axis."""
    shape = g.op("Shape", [x])
    batch = g.op("Slice", [shape, g.const([0], "start", np.int64), g.const([1], "end", np.int64)])
    steps = g.op("Gather", [shape, g.const(1, "one", np.int64)], axis=0)
    return g.op("Cast", [g.op("Expand", [steps, batch])], to=g.onnx.TensorProto.INT32)


def _steps_and_lengths(g: Graph, x: str, lens: str) -> tuple[str, str]:
    """The step indices (T, 1) of time-major ``x`` and the lengths (1, B), int64, to compare."""
    T = g.op("Gather", [g.op("Shape", [x]), g.const(0, "zero", np.int64)], axis=0)
    steps = g.op("Unsqueeze", [g.op("Range", [g.const(0, "zero", np.int64), T, g.const(1, "one", np.int64)]),
                               g.const([1], "axis", np.int64)])
    lengths = g.op("Unsqueeze", [g.op("Cast", [lens], to=g.onnx.TensorProto.INT64), g.const([0], "axis", np.int64)])
    return steps, lengths


def valid_steps(g: Graph, x: str, lens: str) -> str:
    """(T, B, 1) float mask of the valid steps of time-major ``x`` under int32 ``lens`` (B,)."""
    steps, lengths = _steps_and_lengths(g, x, lens)
    valid = g.op("Less", [steps, lengths])                                                  # (T, B)
    return g.op("Unsqueeze", [g.op("Cast", [valid], to=g.onnx.TensorProto.FLOAT), g.const([2], "axis", np.int64)])


def reversal(g: Graph, x: str, lens: str) -> str:
    """(T, B, F) indices that read each sequence of time-major ``x`` reversed within its length
    (the padding where it is): applying them twice gives the identity."""
    steps, lengths = _steps_and_lengths(g, x, lens)
    reversed_steps = g.op("Sub", [g.op("Sub", [lengths, g.const(1, "one", np.int64)]), steps])   # (T, B)
    index = g.op("Where", [g.op("Less", [steps, lengths]), reversed_steps, steps])
    return g.op("Expand", [g.op("Unsqueeze", [index, g.const([2], "axis", np.int64)]), g.op("Shape", [x])])
