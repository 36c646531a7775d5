"""A user cell's step in ONNX operators, written from the program the engine runs.

:func:`.lowering.lower` gives the step as instructions over an arena of numbers (see
:mod:`lstmkit._engine.lowering`); here each instruction becomes an ONNX node over the batch: an
arena region read whole is the tensor that wrote it, a part of one is a ``Slice`` on the last
axis, and a region written piece by piece (a ``cat``) is their ``Concat``. Parameters are
constants; the products are ``MatMul`` nodes with the (possibly computed) matrices.
"""

from __future__ import annotations

import numpy as np
import torch

from .._engine.lowering import OPS, Unsupported, lower
from ..cells.user import UserCell
from .graph import ExportError, Graph

__all__ = ["supports", "step"]

_UNARY = {"neg": "Neg", "sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "Relu", "exp": "Exp", "log": "Log",
          "sqrt": "Sqrt", "abs": "Abs", "sin": "Sin", "cos": "Cos", "reciprocal": "Reciprocal", "sign": "Sign"}
_BINARY = {"add": "Add", "sub": "Sub", "mul": "Mul", "div": "Div", "pow": "Pow", "maximum": "Max", "minimum": "Min"}
_COMPARE = {"gt": "Greater", "ge": "GreaterOrEqual", "lt": "Less", "le": "LessOrEqual", "eq": "Equal"}


def supports(cell) -> bool:
    return isinstance(cell, UserCell)


class _Regions:
    """The arena's regions as ONNX tensors: what wrote each, and how to read any part of them."""

    def __init__(self, g: Graph):
        self.g = g
        self.written: dict[int, tuple[int, str]] = {}       # offset -> (width, tensor)

    def write(self, off: int, width: int, name: str) -> None:
        self.written[off] = (width, name)

    def read(self, off: int, width: int) -> str:
        g = self.g
        if self.written.get(off, (None,))[0] == width:
            return self.written[off][1]
        for start, (w, name) in self.written.items():
            if start <= off and off + width <= start + w:
                return g.op("Slice", [name, g.const([off - start], "start", np.int64),
                                      g.const([off - start + width], "end", np.int64),
                                      g.const([-1], "axis", np.int64)])
        pieces, at = [], off
        while at < off + width:
            if at not in self.written:
                raise ExportError(f"to_onnx: a user cell's step reads arena [{off}, {off + width}), not all written")
            w, name = self.written[at]
            pieces.append(name)
            at += w
        return g.op("Concat", pieces, axis=-1)


def step(g: Graph, cell: UserCell, x: str, state: list[str]) -> tuple[str, list[str]]:
    """The cell's step on ``x`` (B, I) and ``state`` (each (B, H)): ``(y, new state)``."""
    try:
        lowered = lower(cell)
    except Unsupported as err:
        raise ExportError(f"to_onnx: {type(cell).__name__}'s step has no ONNX form: {err}") from None
    program = lowered.forward
    w_ih, w_states = cell.checked_products()
    own = {**cell._parameters, **cell._buffers}
    S = len(state)

    def matrix(w: torch.Tensor, hint: str) -> str:
        return g.const(w.detach().cpu().numpy().T, hint)

    regions = _Regions(g)
    offsets = program.inputs.tolist()
    regions.write(offsets[0], w_ih.shape[0], g.op("MatMul", [x, matrix(w_ih, "weight_ih")]))
    for s, w in enumerate(w_states):
        if w is not None:
            regions.write(offsets[1 + s], w.shape[0], g.op("MatMul", [state[s], matrix(w, "weight_hh")]))
        regions.write(offsets[1 + S + s], cell.hidden_size, state[s])
    for k, name in enumerate(lowered.params):
        values = own[name].detach().cpu().numpy().reshape(-1)
        regions.write(offsets[1 + 2 * S + k], values.size, g.const(values, name))
    for (op, out, width, a, aw, b, bw, c, cw), value in zip(program.code.tolist(), program.imm.tolist()):
        regions.write(out, width, _node(g, regions, OPS[op], width, value, [(a, aw), (b, bw), (c, cw)]))
    new = [regions.read(off, cell.hidden_size) for off in program.outputs.tolist()]
    return new[0], new


def _node(g: Graph, regions: _Regions, op: str, width: int, value: float, operands) -> str:
    if op == "fill":
        return g.const(np.full(width, value), "fill")
    (a, aw), (b, bw), (c, cw) = operands
    if op in ("copy", "round_float"):
        v = regions.read(a, aw)
        return v if aw == width else g.op("Add", [v, g.const(np.zeros(width), "zeros")])   # a broadcast
    if op in _UNARY:
        return g.op(_UNARY[op], [regions.read(a, aw)])
    if op == "rsqrt":
        return g.op("Reciprocal", [g.op("Sqrt", [regions.read(a, aw)])])
    if op == "log1p":
        return g.op("Log", [g.op("Add", [regions.read(a, aw), g.const(1.0, "one")])])
    if op == "expm1":
        return g.op("Sub", [g.op("Exp", [regions.read(a, aw)]), g.const(1.0, "one")])
    if op == "sum":
        return g.reduce("ReduceSum", regions.read(a, aw), -1, keepdims=1)
    if op in _BINARY:
        return g.op(_BINARY[op], [regions.read(a, aw), regions.read(b, bw)])
    if op in _COMPARE or op == "ne":
        test = g.op(_COMPARE.get(op, "Equal"), [regions.read(a, aw), regions.read(b, bw)])
        if op == "ne":
            test = g.op("Not", [test])
        return g.op("Cast", [test], to=g.onnx.TensorProto.FLOAT)
    if op == "where":
        chosen = g.op("Not", [g.op("Equal", [regions.read(a, aw), g.const(0.0, "zero")])])
        return g.op("Where", [chosen, regions.read(b, bw), regions.read(c, cw)])
    raise ExportError(f"to_onnx: a user cell's step uses {op}, which has no ONNX form here")
