"""Elman RNN cell (Elman 1990): the baseline of the family."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import fail
from ._base import Cell, State
from ._registry import register

__all__ = ["Elman"]

_ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu, "logistic": torch.sigmoid}


class Elman(Cell):
    r"""Elman RNN cell.

    .. math::  h_t = \phi(W x_t + U h_{t-1} + b),\qquad \phi \in \{\tanh, \mathrm{relu}, \sigma\}

    Parameters: ``weight_ih`` (H, I), ``weight_hh`` (H, H), ``bias`` (H). State: ``(h,)``.
    With ``activation`` "tanh" or "relu" this is ``torch.nn.RNN`` (whose two bias vectors sum
    to ``bias``); "logistic" is the unit of Hochreiter & Schmidhuber's comparisons.
    """

    def __init__(self, input_size: int, hidden_size: int, *, activation: str = "tanh", bias: bool = True,
                 init_range: float | None = None):
        super().__init__(input_size, hidden_size)
        if activation not in _ACTIVATIONS:
            fail("Elman", "activation", f"one of {sorted(_ACTIVATIONS)}", repr(activation))
        I, H = input_size, hidden_size
        self.activation = activation
        self.weight_ih = nn.Parameter(torch.empty(H, I))
        self.weight_hh = nn.Parameter(torch.empty(H, H))
        self.bias = nn.Parameter(torch.empty(H)) if bias else None
        self._init_uniform(init_range)

    def state_shapes(self):
        return ((self.hidden_size,),)

    def forward(self, x_t: Tensor, state: State) -> tuple[Tensor, State]:
        (h,) = state
        h = _ACTIVATIONS[self.activation](F.linear(x_t, self.weight_ih, self.bias) + F.linear(h, self.weight_hh))
        return h, (h,)

    def _torch_rnn(self):
        """``nn.RNN``'s form for tanh and relu (:meth:`Cell.torch_rnn`), else None."""
        mode = {"tanh": "rnn_tanh", "relu": "rnn_relu"}.get(self.activation)
        return None if mode is None else (mode, self.weight_ih, self.weight_hh, self.bias, None)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, activation={self.activation!r}, bias={self.bias is not None}"


@register("elman")
def elman(input_size: int, hidden_size: int, *, activation: str = "tanh", bias: bool = True,
          init_range: float | None = None) -> Elman:
    """Elman RNN (tanh by default; "relu" or "logistic")."""
    return Elman(input_size, hidden_size, activation=activation, bias=bias, init_range=init_range)
