"""User cells in the engine: their programs, cached, and the adapter the custom op calls.

A cell's programs (:func:`.lowering.lower`) run as compiled C++ row functions where they fit
(:mod:`.codegen`; ``LSTMKIT_CELL_CODEGEN=0`` or ``programs.compiled_rows = False`` turns that off)
and are interpreted otherwise. They depend on its class, the code of its ``pointwise``,
its sizes, the shapes of its parameters, and its plain attributes (numbers the step reads, such
as a time step). :func:`kernel_of` keeps one adapter per such key, so cells built alike share one
(lowering takes milliseconds and compiling about a second, once per key and process; compiled
libraries are also cached on disk), and a changed step, or a changed number it reads, gets a new
one. A cell whose step cannot be lowered runs the reference loop after one warning per class and
reason.
"""

from __future__ import annotations

import os
import warnings

import torch

from . import codegen
from ..cells.user import UserCell
from .kernels import FAMILIES, Kernel, _new
from .lowering import OPS, Lowered, Unsupported, lower

__all__ = ["ProgramKernel", "kernel_of", "check_ops"]

_kernels: dict[tuple, ProgramKernel | None] = {}
_warned: set[tuple] = set()
#: Whether user cells run their compiled row functions where they have them (else the interpreter).
compiled_rows = os.environ.get("LSTMKIT_CELL_CODEGEN", "1") != "0"
_DTYPES = {torch.float32: "float", torch.float64: "double"}


def _warn_once(cell, text: str) -> None:
    reason = (type(cell), text)
    if reason not in _warned:
        _warned.add(reason)
        warnings.warn(text, RuntimeWarning, stacklevel=4)


class ProgramKernel(Kernel):
    """The engine's adapter for one user cell's programs (``program_forward`` / ``program_backward``).

    Parameters as the op takes them: ``w_ih``, one matrix per state (empty for none), then the
    vector parameters in :attr:`Lowered.params` order. The engine's state is the cell's."""

    def __init__(self, name: str, lowered: Lowered, n_states: int, rows: dict[str, int] | None = None):
        self.name = name
        self.lowered = lowered
        self.S = n_states
        self.rows = rows or {}          # the compiled row functions' addresses, by kind and dtype

    def row_fn(self, kind: str, x) -> int:
        """The address of the compiled ``kind`` row function for ``x``'s dtype, 0 to interpret."""
        dtype = _DTYPES.get(x.dtype)
        return self.rows.get(f"{kind}_{dtype}", 0) if compiled_rows and dtype else 0

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
                                  f.inputs, f.outputs, self.row_fn("forward", x), save)
        states, saved = out[:self.S], out[self.S:]
        finals = tuple(s[:, -1].clone() for s in states)
        return states[0], finals, [states[0], *states[1:], *saved] if save else [states[0]]

    def step(self, ext, cell, x_t, state):
        # the forward over one step without the generic glue: no clones (the states are views of
        # the (B, 1, H) results), the parameters read once
        f, none = self.lowered.forward, x_t.new_empty(0)
        w_ih, w_states = cell.checked_products()
        own = {**cell._parameters, **cell._buffers}
        x = x_t.unsqueeze(1).contiguous()
        out = ext.program_forward(x, w_ih, [none if w is None else w for w in w_states],
                                  [own[n] for n in self.lowered.params], [s.contiguous() for s in state],
                                  none.long(), f.code, f.imm, f.arena, f.inputs, f.outputs, self.row_fn("forward", x),
                                  False)
        new = tuple(o[:, 0] for o in out[:self.S])
        return new[0], new

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
                                                self.row_fn("backward", x), need_dx)
        dw_states, dvectors, dstate = rest[:self.S], rest[self.S:-self.S], rest[-self.S:]
        return dx, [dw_ih, *dw_states, *dvectors], list(dstate)


def _key(cell: UserCell) -> tuple:
    # the products' shapes follow from the parameters' (a computed matrix is computed from them)
    shapes = tuple(tuple(t.shape) for t in (*cell._parameters.values(), *cell._buffers.values()) if t is not None)
    plain = tuple(sorted((k, v) for k, v in vars(cell).items()
                         if isinstance(v, (bool, int, float, str)) and not k.startswith("_")))
    return (type(cell), type(cell).pointwise.__code__, cell.input_size, cell.hidden_size, shapes, plain)


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
        _warn_once(cell, f"lstmkit: the engine cannot run {type(cell).__name__}'s step, which runs its reference "
                         f"loop (same results, slower): {err}")
        return None
    kernel = ProgramKernel(f"program{len(_kernels)}", lowered, len(cell.state_shapes()), _compiled(cell, lowered))
    FAMILIES[kernel.name] = kernel
    _kernels[key] = kernel
    return kernel


def _compiled(cell: UserCell, lowered: Lowered) -> dict[str, int] | None:
    """The compiled row functions of ``cell``'s programs, or None to interpret them (after one
    warning where a compiler should have built them and did not)."""
    if not compiled_rows or codegen.compiler() is None:
        return None
    w_ih, w_states = cell.checked_products()
    own = {**cell._parameters, **cell._buffers}
    params = [own[n].numel() for n in lowered.params]
    widths = [w_ih.shape[0], *(0 if w is None else w.shape[0] for w in w_states),
              *(cell.hidden_size for _ in w_states), *params]
    text = codegen.source(lowered, cell.hidden_size, widths, params)
    if text is None:
        return None
    try:
        return codegen.row_functions(text)
    except Exception as err:  # noqa: BLE001 - the interpreter runs the same programs
        _warn_once(cell, f"lstmkit: {type(cell).__name__}'s step could not be compiled, so the engine interprets "
                         f"it (same results, slower): {err}")
        return None


def check_ops(ext) -> None:
    """The extension's operation codes are :data:`.lowering.OPS` (one list kept in two languages)."""
    if tuple(ext.program_ops()) != OPS:
        raise RuntimeError(f"lstmkit engine: program operations differ: {ext.program_ops()} vs {OPS}")
