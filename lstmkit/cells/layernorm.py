"""LSTM with layer normalisation (Ba, Kiros & Hinton 2016)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._base import Cell, State
from ._registry import register

__all__ = ["LayerNormLSTM"]


class LayerNormLSTM(Cell):
    r"""LSTM with layer normalisation of the gate pre-activations and of the cell state.

    .. math::
        (i, f, g, o) &= \mathrm{LN}(W x_t) \odot \gamma_x + \mathrm{LN}(R h_{t-1}) \odot \gamma_h + b \\
        c_t &= \sigma(f) \odot c_{t-1} + \sigma(i) \odot \tanh(g) \\
        h_t &= \sigma(o) \odot \tanh(\mathrm{LN}(c_t) \odot \gamma_c + \beta_c)

    LN normalises over the features (all 4H pre-activations of one projection; the H cells),
    with ``eps``. Gate order (i, f, g, o) in ``weight_ih`` (4H, I), ``weight_hh`` (4H, H),
    ``bias``, ``gamma_ih`` and ``gamma_hh`` (4H each); ``gamma_c``, ``beta_c`` (H). Gains start
    at 1 and ``beta_c`` at 0. State: ``(h, c)``.
    """

    gates = ("i", "f", "g", "o")

    def __init__(self, input_size: int, hidden_size: int, *, eps: float = 1e-5,
                 gate_bias: Mapping[str, float | Sequence[float]] | None = None, init_range: float | None = None):
        super().__init__(input_size, hidden_size)
        I, H = input_size, hidden_size
        self.eps = float(eps)
        self.weight_ih = nn.Parameter(torch.empty(4 * H, I))
        self.weight_hh = nn.Parameter(torch.empty(4 * H, H))
        self.bias = nn.Parameter(torch.empty(4 * H))
        self._init_uniform(init_range)
        self.gamma_ih = nn.Parameter(torch.ones(4 * H))
        self.gamma_hh = nn.Parameter(torch.ones(4 * H))
        self.gamma_c = nn.Parameter(torch.ones(H))
        self.beta_c = nn.Parameter(torch.zeros(H))
        self._apply_gate_bias(gate_bias)

    def state_shapes(self):
        return ((self.hidden_size,), (self.hidden_size,))

    def forward(self, x_t: Tensor, state: State) -> tuple[Tensor, State]:
        h, c = state                                                       # (B, H) each
        G = 4 * self.hidden_size
        zx = F.layer_norm(F.linear(x_t, self.weight_ih), (G,), self.gamma_ih, None, self.eps)  # (B, 4H)
        zh = F.layer_norm(F.linear(h, self.weight_hh), (G,), self.gamma_hh, None, self.eps)   # (B, 4H)
        i, f, g, o = (zx + zh + self.bias).chunk(4, dim=1)                 # (B, H) each
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(F.layer_norm(c, (self.hidden_size,), self.gamma_c, self.beta_c, self.eps))
        return h, (h, c)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, eps={self.eps}"


@register("layernorm_lstm")
def layernorm_lstm(input_size: int, hidden_size: int, *, eps: float = 1e-5,
                   gate_bias: Mapping[str, float | Sequence[float]] | None = None,
                   init_range: float | None = None) -> LayerNormLSTM:
    """LSTM with layer normalisation of the gate pre-activations and the cell state."""
    return LayerNormLSTM(input_size, hidden_size, eps=eps, gate_bias=gate_bias, init_range=init_range)
