"""``Stack``: deep recurrent networks."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import fail
from ..cells import Cell
from .bidirectional import Bidirectional
from .lengths import valid_steps
from .recurrent import Recurrent

__all__ = ["Stack"]

Layer = Recurrent | Bidirectional


class Stack(nn.Module):
    """Layers applied in turn: the output sequence of one is the input of the next.

    ``layers``: :class:`Recurrent` or :class:`Bidirectional` layers (a cell is wrapped in a
    forward ``Recurrent``). ``dropout`` is applied to the output of every layer but the last
    (as ``torch.nn.LSTM`` does), in training mode only. ``residual`` adds a layer's input to its
    output: True for every layer after the first, or one bool per layer. A residual layer must
    keep the feature size; where it does not, construction fails naming the layer.

    ``forward(x, state=None, *, lengths=None) -> (y, states)``: ``states`` is a list with each
    layer's final state, and ``state`` such a list (or None). A stack of forward layers streams
    like a single one (in eval mode, where dropout is off).
    """

    def __init__(self, layers: Sequence[Layer | Cell], *, dropout: float = 0.0, residual: bool | Sequence[bool] = False):
        super().__init__()
        if isinstance(layers, nn.Module) or not isinstance(layers, Sequence) or not layers:
            fail("Stack", "layers", "a non-empty list of Recurrent/Bidirectional layers or cells",
                 type(layers).__name__, kind=TypeError)
        wrapped = []
        for k, layer in enumerate(layers):
            if isinstance(layer, Cell):
                layer = Recurrent(layer)
            if not isinstance(layer, (Recurrent, Bidirectional)):
                fail("Stack", f"layers[{k}]", "a Recurrent, a Bidirectional or a Cell", type(layer).__name__,
                     kind=TypeError)
            if isinstance(layer, Bidirectional) and layer.output_size is None and k < len(layers) - 1:
                fail("Stack", f"layers[{k}]", "a Bidirectional with merge 'concat', 'sum', 'mul' or 'ave' "
                     "(its output feeds the next layer)", f"merge={layer.merge!r}")
            wrapped.append(layer)
        for k in range(1, len(wrapped)):
            prev, layer = wrapped[k - 1], wrapped[k]
            if layer.input_size != prev.output_size:
                fail("Stack", f"layers[{k}]", f"input_size={prev.output_size} (the output size of layers[{k - 1}])",
                     f"input_size={layer.input_size}")
            if layer.batch_first != prev.batch_first:
                fail("Stack", f"layers[{k}]", f"batch_first={prev.batch_first} like layers[0]",
                     f"batch_first={layer.batch_first}")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
            fail("Stack", "dropout", "a probability in [0, 1)", repr(dropout))
        if isinstance(residual, bool):
            residual = [False] + [residual] * (len(wrapped) - 1)
        residual = list(residual)
        if len(residual) != len(wrapped) or not all(isinstance(r, bool) for r in residual):
            fail("Stack", "residual", f"a bool or {len(wrapped)} bools (one per layer)", repr(residual),
                 kind=TypeError)
        for k, (layer, res) in enumerate(zip(wrapped, residual)):
            if res and layer.input_size != layer.output_size:
                fail("Stack", "residual", f"layers whose input and output sizes match; layers[{k}] maps "
                     f"{layer.input_size} features to {layer.output_size}", f"residual[{k}]=True")
        self.layers = nn.ModuleList(wrapped)
        self.dropout = float(dropout)
        self.residual = residual

    @property
    def batch_first(self) -> bool:
        return self.layers[0].batch_first

    @property
    def input_size(self) -> int:
        return self.layers[0].input_size

    @property
    def output_size(self) -> int | None:
        return self.layers[-1].output_size

    def forward(self, x: Tensor, state: Sequence | None = None, *, lengths: Tensor | None = None):
        if state is None:
            state = [None] * len(self.layers)
        elif not isinstance(state, Sequence) or isinstance(state, Tensor) or len(state) != len(self.layers):
            fail("Stack", "state", f"a list of {len(self.layers)} layer states (or None)",
                 f"{type(state).__name__} of length {len(state) if isinstance(state, Sequence) else '?'}",
                 kind=TypeError)
        finals = []
        for k, (layer, s) in enumerate(zip(self.layers, state)):
            y, final = layer(x, s, lengths=lengths)
            if self.residual[k]:
                y = y + (x if lengths is None else x * self._valid(x, lengths))   # padding stays zero
            if self.dropout and self.training and k < len(self.layers) - 1:
                y = F.dropout(y, self.dropout, training=True)
            finals.append(final)
            x = y
        return x, finals

    def step(self, x_t: Tensor, state: Sequence | None = None) -> tuple[Tensor, list]:
        """One step of every layer: ``x_t`` (B, I) -> ``(y_t (B, O), states)``, the streaming form
        of :meth:`forward` (forward layers only: a bidirectional or reverse layer needs the whole
        sequence)."""
        if state is None:
            state = [None] * len(self.layers)
        elif not isinstance(state, Sequence) or isinstance(state, Tensor) or len(state) != len(self.layers):
            fail("Stack.step", "state", f"a list of {len(self.layers)} layer states (or None)", type(state).__name__,
                 kind=TypeError)
        finals = []
        for k, (layer, s) in enumerate(zip(self.layers, state)):
            if isinstance(layer, Bidirectional) or not hasattr(layer, "step"):
                fail("Stack.step", "self", "forward layers only (a bidirectional layer needs the whole sequence)",
                     f"layers[{k}] {type(layer).__name__}")
            y, final = layer.step(x_t, s)
            if self.residual[k]:
                y = y + x_t
            if self.dropout and self.training and k < len(self.layers) - 1:
                y = F.dropout(y, self.dropout, training=True)
            finals.append(final)
            x_t = y
        return x_t, finals

    def _valid(self, x: Tensor, lengths: Tensor) -> Tensor:
        """(B, T, 1) or (T, B, 1) mask of the valid steps, in ``x``'s layout and dtype."""
        T = x.shape[1] if self.batch_first else x.shape[0]
        valid = valid_steps(torch.as_tensor(lengths, device=x.device), T)   # (B, T)
        valid = valid if self.batch_first else valid.T
        return valid.unsqueeze(-1).to(x.dtype)

    def extra_repr(self) -> str:
        return f"dropout={self.dropout}, residual={self.residual}"
