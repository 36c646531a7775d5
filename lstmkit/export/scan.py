"""Cells without an ONNX native node as an ONNX ``Scan`` over the cell's step.

The body is the cell's :meth:`forward` written in ONNX operators: the peephole family with every
option of Greff et al. (no input, forget or output gate, no input or output activation, coupled
gates, gate recurrence), the layer-normalised LSTM, the 1997 cell with every option (blocks of
cells sharing gates, its squashing functions, its recurrent sources and biases, Gers' forget gate),
the minimal RNNs (minGRU, minLSTM: their step; the scan computes the same recurrence) and the
xLSTM's cells (sLSTM with its heads' blocks as one block-diagonal product; mLSTM with its matrix
memory as a (heads, d, d) state per row), and user cells (:mod:`.program`: the program the
engine runs, node by node). Each step also reads a mask of the valid rows, so a row
past its length keeps its state and outputs zero; the reverse direction reads each sequence
reversed within its length, as lstmkit does.
"""

from __future__ import annotations

import numpy as np
import torch

from ..cells import LSTM1997, MLSTM, SLSTM, Cell, LayerNormLSTM, MinGRU, MinimalRNN, MinLSTM, PeepholeLSTM
from ..cells.xlstm import block_diagonal
from . import program
from .graph import Graph
from .lengths import reversal, valid_steps

__all__ = ["supports", "direction"]


def supports(cell: Cell) -> bool:
    return type(cell) in _STEPS or program.supports(cell)


def _const(g: Graph, tensor: torch.Tensor, hint: str) -> str:
    return g.const(tensor.detach().cpu().numpy(), hint)


def _project(g: Graph, x: str, weight: torch.Tensor, hint: str) -> str:
    """x W^T for a (rows, columns) weight."""
    return g.op("MatMul", [x, g.const(weight.detach().cpu().numpy().T, hint)])


def _layer_norm(g: Graph, v: str, eps: float, gain: torch.Tensor, shift: torch.Tensor | None) -> str:
    """``F.layer_norm`` over the last axis (biased variance), times ``gain`` plus ``shift``."""
    centred = g.op("Sub", [v, g.reduce("ReduceMean", v, -1, keepdims=1)])
    variance = g.reduce("ReduceMean", g.op("Mul", [centred, centred]), -1, keepdims=1)
    normed = g.op("Div", [centred, g.op("Sqrt", [g.op("Add", [variance, g.const(eps, "eps")])])])
    out = g.op("Mul", [normed, _const(g, gain, "gain")])
    return out if shift is None else g.op("Add", [out, _const(g, shift, "shift")])


def _split(g: Graph, z: str, H: int, parts: int) -> list[str]:
    if parts == 1:
        return [z]
    return g.op("Split", [z, g.const([H] * parts, "split", np.int64)], outputs=parts, axis=1)


def _peephole_step(g: Graph, cell: PeepholeLSTM, x: str, state: list[str]) -> tuple[str, list[str]]:
    y, c = state[0], state[1]
    H = cell.hidden_size
    z = g.op("Add", [_project(g, x, cell.weight_ih, "weight_ih"), _project(g, y, cell.weight_hh, "weight_hh")])
    if cell.bias is not None:
        z = g.op("Add", [z, _const(g, cell.bias, "bias")])
    pre = dict(zip(cell.gates, _split(g, z, H, len(cell.gates))))
    if cell.weight_gg is not None:
        rec = _split(g, _project(g, state[2], cell.weight_gg, "weight_gg"), H, len(cell.recurrent_gates))
        for gate, r in zip(cell.recurrent_gates, rec):
            pre[gate] = g.op("Add", [pre[gate], r])

    def gate(name: str, cell_state: str) -> str:
        value = pre[name]
        if cell.peepholes:
            value = g.op("Add", [value, g.op("Mul", [_const(g, getattr(cell, f"peephole_{name}"), "peephole"),
                                                     cell_state])])
        return g.op("Sigmoid", [value])

    i = gate("i", c) if cell.input_gate else None
    if cell.coupled:
        f = g.op("Sub", [g.const(1.0, "one"), i])
    else:
        f = gate("f", c) if cell.forget_gate else None
    candidate = g.op("Tanh", [pre["g"]]) if cell.input_activation else pre["g"]
    c = g.op("Add", [candidate if i is None else g.op("Mul", [candidate, i]), c if f is None else g.op("Mul", [c, f])])
    o = gate("o", c) if cell.output_gate else None
    y = g.op("Tanh", [c]) if cell.output_activation else c
    if o is not None:
        y = g.op("Mul", [y, o])
    if cell.weight_gg is None:
        return y, [y, c]
    acts = {"i": i, "f": f, "o": o}
    return y, [y, c, g.op("Concat", [acts[k] for k in cell.recurrent_gates], axis=1)]


