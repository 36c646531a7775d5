"""``Bidirectional``: two one-direction layers over the same input, merged."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from .._checks import fail
from ..cells import Cell, State
from .recurrent import Recurrent

__all__ = ["Bidirectional", "MERGE_MODES"]

MERGE_MODES = ("concat", "sum", "mul", "ave", None)

_MERGES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "concat": lambda a, b: torch.cat([a, b], dim=-1),
    "sum": torch.add,
    "mul": torch.mul,
    "ave": lambda a, b: (a + b) / 2,
}


def _as_layer(layer: Recurrent | Cell, *, reverse: bool, batch_first: bool | None, argument: str) -> Recurrent:
    if isinstance(layer, Cell):
        return Recurrent(layer, reverse=reverse, batch_first=True if batch_first is None else batch_first)
    if not isinstance(layer, Recurrent):
        fail("Bidirectional", argument, "an lstmkit.Recurrent or an lstmkit.cells.Cell", type(layer).__name__,
             kind=TypeError)
    if layer.reverse != reverse:
        fail("Bidirectional", argument, f"a Recurrent with reverse={reverse}", f"reverse={layer.reverse}")
    return layer


class Bidirectional(nn.Module):
    """A forward and a backward layer over the same input (Schuster & Paliwal 1997).

    ``forward`` and ``backward`` are cells or :class:`Recurrent` layers (``backward`` with
    ``reverse=True``; a cell is wrapped accordingly). The backward layer reverses each sequence
    within its own length, so with ``lengths`` its first output is at each sequence's last step.

    ``merge``: "concat" (B, T, O_f + O_b), "sum", "mul", "ave" (B, T, O), None (returns the pair
    ``(y_f, y_b)``), or a callable ``merge(y_f, y_b)`` (with ``lengths``, its output past a
    sequence's length is ``merge(0, 0)``). ``forward(x, state=None, *, lengths=None)``
    returns ``(y, (final_state_f, final_state_b))``; ``state`` is such a pair, or None.
    """

    def __init__(self, forward: Recurrent | Cell, backward: Recurrent | Cell, merge: str | Callable | None = "concat",
                 *, batch_first: bool | None = None):
        super().__init__()
        self.forward_layer = _as_layer(forward, reverse=False, batch_first=batch_first, argument="forward")
        self.backward_layer = _as_layer(backward, reverse=True, batch_first=batch_first, argument="backward")
        f, b = self.forward_layer, self.backward_layer
        if f.batch_first != b.batch_first:
            fail("Bidirectional", "backward", f"batch_first={f.batch_first} like the forward layer",
                 f"batch_first={b.batch_first}")
        if f.input_size != b.input_size:
            fail("Bidirectional", "backward", f"input_size={f.input_size} like the forward layer",
                 f"input_size={b.input_size}")
        if not (merge is None or callable(merge) or merge in _MERGES):
            fail("Bidirectional", "merge", f"one of {list(MERGE_MODES)} or a callable", repr(merge))
        if merge in ("sum", "mul", "ave") and f.output_size != b.output_size:
            fail("Bidirectional", "merge", f"'concat' or None when the directions' sizes differ "
                 f"({f.output_size} and {b.output_size})", repr(merge))
        self.merge = merge

    @property
    def batch_first(self) -> bool:
        return self.forward_layer.batch_first

    @property
    def input_size(self) -> int:
        return self.forward_layer.input_size

    @property
    def output_size(self) -> int | None:
        """Features of the merged output (None for merge=None or a callable: not known here)."""
        f, b = self.forward_layer.output_size, self.backward_layer.output_size
        return {"concat": f + b, "sum": f, "mul": f, "ave": f}.get(self.merge) if isinstance(self.merge, str) else None

    def forward(self, x: Tensor, state: tuple[State, State] | None = None, *, lengths: Tensor | None = None):
        if state is None:
            state_f = state_b = None
        elif isinstance(state, (tuple, list)) and len(state) == 2:
            state_f, state_b = state
        else:
            fail("Bidirectional", "state", "a pair (forward state, backward state) or None", type(state).__name__,
                 kind=TypeError)
        y_f, final_f = self.forward_layer(x, state_f, lengths=lengths)
        y_b, final_b = self.backward_layer(x, state_b, lengths=lengths)
        if self.merge is None:
            return (y_f, y_b), (final_f, final_b)
        merge = _MERGES[self.merge] if isinstance(self.merge, str) else self.merge
        return merge(y_f, y_b), (final_f, final_b)

    def step(self, x_t: Tensor, state: tuple[State, State] | None = None):
        """Refused: the backward direction reads each sequence from its end, so a bidirectional
        layer cannot run one step at a time (a ``ValueError`` that says so)."""
        cell = type(self.forward_layer.cell).__name__
        fail("Bidirectional.step", "self", "a forward layer to stream (the backward direction needs the whole "
             "sequence: build the network with bidirectional=False)", f"a bidirectional {cell} layer")

    def extra_repr(self) -> str:
        return f"merge={self.merge!r}"
