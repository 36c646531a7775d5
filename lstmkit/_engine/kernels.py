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

from ..cells import GRU, LSTM, LSTM1997, Cell, Elman, LayerNormLSTM, PeepholeLSTM

__all__ = ["Kernel", "KERNELS", "empty"]


def empty(like: Tensor) -> Tensor:
    """The "absent" marker for an optional tensor argument of the extension."""
    return like.new_empty(0)


class Kernel:
    """The protocol of a kernel family's adapter.

    - ``params(cell)``: the tensors the kernel takes, in its order (None for an absent one);
    - ``forward(ext, cell, x, params, state, lengths, save)`` -> ``(Y, final_state, saved)``:
      Y (B, T, O) the output after every step, ``saved`` what the backward needs;
    - ``backward(ext, cell, dY, dfinals, params, state, saved, lengths, x, need_dx)`` ->
      ``(dx, dparams, dstate)``, one gradient per input of the forward;
    - ``to_engine_state`` / ``from_engine_state``: the cell's state to the engine's and back;
    - ``outputs(cell, Y)``: the layer's outputs from the engine's Y;
    - ``step(ext, cell, x_t, state)`` -> ``(y_t, new_state)``: one step, no autograd (an adapter
      may override it to spend less per call than ``forward`` over one step does).
    """

    def params(self, cell: Cell) -> list:
        raise NotImplementedError

    def forward(self, ext, cell, x, params, state, lengths, save):
        raise NotImplementedError

    def backward(self, ext, cell, dY, dfinals, params, state, saved, lengths, x, need_dx):
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
        Y, finals, _ = self.forward(ext, cell, x, params, engine_state, empty(x).long(), False)
        return self.outputs(cell, Y)[:, 0], tuple(self.from_engine_state(cell, *finals))


class Gated(Kernel):
    """lstm, peephole and the Greff variants: batch-first; the kernel does the input projection
    (each step's x_t W_ih^T goes into the same buffer as h W_hh^T) and adds the bias."""

    @staticmethod
    def options(ext, cell: Cell):
        if isinstance(cell, LSTM):
            return ext.GatedOptions(input_gate=True, forget_gate=True, coupled=False, output_gate=True,
                                    identity_g=False, identity_h=False, peepholes=False, gate_recurrence=False)
        return ext.GatedOptions(input_gate=cell.input_gate, forget_gate=cell.forget_gate, coupled=cell.coupled,
                                output_gate=cell.output_gate, identity_g=not cell.input_activation,
                                identity_h=not cell.output_activation, peepholes=cell.peepholes,
                                gate_recurrence=cell.weight_gg is not None)

    def params(self, cell):
        def get(name):
            return getattr(cell, name, None)
        return [cell.weight_ih, cell.weight_hh, get("peephole_i"), get("peephole_f"), get("peephole_o"),
                get("weight_gg"), cell.bias]

    def forward(self, ext, cell, x, params, state, lengths, save):
        h0, c0 = state[0], state[1]
        a0 = state[2] if len(state) > 2 else empty(h0)
        Y, C, A, G = ext.gated_forward(x, *params, h0, c0, a0, lengths, self.options(ext, cell), save)
        finals = (Y[:, -1].clone(), C[:, -1].clone()) + ((A[:, -1].clone(),) if len(state) > 2 else ())
        return Y, finals, [Y, C, A if A is not None else empty(Y), G]

    def step(self, ext, cell, x_t, state):
        # the forward over one step, less the glue that costs a third of a small step's time:
        # outputs and states are views of the (B, 1, H) results, not copies
        x, none = x_t.unsqueeze(1).contiguous(), x_t.new_empty(0)
        params = [p if p is not None else none for p in self.params(cell)]
        h0, c0 = state[0].contiguous(), state[1].contiguous()
        a0 = state[2].contiguous() if len(state) > 2 else none
        Y, C, A, _ = ext.gated_forward(x, *params, h0, c0, a0, none.long(), self.options(ext, cell), False)
        y = Y[:, 0]
        return y, (y, C[:, 0]) + ((A[:, 0],) if len(state) > 2 else ())

    def backward(self, ext, cell, dY, dfinals, params, state, saved, lengths, x, need_dx):
        h0, c0 = state[0], state[1]
        a0 = state[2] if len(state) > 2 else empty(h0)
        dh, dc = dfinals[0], dfinals[1]
        da = dfinals[2] if len(state) > 2 else empty(h0)
        dx, dwi, dw, dpi, dpf, dpo, dwg, db, dh0, dc0, da0 = ext.gated_backward(
            dY, dh, dc, da, x, *params, h0, c0, a0, *saved, lengths, self.options(ext, cell), need_dx)
        return dx, [dwi, dw, dpi, dpf, dpo, dwg, db], [dh0, dc0] + ([da0] if len(state) > 2 else [])