def _layernorm_step(g: Graph, cell: LayerNormLSTM, x: str, state: list[str]) -> tuple[str, list[str]]:
    h, c = state
    zx = _layer_norm(g, _project(g, x, cell.weight_ih, "weight_ih"), cell.eps, cell.gamma_ih, None)
    zh = _layer_norm(g, _project(g, h, cell.weight_hh, "weight_hh"), cell.eps, cell.gamma_hh, None)
    i, f, candidate, o = _split(g, g.op("Add", [g.op("Add", [zx, zh]), _const(g, cell.bias, "bias")]),
                                cell.hidden_size, 4)
    c = g.op("Add", [g.op("Mul", [g.op("Sigmoid", [f]), c]),
                     g.op("Mul", [g.op("Sigmoid", [i]), g.op("Tanh", [candidate])])])
    normed = _layer_norm(g, c, cell.eps, cell.gamma_c, cell.beta_c)
    h = g.op("Mul", [g.op("Sigmoid", [o]), g.op("Tanh", [normed])])
    return h, [h, c]


def _squash(g: Graph, name: str, v: str, low: float, high: float) -> str:
    """The 1997 cell's g or h: "scaled" is (high - low) sigmoid(v) + low."""
    if name == "identity":
        return v
    if name == "tanh":
        return g.op("Tanh", [v])
    if name == "logistic":
        return g.op("Sigmoid", [v])
    return g.op("Add", [g.op("Mul", [g.op("Sigmoid", [v]), g.const(high - low, "range")]), g.const(low, "low")])


def _lstm1997_step(g: Graph, cell: LSTM1997, x: str, state: list[str]) -> tuple[str, list[str]]:
    y_c, s = state[0], state[1]
    S = cell.cell_size
    z = _project(g, x, cell.weight_ih, "weight_ih")
    if cell.weight_hh is not None:                        # the truncated gradient changes nothing forward
        u = g.op("Concat", [y_c, state[2]], axis=1) if cell.recurrent == "all" else y_c
        z = g.op("Add", [z, _project(g, u, cell.weight_hh, "weight_hh")])
    bias = cell._full_bias()
    if bias is not None:
        z = g.op("Add", [z, _const(g, bias, "bias")])
    rows = [cell._rows[k] for k in cell.gates]
    pre = dict(zip(cell.gates, g.op("Split", [z, g.const(rows, "split", np.int64)], outputs=len(rows), axis=1)))
    gates = {k: g.op("Sigmoid", [pre[k]]) for k in ("i", "f", "o") if k in pre}         # (B, N) each

    def per_cell(block: str) -> str:
        """A block's value for each of its S cells, (B, N) -> (B, N·S), as repeat_interleave."""
        if S == 1:
            return block
        expanded = g.op("Expand", [g.op("Unsqueeze", [block, g.const([2], "axis", np.int64)]),
                                   g.const([1, 1, S], "cells", np.int64)])
        return g.op("Reshape", [expanded, g.const([0, -1], "shape", np.int64)])

    update = g.op("Mul", [per_cell(gates["i"]), _squash(g, cell.g_name, pre["g"], -2.0, 2.0)])
    if "f" in gates:
        s = g.op("Mul", [per_cell(gates["f"]), s])
    s = g.op("Add", [s, update])
    y_c = _squash(g, cell.h_name, s, -1.0, 1.0)
    if "o" in gates:
        y_c = g.op("Mul", [per_cell(gates["o"]), y_c])
    if cell.recurrent != "all":
        return y_c, [y_c, s]
    return y_c, [y_c, s, g.op("Concat", [gates[k] for k in ("i", "f", "o") if k in gates], axis=1)]


