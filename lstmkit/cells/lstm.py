"""LSTM with forget gate and no peepholes: the maths of ``torch.nn.LSTM``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._base import Cell, State
from ._registry import register

__all__ = ["LSTM"]


class LSTM(Cell):
    r"""LSTM cell with forget gate (Gers et al. 2000), no peepholes.

    .. math::
        i_t &= \sigma(W_i x_t + R_i h_{t-1} + b_i) \\
        f_t &= \sigma(W_f x_t + R_f h_{t-1} + b_f) \\
        g_t &= \tanh(W_g x_t + R_g h_{t-1} + b_g) \\
        o_t &= \sigma(W_o x_t + R_o h_{t-1} + b_o) \\
        c_t &= f_t \odot c_{t-1} + i_t \odot g_t \\
        h_t &= o_t \odot \tanh(c_t)

    Gate order in ``weight_ih`` (4H, I), ``weight_hh`` (4H, H) and ``bias`` (4H): (i, f, g, o),
    as in ``torch.nn.LSTM``, whose ``bias_ih + bias_hh`` is ``bias`` here. State: ``(h, c)``.
    ``gate_bias={"f": 1.0}`` gives the usual forget-gate bias of +1.
    """

    gates = ("i", "f", "g", "o")

    def __init__(self, input_size: int, hidden_size: int, *, bias: bool = True,
                 gate_bias: Mapping[str, float | Sequence[float]] | None = None, init_range: float | None = None):
        super().__init__(input_size, hidden_size)
        I, H = input_size, hidden_size
        self.weight_ih = nn.Parameter(torch.empty(4 * H, I))
        self.weight_hh = nn.Parameter(torch.empty(4 * H, H))
        self.bias = nn.Parameter(torch.empty(4 * H)) if bias else None
        self._init_uniform(init_range)
        self._apply_gate_bias(gate_bias)

    def state_shapes(self):
        return ((self.hidden_size,), (self.hidden_size,))

    def forward(self, x_t: Tensor, state: State) -> tuple[Tensor, State]:
        h, c = state                                                       # (B, H) each
        z = F.linear(x_t, self.weight_ih, self.bias) + F.linear(h, self.weight_hh)  # (B, 4H)
        i, f, g, o = z.chunk(4, dim=1)                                     # (B, H) each
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, (h, c)

    def _torch_rnn(self):
        """``nn.LSTM``'s form (:meth:`Cell.torch_rnn`): the same maths, tested equal; :meth:`step`
        runs its fused cell op, so a streaming step costs what the torch cell's does."""
        return "lstm", self.weight_ih, self.weight_hh, self.bias, None

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, bias={self.bias is not None}"


@register("lstm")
def lstm(input_size: int, hidden_size: int, *, bias: bool = True,
         gate_bias: Mapping[str, float | Sequence[float]] | None = None, init_range: float | None = None) -> LSTM:
    """LSTM with forget gate, no peepholes (``torch.nn.LSTM``)."""
    return LSTM(input_size, hidden_size, bias=bias, gate_bias=gate_bias, init_range=init_range)