class LayerNorm(Kernel):
    """Batch-first; the kernel projects the input step by step and normalises each projection on
    its own (LN(x_t W_ih^T) and LN(h W_hh^T) in two small buffers)."""

    def params(self, cell):
        return [cell.weight_ih, cell.weight_hh, cell.bias, cell.gamma_ih, cell.gamma_hh, cell.gamma_c, cell.beta_c]

    def forward(self, ext, cell, x, params, state, lengths, save):
        Y, C, *saved = ext.layernorm_forward(x, *params, *state, lengths, cell.eps, save)
        return Y, (Y[:, -1].clone(), C[:, -1].clone()), [Y, C, *saved]

    def backward(self, ext, cell, dY, dfinals, params, state, saved, lengths, x, need_dx):
        dx, *dparams, dh0, dc0 = ext.layernorm_backward(dY, *dfinals, x, *params, *state, *saved, lengths, need_dx)
        return dx, dparams, [dh0, dc0]


class GRUKernel(Kernel):
    """Both reset placements: batch-first; the kernel does the input projection step by step and
    adds the input-side bias (bias_ih, or Cho's bias)."""

    def params(self, cell):
        return [cell.weight_ih, cell.weight_hh, cell.bias_ih if cell.reset_after else cell.bias, cell.bias_hh]

    def forward(self, ext, cell, x, params, state, lengths, save):
        Y, G, Aux = ext.gru_forward(x, *params, state[0], lengths, cell.reset_after, save)
        return Y, (Y[:, -1].clone(),), [Y, G, Aux]

    def backward(self, ext, cell, dY, dfinals, params, state, saved, lengths, x, need_dx):
        dx, dwi, dw, dbx, dbh, dh0 = ext.gru_backward(dY, dfinals[0], x, *params, state[0], *saved, lengths,
                                                      cell.reset_after, need_dx)
        return dx, [dwi, dw, dbx, dbh], [dh0]


class ElmanKernel(Kernel):
    """Batch-first; the kernel projects the input step by step and adds the bias."""

    ACTIVATIONS = {"tanh": 0, "relu": 1, "logistic": 2}      # the kernel's act argument

    def params(self, cell):
        return [cell.weight_ih, cell.weight_hh, cell.bias]

    def forward(self, ext, cell, x, params, state, lengths, save):
        (Y,) = ext.elman_forward(x, *params, state[0], lengths, self.ACTIVATIONS[cell.activation], save)
        return Y, (Y[:, -1].clone(),), [Y]

    def backward(self, ext, cell, dY, dfinals, params, state, saved, lengths, x, need_dx):
        dx, dwi, dw, db, dh0 = ext.elman_backward(dY, dfinals[0], x, *params, state[0], saved[0], lengths,
                                                  self.ACTIVATIONS[cell.activation], need_dx)
        return dx, [dwi, dw, db], [dh0]


class LSTM1997Kernel(Kernel):
    """Batch-first; the kernel projects the input step by step and adds the bias over all R rows.
    The engine's state is u = [y_c, gate activations] (or y_c) and s; the cell's is (y_c, s[, gates])."""

    @staticmethod
    def options(ext, cell):
        return ext.Options1997(cell_size=cell.cell_size, forget_gate=cell.forget_gate, output_gate=cell.output_gate,
                               g=getattr(ext.Squash1997, cell.g_name), h=getattr(ext.Squash1997, cell.h_name),
                               recurrent=getattr(ext.Recurrent1997, cell.recurrent), truncate=cell.truncate)

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

    def forward(self, ext, cell, x, params, state, lengths, save):
        Us, Ss, G = ext.lstm1997_forward(x, *params, state[0], state[1], lengths, self.options(ext, cell), save)
        return Us, (Us[:, -1].clone(), Ss[:, -1].clone()), [Us, Ss, G]

    def backward(self, ext, cell, dY, dfinals, params, state, saved, lengths, x, need_dx):
        dx, dwi, dw, db, du0, ds0 = ext.lstm1997_backward(dY, dfinals[0], dfinals[1], x, *params, state[0], state[1],
                                                          *saved, lengths, self.options(ext, cell), need_dx)
        return dx, [dwi, dw, db], [du0, ds0]


_GATED = Gated()
#: The adapter of each cell class the engine has a kernel for (exact classes: a subclass may change the maths).
KERNELS: dict[type, Kernel] = {LSTM: _GATED, PeepholeLSTM: _GATED, LayerNormLSTM: LayerNorm(), GRU: GRUKernel(),
                               Elman: ElmanKernel(), LSTM1997: LSTM1997Kernel()}
