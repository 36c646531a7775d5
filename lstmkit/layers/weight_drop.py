"""``WeightDrop``: DropConnect on a layer's recurrent weights (Wan et al. 2013; Merity et al. 2018)."""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_probability, fail
from .recurrent import Recurrent

__all__ = ["WeightDrop"]


class WeightDrop(nn.Module):
    """A forward :class:`Recurrent` layer whose cell's ``weights`` (default the recurrent matrix
    ``weight_hh``) are dropped element-wise with probability ``p`` in training: one mask per
    forward pass, shared by every step and every sequence of the batch (AWD-LSTM's weight drop),
    the survivors scaled by 1 / (1 - p). In eval mode the cell computes with the weights as they are.

    The dropped matrix is handed to the cell under its own name, so the layer runs as it would
    without the wrapper: through the compiled engine where the cell has a kernel, the gradient
    reaching the kept weights through the mask. The trained weights are parameters named
    ``<name>_raw`` of the cell.

    ``forward(x, state=None, *, lengths=None)`` and ``step(x_t, state)`` as :class:`Recurrent`'s.
    """

    def __init__(self, layer: Recurrent, p: float, weights: Sequence[str] = ("weight_hh",)):
        super().__init__()
        if not isinstance(layer, Recurrent):
            fail("WeightDrop", "layer", "a Recurrent layer", type(layer).__name__, kind=TypeError)
        self.p = check_probability("WeightDrop", "p", p)
        self.layer = layer
        self.weights = tuple(weights)
        cell = layer.cell
        for name in self.weights:
            weight = cell._parameters.get(name)
            if weight is None:
                fail("WeightDrop", "weights", f"names of the cell's weight parameters ({', '.join(cell._parameters)})",
                     repr(name))
            del cell._parameters[name]
            cell.register_parameter(f"{name}_raw", weight)
            setattr(cell, name, weight.data)

    @property
    def input_size(self) -> int:
        return self.layer.input_size

    @property
    def output_size(self) -> int:
        return self.layer.output_size

    @property
    def batch_first(self) -> bool:
        return self.layer.batch_first

    def _set_weights(self) -> None:
        cell = self.layer.cell
        for name in self.weights:
            raw: Tensor = getattr(cell, f"{name}_raw")
            setattr(cell, name, F.dropout(raw, self.p, training=True) if self.training and self.p else raw)

    def forward(self, x: Tensor, state=None, *, lengths: Tensor | None = None):
        self._set_weights()
        return self.layer(x, state, lengths=lengths)

    def step(self, x_t: Tensor, state=None):
        self._set_weights()
        return self.layer.step(x_t, state)

    def extra_repr(self) -> str:
        return f"p={self.p}, weights={list(self.weights)}"
