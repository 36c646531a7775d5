"""GRU (Cho et al. 2014) in both reset-gate placements."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._base import Cell, State
from ._registry import register

__all__ = ["GRU"]


class GRU(Cell):
    r"""Gated recurrent unit.

    With ``reset_after=True`` (the cuDNN / ``torch.nn.GRU`` / Keras ``reset_after=True`` form)
    the reset gate multiplies the recurrent product, recurrent bias included:

    .. math::
        r_t &= \sigma(W_r x_t + b_{ir} + U_r h_{t-1} + b_{hr}) \\
        z_t &= \sigma(W_z x_t + b_{iz} + U_z h_{t-1} + b_{hz}) \\
        n_t &= \tanh(W_n x_t + b_{in} + r_t \odot (U_n h_{t-1} + b_{hn})) \\
        h_t &= (1 - z_t) \odot n_t + z_t \odot h_{t-1}

    With ``reset_after=False`` (Cho et al. 2014, arXiv v3) the reset gate multiplies the state
    before the product, and one bias vector suffices:
    :math:`n_t = \tanh(W_n x_t + U_n (r_t \odot h_{t-1}) + b_n)`.

    Gate order in ``weight_ih`` (3H, I), ``weight_hh`` (3H, H) and the biases: (r, z, n).
    Parameters: ``bias_ih`` and ``bias_hh`` (3H each) with ``reset_after=True``, ``bias`` (3H)
    otherwise. State: ``(h,)``. The two forms are different functions: their weights do not swap.
    """

    gates = ("r", "z", "n")

    def __init__(self, input_size: int, hidden_size: int, *, reset_after: bool = True, bias: bool = True,
                 gate_bias: Mapping[str, float | Sequence[float]] | None = None, init_range: float | None = None):
        super().__init__(input_size, hidden_size)
        I, H = input_size, hidden_size
        self.reset_after = bool(reset_after)
        self.weight_ih = nn.Parameter(torch.empty(3 * H, I))
        self.weight_hh = nn.Parameter(torch.empty(3 * H, H))
        if not bias:
            self.bias_ih = self.bias_hh = self.bias = None
        elif self.reset_after:
            self.bias_ih = nn.Parameter(torch.empty(3 * H))
            self.bias_hh = nn.Parameter(torch.empty(3 * H))
            self.bias = None
        else:
            self.bias = nn.Parameter(torch.empty(3 * H))
            self.bias_ih = self.bias_hh = None
        self._init_uniform(init_range)
        self._apply_gate_bias(gate_bias)

    def _gate_rows(self):
        H = self.hidden_size
        params = tuple(p for p in (self.bias_ih, self.bias_hh, self.bias) if p is not None)
        return {} if not params else {g: (params, slice(k * H, (k + 1) * H)) for k, g in enumerate(self.gates)}

    def state_shapes(self):
        return ((self.hidden_size,),)

    def forward(self, x_t: Tensor, state: State) -> tuple[Tensor, State]:
        (h,) = state                                                       # (B, H)
        H = self.hidden_size
        if self.reset_after:
            gi = F.linear(x_t, self.weight_ih, self.bias_ih)               # (B, 3H)
            gh = F.linear(h, self.weight_hh, self.bias_hh)                 # (B, 3H)
            i_r, i_z, i_n = gi.chunk(3, dim=1)
            h_r, h_z, h_n = gh.chunk(3, dim=1)
            r = torch.sigmoid(i_r + h_r)
            z = torch.sigmoid(i_z + h_z)
            n = torch.tanh(i_n + r * h_n)
        else:
            gi = F.linear(x_t, self.weight_ih, self.bias)                  # (B, 3H)
            i_r, i_z, i_n = gi.chunk(3, dim=1)
            h_rz = F.linear(h, self.weight_hh[: 2 * H])                    # (B, 2H)
            r = torch.sigmoid(i_r + h_rz[:, :H])
            z = torch.sigmoid(i_z + h_rz[:, H:])
            n = torch.tanh(i_n + F.linear(r * h, self.weight_hh[2 * H:]))
        h = (1 - z) * n + z * h
        return h, (h,)

    def _torch_rnn(self):
        """``nn.GRU``'s form where the maths is its (the reset gate after the recurrent product;
        :meth:`Cell.torch_rnn`), else None."""
        if not self.reset_after:
            return None
        return "gru", self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh

    def extra_repr(self) -> str:
        has_bias = any(p is not None for p in (self.bias_ih, self.bias))
        return f"{self.input_size}, {self.hidden_size}, reset_after={self.reset_after}, bias={has_bias}"


@register("gru")
def gru(input_size: int, hidden_size: int, *, bias: bool = True,
        gate_bias: Mapping[str, float | Sequence[float]] | None = None, init_range: float | None = None) -> GRU:
    """GRU with the reset gate after the recurrent product (``torch.nn.GRU``)."""
    return GRU(input_size, hidden_size, reset_after=True, bias=bias, gate_bias=gate_bias, init_range=init_range)


@register("gru_cho")
def gru_cho(input_size: int, hidden_size: int, *, bias: bool = True,
            gate_bias: Mapping[str, float | Sequence[float]] | None = None, init_range: float | None = None) -> GRU:
    """GRU exactly as Cho et al. 2014: the reset gate before the recurrent product."""
    return GRU(input_size, hidden_size, reset_after=False, bias=bias, gate_bias=gate_bias, init_range=init_range)
