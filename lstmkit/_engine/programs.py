"""User cells in the engine: their programs, cached, and the adapter the custom op calls.

A cell's programs (:func:`.lowering.lower`) depend on its class, the code of its ``pointwise``,
its sizes, the shapes of its products and vector parameters, and its plain attributes (numbers
the step reads, such as a time step). :func:`kernel_of` keeps one adapter per such key, so cells
built alike share one (translation takes milliseconds; it is done once per key and process), and a
changed step, or a changed number it reads, gets a new one. A cell whose step cannot be lowered
runs the reference loop after one warning per class and reason.
"""

from __future__ import annotations

import warnings

from ..cells.user import UserCell
from .kernels import FAMILIES, Kernel, _new
from .lowering import OPS, Lowered, Unsupported, lower

__all__ = ["ProgramKernel", "kernel_of", "check_ops"]

_kernels: dict[tuple, ProgramKernel | None] = {}
_warned: set[tuple] = set()


class ProgramKernel(Kernel):
    """The engine's adapter for one user cell's programs (``program_forward`` / ``program_backward``).

    Parameters as the op takes them: ``w_ih``, one matrix per state (empty for none), then the
    vector parameters in :attr:`Lowered.params` order. The engine's state is the cell's."""

    def __init__(self, name: str, lowered: Lowered, n_states: int):
        self.name = name
        self.lowered = lowered
        self.S = n_states

    def spec(self, cell):
        return [float(self.S)]        # the op's spec is never empty (its autograd takes no empty list)

    def params(self, cell):
        w_ih, w_states = cell.checked_products()
        own = {**cell._parameters, **cell._buffers}
        return [w_ih, *w_states, *(own[n] for n in self.lowered.params)]

    def _split(self, params):
        return params[0], list(params[1:1 + self.S]), list(params[1 + self.S:])

    def forward(self, ext, spec, x, params, state, lengths, save):
        f = self.lowered.forward
        w_ih, w_states, vectors = self._split(params)
        out = ext.program_forward(x, w_ih, w_states, vectors, list(state), lengths, f.code, f.imm, f.arena,
                                  f.inputs, f.outputs, save)
        states, saved = out[:self.S], out[self.S:]
        finals = tuple(s[:, -1].clone() for s in states)
        return states[0], finals, [states[0], *states[1:], *saved] if save else [states[0]]

    def fake(self, spec, x, params, state, save):
        (B, T, _), H = x.shape, state[0].shape[1]
        w_ih, w_states, _ = self._split(params)
        saved = [None, *(_new(x, B, T, H) for _ in range(self.S - 1)), _new(x, B, T, w_ih.shape[0]),
                 *(_new(x, B, T, w.shape[0] if w.numel() else 0) for w in w_states)]
        return _new(x, B, T, H), tuple(_new(x, B, H) for _ in range(self.S)), saved

    def backward(self, ext, spec, dY, dfinals, params, state, saved, lengths, x, need_dx):
        b = self.lowered.backward
        w_ih, w_states, vectors = self._split(params)
        states, products = list(saved[:self.S]), list(saved[self.S:])
        dx, dw_ih, *rest = ext.program_backward(dY, list(dfinals), x, w_ih, w_states, vectors, list(state), states,
                                                products, lengths, b.code, b.imm, b.arena, b.inputs, b.outputs,
                                                need_dx)
        dw_states, dvectors, dstate = rest[:self.S], rest[self.S:-self.S], rest[-self.S:]
        return dx, [dw_ih, *dw_states, *dvectors], list(dstate)


def _key(cell: UserCell) -> tuple:
    w_ih, w_states = cell.checked_products()
    shapes = tuple(tuple(t.shape) for t in (*cell._parameters.values(), *cell._buffers.values()) if t is not None)
    plain = tuple(sorted((k, v) for k, v in vars(cell).items()
                         if isinstance(v, (bool, int, float, str)) and not k.startswith("_")))
    return (type(cell), type(cell).pointwise.__code__, cell.input_size, cell.hidden_size, tuple(w_ih.shape),
            tuple(None if w is None else tuple(w.shape) for w in w_states), shapes, plain)


def kernel_of(cell: UserCell) -> ProgramKernel | None:
    """The adapter of ``cell``'s programs, lowered on first use; None (after one warning) where the
    step cannot be lowered."""
    key = _key(cell)
    if key in _kernels:
        return _kernels[key]
    try:
        lowered = lower(cell)
    except Unsupported as err:
        _kernels[key] = None
        reason = (type(cell), str(err))
        if reason not in _warned:
            _warned.add(reason)
            warnings.warn(f"lstmkit: the engine cannot run {type(cell).__name__}'s step, which runs its reference "
                          f"loop (same results, slower): {err}", RuntimeWarning, stacklevel=3)
        return None
    kernel = ProgramKernel(f"program{len(_kernels)}", lowered, len(cell.state_shapes()))
    FAMILIES[kernel.name] = kernel
    _kernels[key] = kernel
    return kernel


def check_ops(ext) -> None:
    """The extension's operation codes are :data:`.lowering.OPS` (one list kept in two languages)."""
    if tuple(ext.program_ops()) != OPS:
        raise RuntimeError(f"lstmkit engine: program operations differ: {ext.program_ops()} vs {OPS}")