def _positive(g: Graph, v: str) -> str:
    """The minimal RNNs' candidate activation: ``v + 1/2`` for ``v >= 0``, ``sigmoid(v)`` below."""
    return g.op("Where", [g.op("GreaterOrEqual", [v, g.const(0.0, "zero")]), g.op("Add", [v, g.const(0.5, "half")]),
                          g.op("Sigmoid", [v])])


def _minimal_step(g: Graph, cell: MinimalRNN, x: str, state: list[str]) -> tuple[str, list[str]]:
    """minGRU's and minLSTM's step (their scan is the same recurrence run in parallel)."""
    z = _project(g, x, cell.weight_ih, "weight_ih")
    if cell.bias is not None:
        z = g.op("Add", [z, _const(g, cell.bias, "bias")])
    parts = _split(g, z, cell.hidden_size, len(cell.gates))
    candidate = _positive(g, parts[-1])
    if isinstance(cell, MinGRU):
        keep = g.op("Sigmoid", [parts[0]])
        take = keep
        keep = g.op("Sub", [g.const(1.0, "one"), keep])
    else:
        f, i = g.op("Sigmoid", [parts[0]]), g.op("Sigmoid", [parts[1]])
        total = g.op("Add", [f, i])
        keep, take = g.op("Div", [f, total]), g.op("Div", [i, total])
    h = g.op("Add", [g.op("Mul", [keep, state[0]]), g.op("Mul", [take, candidate])])
    return h, [h]


def _log_sigmoid(g: Graph, v: str) -> str:
    return g.op("Neg", [g.op("Softplus", [g.op("Neg", [v])])])


def _stabilised_gates(g: Graph, i: str, log_f: str, m: str) -> tuple[str, str, str]:
    """The xLSTM's stabiliser: ``m' = max(log f + m, i)``, ``exp(i - m')``, ``exp(log f + m - m')``."""
    carried = g.op("Add", [log_f, m])
    m_new = g.op("Max", [carried, i])
    return m_new, g.op("Exp", [g.op("Sub", [i, m_new])]), g.op("Exp", [g.op("Sub", [carried, m_new])])


def _slstm_step(g: Graph, cell: SLSTM, x: str, state: list[str]) -> tuple[str, list[str]]:
    """sLSTM: the heads' recurrent blocks as one block-diagonal (H, 4H) product."""
    h, c, n, m = state
    dense = block_diagonal(cell.weight_hh)
    z = g.op("Add", [_project(g, x, cell.weight_ih, "weight_ih"), _project(g, h, dense, "weight_hh")])
    if cell.bias is not None:
        z = g.op("Add", [z, _const(g, cell.bias, "bias")])
    i, f, cand, o = _split(g, z, cell.hidden_size, 4)
    log_f = _log_sigmoid(g, f) if cell.forget == "sigmoid" else f
    m, take, keep = _stabilised_gates(g, i, log_f, m)
    c = g.op("Add", [g.op("Mul", [keep, c]), g.op("Mul", [take, g.op("Tanh", [cand])])])
    n = g.op("Add", [g.op("Mul", [keep, n]), take])
    h = g.op("Mul", [g.op("Sigmoid", [o]), g.op("Div", [c, n])])
    return h, [h, c, n, m]


