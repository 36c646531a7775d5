"""Recurrent layers as ONNX graphs: native ``LSTM``, ``GRU`` and ``RNN`` nodes where ONNX has
the cell's maths, else a ``Scan`` over the cell's step (:mod:`.scan`).

Native nodes compute some cells exactly: ``lstm``, ``peephole`` (ONNX's ``P``: the output gate's
peephole reads the new cell state, as lstmkit's does), ``cifg`` (``input_forget``), ``np``,
``gru`` (``linear_before_reset=1``), ``gru_cho`` (``linear_before_reset=0``) and ``elman``.
``sequence_lens`` carries the lengths: outputs past a sequence's length are zero, the final state
is the one after its last step, and the reverse direction reads each sequence reversed within
its length, as lstmkit does. The other variants of the peephole family, the layer-normalised
LSTM and the 1997 cell go through ``Scan``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..cells import GRU, LSTM, Cell, Elman, PeepholeLSTM
from ..layers import Bidirectional, Recurrent, Stack
from . import scan
from .graph import ExportError, Graph
from .lengths import valid_steps

__all__ = ["Native", "native", "layer", "one_direction"]


@dataclass
class Native:
    """One direction of a native node: its op, weights in ONNX's gate order, and attributes."""

    op: str
    W: np.ndarray
    R: np.ndarray
    B: np.ndarray
    P: np.ndarray | None = None
    attributes: dict = field(default_factory=dict)
    states: int = 1                       # the cell's state tensors: (h,) or (h, c)


def _blocks(weight: torch.Tensor | None, H: int, order: list[int | None], width: int) -> np.ndarray:
    """The H-row blocks of ``weight`` in ``order`` (None: a zero block), as float32."""
    parts = []
    for k in order:
        if weight is None or k is None:
            parts.append(np.zeros((H, width) if width else (H,), dtype=np.float32))
        else:
            parts.append(weight.detach()[k * H:(k + 1) * H].cpu().numpy().astype(np.float32))
    return np.concatenate(parts, axis=0)


def _refuse(cell: Cell, why: str):
    raise ExportError(f"to_onnx: cell {type(cell).__name__} ({cell.extra_repr()}) has no ONNX native node: {why}")


def native(cell: Cell) -> Native:
    """The native node of ``cell`` (one direction), or an :class:`ExportError` saying why none fits."""
    H, I = cell.hidden_size, cell.input_size
    if type(cell) is LSTM:                           # lstmkit (i, f, g, o) -> ONNX (i, o, f, c)
        order = [0, 3, 1, 2]
        return Native("LSTM", _blocks(cell.weight_ih, H, order, I), _blocks(cell.weight_hh, H, order, H),
                      np.concatenate([_blocks(cell.bias, H, order, 0), np.zeros(4 * H, np.float32)]), states=2)
    if type(cell) is PeepholeLSTM:
        if cell.weight_gg is not None:
            _refuse(cell, "the gate recurrence (fgr) has no counterpart in ONNX's LSTM")
        if not (cell.input_gate and cell.output_gate and (cell.forget_gate or cell.coupled)):
            _refuse(cell, "ONNX's LSTM always has input, forget and output gates (nig, nfg, nog)")
        if not (cell.input_activation and cell.output_activation):
            _refuse(cell, "ONNX's LSTM squashes the cell input and output with the same activation (niaf, noaf)")
        where = {g: k for k, g in enumerate(cell.gates)}
        order = [where["i"], where["o"], where.get("f"), where["g"]]   # cifg: no forget rows (ONNX ignores them)
        peep = None
        if cell.peepholes:
            f = cell.peephole_f.detach().cpu().numpy() if not cell.coupled else np.zeros(H)
            peep = np.concatenate([cell.peephole_i.detach().cpu().numpy(), cell.peephole_o.detach().cpu().numpy(),
                                   f]).astype(np.float32)
        return Native("LSTM", _blocks(cell.weight_ih, H, order, I), _blocks(cell.weight_hh, H, order, H),
                      np.concatenate([_blocks(cell.bias, H, order, 0), np.zeros(4 * H, np.float32)]), peep,
                      {"input_forget": int(cell.coupled)}, states=2)
    if type(cell) is GRU:                            # lstmkit (r, z, n) -> ONNX (z, r, h)
        order = [1, 0, 2]
        if cell.reset_after:
            B = np.concatenate([_blocks(cell.bias_ih, H, order, 0), _blocks(cell.bias_hh, H, order, 0)])
        else:
            B = np.concatenate([_blocks(cell.bias, H, order, 0), np.zeros(3 * H, np.float32)])
        return Native("GRU", _blocks(cell.weight_ih, H, order, I), _blocks(cell.weight_hh, H, order, H), B,
                      attributes={"linear_before_reset": int(cell.reset_after)})
    if type(cell) is Elman:
        activation = {"tanh": "Tanh", "relu": "Relu", "logistic": "Sigmoid"}[cell.activation]
        return Native("RNN", _blocks(cell.weight_ih, H, [0], I), _blocks(cell.weight_hh, H, [0], H),
                      np.concatenate([_blocks(cell.bias, H, [0], 0), np.zeros(H, np.float32)]),
                      attributes={"activations": [activation]})
    _refuse(cell, "no ONNX operator computes its step")


