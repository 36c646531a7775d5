"""Built-in cells written again as :class:`~lstmkit.cells.UserCell`: ``torch.nn.LSTM``'s and
``torch.nn.GRU``'s maths and Greff's peephole LSTM, with the built-in cells' parameter names, so a
state dict moves between each and its built-in twin.

They show how a cell is written for the engine, and they measure it: the tests check each equal
to the built-in kernel (float64, outputs and gradients) and ``benchmarks/bench_user_cells.py``
times each against it. Use the built-in cells for work; these are examples.
"""

from __future__ import annotations

import torch
from torch import nn

from .user import UserCell

__all__ = ["WrittenLSTM", "WrittenGRU", "WrittenPeephole"]


class _TwoMatrices(UserCell):
    """``weight_ih`` (G·H, I), ``weight_hh`` (G·H, H), and ``bias`` (G·H) or ``bias_ih`` and ``bias_hh``."""

    def __init__(self, input_size: int, hidden_size: int, gates: int, biases: tuple[str, ...]):
        super().__init__(input_size, hidden_size)
        H = hidden_size
        self.weight_ih = nn.Parameter(torch.empty(gates * H, input_size))
        self.weight_hh = nn.Parameter(torch.empty(gates * H, H))
        for name in biases:
            self.register_parameter(name, nn.Parameter(torch.empty(gates * H)))


class WrittenLSTM(_TwoMatrices):
    """``lstm`` as a user cell: gates (i, f, g, o), states (h, c), c has no product of its own."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__(input_size, hidden_size, 4, ("bias",))
        self._init_uniform(None)

    def state_shapes(self):
        return ((self.hidden_size,), (self.hidden_size,))

    def products(self):
        return self.weight_ih, (self.weight_hh, None)

    def pointwise(self, zx, zs, state):
        i, f, g, o = (zx + zs[0] + self.bias).chunk(4, -1)
        c = torch.sigmoid(f) * state[1] + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


class WrittenGRU(_TwoMatrices):
    """``gru`` as a user cell: gates (r, z, n), the reset gate after the recurrent product."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__(input_size, hidden_size, 3, ("bias_ih", "bias_hh"))
        self._init_uniform(None)

    def state_shapes(self):
        return ((self.hidden_size,),)

    def products(self):
        return self.weight_ih, (self.weight_hh,)

    def pointwise(self, zx, zs, state):
        xr, xz, xn = (zx + self.bias_ih).chunk(3, -1)
        hr, hz, hn = (zs[0] + self.bias_hh).chunk(3, -1)
        r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
        return ((1 - z) * torch.tanh(xn + r * hn) + z * state[0],)


class WrittenPeephole(WrittenLSTM):
    """``peephole`` as a user cell: the input and forget gates peek at the old cell state, the output
    gate at the new one; peepholes are per-unit vectors, read in the pointwise step."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__(input_size, hidden_size)
        H = hidden_size
        self.peephole_i, self.peephole_f, self.peephole_o = (nn.Parameter(torch.empty(H)) for _ in range(3))
        self._init_uniform(None)

    def pointwise(self, zx, zs, state):
        y, c = state
        zi, zf, zg, zo = (zx + zs[0] + self.bias).chunk(4, -1)
        c_new = torch.sigmoid(zf + self.peephole_f * c) * c + torch.sigmoid(zi + self.peephole_i * c) * torch.tanh(zg)
        return torch.sigmoid(zo + self.peephole_o * c_new) * torch.tanh(c_new), c_new