def _mlstm_step(g: Graph, cell: MLSTM, x: str, state: list[str]) -> tuple[str, list[str]]:
    """mLSTM: per head, the matrix memory (d, d) updated by the outer product of value and key."""
    C, n, m = state
    H, K = cell.hidden_size, cell.heads
    d = H // K
    z = _project(g, x, cell.weight_ih, "weight_ih")
    if cell.bias is not None:
        z = g.op("Add", [z, _const(g, cell.bias, "bias")])
    q, k, v, o, i, f = g.op("Split", [z, g.const([H] * 4 + [K] * 2, "split", np.int64)], outputs=6, axis=1)
    heads = g.const([0, K, d], "heads", np.int64)
    q, k, v = (g.op("Reshape", [t, heads]) for t in (q, k, v))                              # (B, K, d)
    k = g.op("Mul", [k, g.const(1.0 / float(np.sqrt(d)), "key_scale")])
    m, take, keep = _stabilised_gates(g, i, _log_sigmoid(g, f), m)                          # (B, K)

    def unsqueeze(t: str, *axes: int) -> str:
        return g.op("Unsqueeze", [t, g.const(list(axes), "axes", np.int64)])

    outer = g.op("Mul", [unsqueeze(v, 3), unsqueeze(k, 2)])                                 # (B, K, d, d)
    C = g.op("Add", [g.op("Mul", [unsqueeze(keep, 2, 3), C]), g.op("Mul", [unsqueeze(take, 2, 3), outer])])
    n = g.op("Add", [g.op("Mul", [unsqueeze(keep, 2), n]), g.op("Mul", [unsqueeze(take, 2), k])])
    numerator = g.op("Squeeze", [g.op("MatMul", [C, unsqueeze(q, 3)]), g.const([3], "axes", np.int64)])
    dot = g.reduce("ReduceSum", g.op("Mul", [n, q]), -1, keepdims=1)                        # (B, K, 1)
    denominator = g.op("Max", [g.op("Abs", [dot]), unsqueeze(g.op("Exp", [g.op("Neg", [m])]), 2)])
    read = g.op("Reshape", [g.op("Div", [numerator, denominator]), g.const([0, H], "flat", np.int64)])
    return g.op("Mul", [g.op("Sigmoid", [o]), read]), [C, n, m]


_STEPS = {PeepholeLSTM: _peephole_step, LayerNormLSTM: _layernorm_step, LSTM1997: _lstm1997_step,
          MinGRU: _minimal_step, MinLSTM: _minimal_step, SLSTM: _slstm_step, MLSTM: _mlstm_step}


def direction(g: Graph, layer, x: str, lens: str,
              initial: tuple[str, ...] | None = None) -> tuple[str, tuple[str, ...]]:
    """``layer`` (a Recurrent of a supported cell) over time-major ``x`` (T, B, I) with int32
    ``lens``: ``(y (T, B, H), final state)`` from the ``initial`` state tensors (None: zeros)."""
    cell = layer.cell
    mask = valid_steps(g, x, lens)                                                          # (T, B, 1)
    if layer.reverse:
        x = g.op("GatherElements", [x, reversal(g, x, lens)], axis=0)
    shapes = [list(shape) for shape in cell.state_shapes()]          # per row: (width,) or more axes
    if initial is None:
        batch = g.op("Slice", [g.op("Shape", [x]), g.const([1], "start", np.int64), g.const([2], "end", np.int64)])
        zero = g.onnx.helper.make_tensor("zero", g.onnx.TensorProto.FLOAT, [1], [0.0])
        initial = [g.op("ConstantOfShape", [g.op("Concat", [batch, g.const(shape, "width", np.int64)], axis=0)],
                        value=zero, hint="state0") for shape in shapes]
    body = g.subgraph()
    state = [body.input(body.fresh("state"), "FLOAT", ["batch", *shape]) for shape in shapes]
    x_t = body.input(body.fresh("x_t"), "FLOAT", ["batch", cell.input_size])
    m_t = body.input(body.fresh("valid_t"), "FLOAT", ["batch", 1])
    y_t, new = _STEPS.get(type(cell), program.step)(body, cell, x_t, state)
    for old, value, shape in zip(state, new, shapes):     # a row past its length keeps its state
        valid = m_t if len(shape) == 1 else body.op("Reshape", [m_t, body.const([-1] + [1] * len(shape), "rows",
                                                                                np.int64)])
        held = body.op("Sub", [body.const(1.0, "one"), valid])
        kept = body.op("Add", [body.op("Mul", [valid, value]), body.op("Mul", [held, old])])
        body.output(kept, body.fresh("state_out"), "FLOAT", ["batch", *shape])
    body.output(body.op("Mul", [y_t, m_t]), body.fresh("y_t"), "FLOAT", ["batch", cell.output_size])
    outputs = g.op("Scan", [*initial, x, mask], outputs=len(shapes) + 1, body=body.graph("step"),
                   num_scan_inputs=2, hint="scan")
    *finals, y = outputs
    if layer.reverse:
        y = g.op("GatherElements", [y, reversal(g, y, lens)], axis=0)
    return y, tuple(finals)