def _direction(g: Graph, layers: list[Recurrent], nodes: list[Native], x: str, lens: str,
               initial: tuple[str, ...] | None = None) -> tuple[str, list[list[str]]]:
    """One native node over 1 or 2 directions (``nodes``: theirs): ``Y`` (T, D, B, H) and each
    direction's final states; ``initial``: one direction's initial state tensors (B, H) (None: zeros)."""
    first = nodes[0]
    if any(n.op != first.op or n.attributes != first.attributes or (n.P is None) != (first.P is None)
           for n in nodes[1:]):
        raise ExportError("to_onnx: a bidirectional layer whose two directions are different cells has no ONNX "
                          "native node (one node holds both directions)")
    H = layers[0].cell.hidden_size
    if len(layers) == 2:
        direction = "bidirectional"
    else:
        direction = "reverse" if layers[0].reverse else "forward"
    inputs = [x, g.const(np.stack([n.W for n in nodes]), "W"), g.const(np.stack([n.R for n in nodes]), "R"),
              g.const(np.stack([n.B for n in nodes]), "B"), lens]
    states = [""] * first.states                                       # absent: zeros
    if initial is not None:
        states = [g.op("Unsqueeze", [s, g.const([0], "axis", np.int64)]) for s in initial]   # (1, B, H)
    if first.P is not None or initial is not None:
        inputs += states
    if first.P is not None:
        inputs.append(g.const(np.stack([n.P for n in nodes]), "P"))
    attributes = dict(first.attributes)
    if "activations" in attributes:                 # listed once per direction
        attributes["activations"] = attributes["activations"] * len(layers)
    outputs = g.op(first.op, inputs, outputs=1 + first.states, hint=first.op.lower(), hidden_size=H,
                   direction=direction, **attributes)
    Y, finals = outputs[0], outputs[1:]
    per_direction = []
    for d in range(len(layers)):
        index = g.const(d, "direction", np.int64)                      # a scalar index drops the axis
        per_direction.append([g.op("Gather", [f, index], axis=0, hint="final") for f in finals])
    return Y, per_direction


def _plan(cell: Cell) -> Native | None:
    """The native node of ``cell``, None where a Scan computes its step; an :class:`ExportError`
    where neither does."""
    try:
        return native(cell)
    except ExportError:
        if scan.supports(cell):
            return None
        raise


def _single(g: Graph, module: Recurrent, node: Native | None, x: str, lens: str,
            initial: tuple[str, ...] | None) -> tuple[str, tuple]:
    if node is not None:
        Y, (finals,) = _direction(g, [module], [node], x, lens, initial)
        return g.op("Squeeze", [Y, g.const([1], "axis", np.int64)], hint="y"), tuple(finals)
    return scan.direction(g, module, x, lens, initial)


def one_direction(g: Graph, module: Recurrent, x: str, lens: str,
                  initial: tuple[str, ...] | None = None) -> tuple[str, tuple]:
    """A one-direction layer over time-major ``x``: ``(y (T, B, H), final state)``, from the
    ``initial`` state tensors (B, width) (None: zeros)."""
    return _single(g, module, _plan(module.cell), x, lens, initial)


def _merge(g: Graph, how: str, y_f: str, y_b: str) -> str:
    if how == "concat":
        return g.op("Concat", [y_f, y_b], axis=2, hint="y")
    if how == "sum":
        return g.op("Add", [y_f, y_b], hint="y")
    if how == "mul":
        return g.op("Mul", [y_f, y_b], hint="y")
    return g.op("Mul", [g.op("Add", [y_f, y_b]), g.const(0.5, "half")], hint="y")


def layer(g: Graph, module, x: str, lens: str) -> tuple[str, object]:
    """``module`` (Recurrent, Bidirectional or Stack, eval mode) over time-major ``x`` (T, B, I)
    with int32 ``lens`` (B,): ``(y (T, B, O), final state)``, the state nested as lstmkit's."""
    if isinstance(module, Recurrent):
        return one_direction(g, module, x, lens)
    if isinstance(module, Bidirectional):
        if not (isinstance(module.merge, str) and module.merge in ("concat", "sum", "mul", "ave")):
            raise ExportError(f"to_onnx: Bidirectional merge {module.merge!r} has no ONNX form (concat, sum, mul, "
                              "ave are exported)")
        if module.backward_layer.reverse is not True or module.forward_layer.reverse:
            raise ExportError("to_onnx: a Bidirectional layer needs a forward and a reverse layer")
        both = [module.forward_layer, module.backward_layer]
        nodes = [_plan(direction.cell) for direction in both]
        if None in nodes:                                                   # a Scan per direction
            (y_f, ff), (y_b, fb) = (_single(g, d, n, x, lens, None) for d, n in zip(both, nodes))
            return _merge(g, module.merge, y_f, y_b), (ff, fb)
        Y, (ff, fb) = _direction(g, both, nodes, x, lens)                                     # (T, 2, B, H)
        if module.merge == "concat":
            Yt = g.op("Transpose", [Y], perm=[0, 2, 1, 3])                                   # (T, B, 2, H)
            y = g.op("Reshape", [Yt, g.const([0, 0, -1], "shape", np.int64)], hint="y")
        else:
            reduce = {"sum": "ReduceSum", "ave": "ReduceMean", "mul": "ReduceProd"}[module.merge]
            y = g.reduce(reduce, Y, 1, hint="y")
        return y, (tuple(ff), tuple(fb))
    if isinstance(module, Stack):
        finals = []
        for k, sub in enumerate(module.layers):
            y, final = layer(g, sub, x, lens)
            if module.residual[k]:                 # the input's padding stays out, as in Stack.forward
                y = g.op("Add", [y, g.op("Mul", [x, valid_steps(g, x, lens)])], hint="residual")
            finals.append(final)
            x = y
        return x, finals
    raise ExportError(f"to_onnx: expected a Recurrent, Bidirectional or Stack layer, got {type(module).__name__}")
