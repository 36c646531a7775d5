"""Named builders for the usual shapes of recurrent network."""

from __future__ import annotations

from collections.abc import Callable

from .._checks import check_positive_int
from ..cells import make
from .bidirectional import Bidirectional
from .recurrent import Recurrent
from .stack import Stack

__all__ = ["build_rnn"]


def build_rnn(cell: str, input_size: int, hidden_size: int, *, num_layers: int = 1, bidirectional: bool = False,
              merge: str | Callable | None = "concat", dropout: float = 0.0, residual: bool = False,
              batch_first: bool = True, engine: str = "auto", **options) -> Recurrent | Bidirectional | Stack:
    """A (deep, bidirectional) network of the registered ``cell``, like ``torch.nn.LSTM``'s arguments.

    Returns a :class:`Recurrent` or :class:`Bidirectional` for one layer, a :class:`Stack`
    otherwise. ``options`` go to every cell (see ``lstmkit.cells.make``); ``engine`` to every
    layer (see :class:`Recurrent`).

    >>> net = build_rnn("peephole", 8, 16, num_layers=2, bidirectional=True)
    >>> net.output_size
    32
    """
    check_positive_int("build_rnn", "num_layers", num_layers)
    layers, size = [], input_size
    for _ in range(num_layers):
        if bidirectional:
            layer = Bidirectional(Recurrent(make(cell, size, hidden_size, **options), batch_first=batch_first,
                                            engine=engine),
                                  Recurrent(make(cell, size, hidden_size, **options), reverse=True,
                                            batch_first=batch_first, engine=engine), merge=merge)
        else:
            layer = Recurrent(make(cell, size, hidden_size, **options), batch_first=batch_first, engine=engine)
        layers.append(layer)
        size = layer.output_size
    if num_layers == 1:
        return layers[0]
    return Stack(layers, dropout=dropout, residual=residual)
