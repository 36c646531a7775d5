"""One adapter per kernel family: how a cell's parameters, options and state map to the
extension's arguments, and its results back.

Every adapter follows :class:`Kernel`, the protocol :func:`lstmkit._engine.run` and its autograd
node call; an adapter overrides what differs for its family and inherits the rest (a state the
engine keeps as the cell does, outputs as they come). Options travel as the extension's option
structs, built by keyword (``ext.GatedOptions(input_gate=..., ...)``), so none can land in
another's place.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..cells import GRU, LSTM, LSTM1997, SLSTM, Cell, Elman, LayerNormLSTM, PeepholeLSTM
from ..cells.xlstm import block_diagonal

__all__ = ["Kernel", "KERNELS", "FAMILIES", "empty"]


def empty(like: Tensor) -> Tensor:
    """The "absent" marker for an optional tensor argument of the extension."""
    return like.new_empty(0)


class Kernel:
    """The protocol of a kernel family's adapter.

    - ``name``: the family's name in the engine's custom ops (``torch.ops.lstmkit.recurrence``);
    - ``params(cell)``: the tensors the kernel takes, in its order (None for an absent one);
    - ``spec(cell)``: the cell's options as a list of numbers (a custom op takes no objects);
    - ``forward(ext, spec, x, params, state, lengths, save)`` -> ``(Y, final_state, saved)``:
      Y (B, T, O) the output after every step, ``saved`` what the backward needs, Y first;
    - ``fake(spec, x, params, state, save)``: empty tensors shaped as ``forward``'s results
      (for ``torch.compile`` and ``torch.export``, which trace shapes without running the kernel);
    - ``backward(ext, spec, dY, dfinals, params, state, saved, lengths, x, need_dx)`` ->
      ``(dx, dparams, dstate)``, one gradient per input of the forward;
    - ``to_engine_state`` / ``from_engine_state``: the cell's state to the engine's and back;
    - ``outputs(cell, Y)``: the layer's outputs from the engine's Y;
    - ``step(ext, cell, x_t, state)`` -> ``(y_t, new_state)``: one step, no autograd (an adapter
      may override it to spend less per call than ``forward`` over one step does).
    """

    name = ""

    def params(self, cell: Cell) -> list:
        raise NotImplementedError

    def spec(self, cell: Cell) -> list[float]:
        return []

    def forward(self, ext, spec, x, params, state, lengths, save):
        raise NotImplementedError

    def fake(self, spec, x, params, state, save):
        raise NotImplementedError

    def backward(self, ext, spec, dY, dfinals, params, state, saved, lengths, x, need_dx):
        raise NotImplementedError

    def to_engine_state(self, cell: Cell, state: tuple) -> tuple:
        return state

    def from_engine_state(self, cell: Cell, *state: Tensor) -> tuple:
        return state

    def outputs(self, cell: Cell, Y: Tensor) -> Tensor:
        return Y

    def step(self, ext, cell: Cell, x_t: Tensor, state: tuple) -> tuple[Tensor, tuple]:
        x = x_t.unsqueeze(1).contiguous()                                    # (B, 1, I)
        params = [p if p is not None else empty(x) for p in self.params(cell)]
        engine_state = tuple(s.contiguous() for s in self.to_engine_state(cell, state))
        Y, finals, _ = self.forward(ext, self.spec(cell), x, params, engine_state, empty(x).long(), False)
        return self.outputs(cell, Y)[:, 0], tuple(self.from_engine_state(cell, *finals))


def _new(like: Tensor, *shape: int) -> Tensor:
    return like.new_empty(shape)


class Gated(Kernel):
    """lstm, peephole and the Greff variants: batch-first; the kernel does the input projection
    (each step's x_t W_ih^T goes into the same buffer as h W_hh^T) and adds the bias."""

    name = "gated"
    FLAGS = ("input_gate", "forget_gate", "coupled", "output_gate", "identity_g", "identity_h", "peepholes",
             "gate_recurrence")

    def spec(self, cell):
        if isinstance(cell, LSTM):
            return [1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]
        return [float(v) for v in (cell.input_gate, cell.forget_gate, cell.coupled, cell.output_gate,
                                   not cell.input_activation, not cell.output_activation, cell.peepholes,
                                   cell.weight_gg is not None)]

    def options(self, ext, spec):
        return ext.GatedOptions(**{name: bool(v) for name, v in zip(self.FLAGS, spec)})

    def params(self, cell):
        def get(name):
            return getattr(cell, name, None)
        return [cell.weight_ih, cell.weight_hh, get("peephole_i"), get("peephole_f"), get("peephole_o"),
                get("weight_gg"), cell.bias]

    def forward(self, ext, spec, x, params, state, lengths, save):
        h0, c0 = state[0], state[1]
        a0 = state[2] if len(state) > 2 else empty(h0)
        Y, C, A, G = ext.gated_forward(x, *params, h0, c0, a0, lengths, self.options(ext, spec), save)
        finals = (Y[:, -1].clone(), C[:, -1].clone()) + ((A[:, -1].clone(),) if len(state) > 2 else ())
        return Y, finals, [Y, C, A if A is not None else empty(Y), G]

    def fake(self, spec, x, params, state, save):
        (B, T, _), H, GH = x.shape, state[0].shape[1], params[0].shape[0]
        finals = tuple(_new(x, B, s.shape[1]) for s in state)
        A = _new(x, B, T, state[2].shape[1]) if len(state) > 2 else _new(x, 0)
        return _new(x, B, T, H), finals, [None, _new(x, B, T if save else 1, H), A, _new(x, B, T if save else 1, GH)]

    def step(self, ext, cell, x_t, state):
        # the forward over one step, less the glue that costs a third of a small step's time:
        # outputs and states are views of the (B, 1, H) results, not copies
        x, none = x_t.unsqueeze(1).contiguous(), x_t.new_empty(0)
        params = [p if p is not None else none for p in self.params(cell)]
        h0, c0 = state[0].contiguous(), state[1].contiguous()
        a0 = state[2].contiguous() if len(state) > 2 else none
        Y, C, A, _ = ext.gated_forward(x, *params, h0, c0, a0, none.long(), self.options(ext, self.spec(cell)),
                                       False)
        y = Y[:, 0]
        return y, (y, C[:, 0]) + ((A[:, 0],) if len(state) > 2 else ())

    def backward(self, ext, spec, dY, dfinals, params, state, saved, lengths, x, need_dx):
        h0, c0 = state[0], state[1]
        a0 = state[2] if len(state) > 2 else empty(h0)
        dh, dc = dfinals[0], dfinals[1]
        da = dfinals[2] if len(state) > 2 else empty(h0)
        dx, dwi, dw, dpi, dpf, dpo, dwg, db, dh0, dc0, da0 = ext.gated_backward(
            dY, dh, dc, da, x, *params, h0, c0, a0, *saved, lengths, self.options(ext, spec), need_dx)
        return dx, [dwi, dw, dpi, dpf, dpo, dwg, db], [dh0, dc0] + ([da0] if len(state) > 2 else [])


class LayerNorm(Kernel):
    """Batch-first; the kernel projects the input step by step and normalises each projection on
    its own (LN(x_t W_ih^T) and LN(h W_hh^T) in two small buffers)."""

    name = "layernorm"

    def spec(self, cell):
        return [float(cell.eps)]

    def params(self, cell):
        return [cell.weight_ih, cell.weight_hh, cell.bias, cell.gamma_ih, cell.gamma_hh, cell.gamma_c, cell.beta_c]

    def forward(self, ext, spec, x, params, state, lengths, save):
        Y, C, *saved = ext.layernorm_forward(x, *params, *state, lengths, spec[0], save)
        return Y, (Y[:, -1].clone(), C[:, -1].clone()), [Y, C, *saved]

    def fake(self, spec, x, params, state, save):
        (B, T, _), H, GH = x.shape, state[0].shape[1], params[0].shape[0]
        Ts = T if save else 1
        saved = [None, _new(x, B, T, H), _new(x, B, Ts, GH), _new(x, B, Ts, GH), _new(x, B, Ts, GH),
                 _new(x, B, Ts, H), _new(x, B, Ts, 3)]
        return _new(x, B, T, H), (_new(x, B, H), _new(x, B, H)), saved

    def backward(self, ext, spec, dY, dfinals, params, state, saved, lengths, x, need_dx):
        dx, *dparams, dh0, dc0 = ext.layernorm_backward(dY, *dfinals, x, *params, *state, *saved, lengths, need_dx)
        return dx, dparams, [dh0, dc0]


class GRUKernel(Kernel):
    """Both reset placements: batch-first; the kernel does the input projection step by step and
    adds the input-side bias (bias_ih, or Cho's bias)."""

    name = "gru"

    def spec(self, cell):
        return [float(cell.reset_after)]

    def params(self, cell):
        return [cell.weight_ih, cell.weight_hh, cell.bias_ih if cell.reset_after else cell.bias, cell.bias_hh]

    def forward(self, ext, spec, x, params, state, lengths, save):
        Y, G, Aux = ext.gru_forward(x, *params, state[0], lengths, bool(spec[0]), save)
        return Y, (Y[:, -1].clone(),), [Y, G, Aux]

    def fake(self, spec, x, params, state, save):
        (B, T, _), H = x.shape, state[0].shape[1]
        Ts = T if save else 1
        return _new(x, B, T, H), (_new(x, B, H),), [None, _new(x, B, Ts, 3 * H), _new(x, B, Ts, H)]

    def backward(self, ext, spec, dY, dfinals, params, state, saved, lengths, x, need_dx):
        dx, dwi, dw, dbx, dbh, dh0 = ext.gru_backward(dY, dfinals[0], x, *params, state[0], *saved, lengths,
                                                      bool(spec[0]), need_dx)
        return dx, [dwi, dw, dbx, dbh], [dh0]


class ElmanKernel(Kernel):
    """Batch-first; the kernel projects the input step by step and adds the bias."""

    name = "elman"
    ACTIVATIONS = {"tanh": 0, "relu": 1, "logistic": 2}      # the kernel's act argument

    def spec(self, cell):
        return [float(self.ACTIVATIONS[cell.activation])]

    def params(self, cell):
        return [cell.weight_ih, cell.weight_hh, cell.bias]

    def forward(self, ext, spec, x, params, state, lengths, save):
        (Y,) = ext.elman_forward(x, *params, state[0], lengths, int(spec[0]), save)
        return Y, (Y[:, -1].clone(),), [Y]

    def fake(self, spec, x, params, state, save):
        (B, T, _), H = x.shape, state[0].shape[1]
        return _new(x, B, T, H), (_new(x, B, H),), [None]

    def backward(self, ext, spec, dY, dfinals, params, state, saved, lengths, x, need_dx):
        dx, dwi, dw, db, dh0 = ext.elman_backward(dY, dfinals[0], x, *params, state[0], saved[0], lengths,
                                                  int(spec[0]), need_dx)
        return dx, [dwi, dw, db], [dh0]


class LSTM1997Kernel(Kernel):
    """Batch-first; the kernel projects the input step by step and adds the bias over all R rows.
    The engine's state is u = [y_c, gate activations] (or y_c) and s; the cell's is (y_c, s[, gates])."""

    name = "lstm1997"
    SQUASH = ("scaled", "logistic", "tanh", "identity")
    RECURRENT = ("all", "cells", "none")

    def spec(self, cell):
        return [float(v) for v in (cell.cell_size, cell.forget_gate, cell.output_gate, self.SQUASH.index(cell.g_name),
                                   self.SQUASH.index(cell.h_name), self.RECURRENT.index(cell.recurrent),
                                   cell.truncate)]

    def options(self, ext, spec):
        size, forget, output, g, h, recurrent, truncate = spec
        return ext.Options1997(cell_size=int(size), forget_gate=bool(forget), output_gate=bool(output),
                               g=getattr(ext.Squash1997, self.SQUASH[int(g)]),
                               h=getattr(ext.Squash1997, self.SQUASH[int(h)]),
                               recurrent=getattr(ext.Recurrent1997, self.RECURRENT[int(recurrent)]),
                               truncate=bool(truncate))

    def params(self, cell):
        return [cell.weight_ih, cell.weight_hh, cell._full_bias()]

    def to_engine_state(self, cell, state):
        u = torch.cat([state[0], state[2]], dim=-1) if cell.recurrent == "all" else state[0]
        return (u, state[1])

    def from_engine_state(self, cell, u, s):
        H = cell.hidden_size
        return (u[..., :H], s, u[..., H:]) if cell.recurrent == "all" else (u, s)

    def outputs(self, cell, Y):
        return Y[..., :cell.hidden_size]

    def forward(self, ext, spec, x, params, state, lengths, save):
        Us, Ss, G = ext.lstm1997_forward(x, *params, state[0], state[1], lengths, self.options(ext, spec), save)
        return Us, (Us[:, -1].clone(), Ss[:, -1].clone()), [Us, Ss, G]

    def fake(self, spec, x, params, state, save):
        (B, T, _), U, H, R = x.shape, state[0].shape[1], state[1].shape[1], params[0].shape[0]
        return (_new(x, B, T, U), (_new(x, B, U), _new(x, B, H)),
                [None, _new(x, B, T, H), _new(x, B, T if save else 1, R)])

    def backward(self, ext, spec, dY, dfinals, params, state, saved, lengths, x, need_dx):
        dx, dwi, dw, db, du0, ds0 = ext.lstm1997_backward(dY, dfinals[0], dfinals[1], x, *params, state[0], state[1],
                                                          *saved, lengths, self.options(ext, spec), need_dx)
        return dx, [dwi, dw, db], [du0, ds0]


class SLSTMKernel(Kernel):
    """Batch-first; the kernel projects the input step by step and adds the bias. The cell's
    block-diagonal recurrent weights (4, heads, d, d) travel as they are and are laid out as one
    (4H, H) matrix for the kernel's per-step product (zeros off the blocks: a product of one
    matrix runs faster here than one per head); the backward keeps the gradient's blocks only.
    States (h, c, n, m), as the cell's."""

    name = "slstm"

    def spec(self, cell):
        return [float(cell.forget == "exp")]

    def params(self, cell):
        return [cell.weight_ih, cell.weight_hh, cell.bias]

    @staticmethod
    def blocks(dense: Tensor, K: int) -> Tensor:
        """The diagonal blocks of a (4H, H) matrix, (4, K, d, d): ``block_diagonal``'s inverse."""
        H = dense.shape[1]
        d = H // K
        return dense.view(4, K, d, K, d).diagonal(dim1=1, dim2=3).permute(0, 3, 1, 2).contiguous()

    def forward(self, ext, spec, x, params, state, lengths, save):
        w_ih, w_hh, bias = params
        Y, C, N, M, Pre = ext.slstm_forward(x, w_ih, block_diagonal(w_hh), bias, *state, lengths, bool(spec[0]), save)
        finals = tuple(s[:, -1].clone() for s in (Y, C, N, M))
        return Y, finals, [Y, C, N, M, Pre]

    def fake(self, spec, x, params, state, save):
        (B, T, _), H = x.shape, state[0].shape[1]
        saved = [None, _new(x, B, T, H), _new(x, B, T, H), _new(x, B, T, H), _new(x, B, T if save else 1, 4 * H)]
        return _new(x, B, T, H), tuple(_new(x, B, H) for _ in range(4)), saved

    def backward(self, ext, spec, dY, dfinals, params, state, saved, lengths, x, need_dx):
        w_ih, w_hh, bias = params
        dx, dwi, dw, db, *dstate = ext.slstm_backward(dY, *dfinals, x, w_ih, block_diagonal(w_hh), bias, *state,
                                                      *saved, lengths, bool(spec[0]), need_dx)
        return dx, [dwi, self.blocks(dw, w_hh.shape[1]), db], dstate


_GATED = Gated()
#: The adapter of each cell class the engine has a kernel for (exact classes: a subclass may change the maths).
KERNELS: dict[type, Kernel] = {LSTM: _GATED, PeepholeLSTM: _GATED, LayerNormLSTM: LayerNorm(), GRU: GRUKernel(),
                               Elman: ElmanKernel(), LSTM1997: LSTM1997Kernel(), SLSTM: SLSTMKernel()}
#: The adapters by family name, as the custom ops receive it.
FAMILIES: dict[str, Kernel] = {kernel.name: kernel for kernel in KERNELS.values()}
