"""``Recurrent``: one cell run over a sequence in one direction."""

from __future__ import annotations

import warnings

import torch
from torch import Tensor, nn

from .. import _engine
from .._checks import check_lengths, check_state, check_tensor, fail, parameter_like
from ..cells import MLSTM, Cell, MinimalRNN, State
from . import torch_backend
from .lengths import reverse_padded, valid_steps

__all__ = ["Recurrent", "ENGINES"]

ENGINES = ("auto", "fast", "torch", "reference")
PARALLEL = (MinimalRNN, MLSTM)      # cells with a parallel form over a whole sequence: their ``scan``


class Recurrent(nn.Module):
    """Run ``cell`` over a sequence.

    ``forward(x, state=None, *, lengths=None) -> (y, final_state)`` with ``x`` (B, T, I)
    (or (T, B, I) with ``batch_first=False``) and ``y`` (B, T, cell.output_size). ``state`` is
    the initial state (zeros if None). With ``lengths`` (B,), outputs past a sequence's length
    are zero and the final state is the state after each sequence's own last step.

    ``reverse=True`` runs from the end: each sequence is reversed within its own length, so the
    padding is never seen by valid steps.

    Streaming: feed a sequence in chunks, passing each call's final state to the next; the
    outputs are those of the whole sequence at once. :meth:`step` is the one-step form.

    ``engine``: "auto" (default) runs the compiled engine where it supports the cell and could be
    built, the parallel form of the cells that have one (the minimal RNNs' scan,
    :meth:`lstmkit.cells.MinimalRNN.scan`, and the mLSTM's chunkwise form,
    :meth:`lstmkit.cells.MLSTM.scan`), else the reference loop; "reference" always runs the loop
    below, the specification the others are tested equal to; "fast" requires the engine (an
    error where it is unavailable) or the cell's parallel form. Where the engine does not run
    (on a GPU, for a dtype it lacks), "auto" runs the cells with PyTorch's maths (``lstm``,
    ``np``, ``gru``, ``elman`` with tanh or relu) through PyTorch's own fused recurrent
    operators (cuDNN on NVIDIA GPUs; :mod:`lstmkit.layers.torch_backend`), and warns once per
    cell class where a cell has none of these forms there; "torch" always runs those operators.

    Equivalent reference loop (without lengths)::

        for t in range(T):
            y[:, t], state = cell(x[:, t], state)
    """

    def __init__(self, cell: Cell, *, reverse: bool = False, batch_first: bool = True, engine: str = "auto"):
        super().__init__()
        if not isinstance(cell, Cell):
            fail("Recurrent", "cell", "an lstmkit.cells.Cell (see lstmkit.cells.make)", type(cell).__name__,
                 kind=TypeError)
        if engine not in ENGINES:
            fail("Recurrent", "engine", f"one of {list(ENGINES)}", repr(engine))
        if engine == "fast" and not isinstance(cell, PARALLEL):        # their fast form is the scan, compiled or not
            if not _engine.supports(cell):
                fail("Recurrent", "engine", "'auto' or 'reference' for a cell the engine has no kernel for",
                     f"engine='fast' with {type(cell).__name__}")
            if _engine.load() is None:
                fail("Recurrent", "engine", "'auto' or 'reference' (the compiled engine is unavailable: "
                     f"{_engine.load_error()})", "engine='fast'", kind=RuntimeError)
        if engine == "torch" and not torch_backend.supports(cell):
            fail("Recurrent", "engine", "'auto', 'fast' or 'reference' for a cell without PyTorch's maths "
                 "(engine='torch' takes lstm, np, gru and elman with tanh or relu)", f"engine='torch' with {cell!r}")
        self.cell = cell
        self.reverse = bool(reverse)
        self.batch_first = bool(batch_first)
        self.engine = engine

    def uses_engine(self) -> bool:
        """Whether forward runs the compiled engine (else the reference loop)."""
        return self.engine not in ("reference", "torch") and _engine.supports(self.cell) and _engine.available()

    @property
    def input_size(self) -> int:
        return self.cell.input_size

    @property
    def output_size(self) -> int:
        return self.cell.output_size

    def init_state(self, batch: int, **kwargs) -> State:
        return self.cell.init_state(batch, **kwargs)

    def _check_state(self, state: object, batch: int, like: Tensor) -> State:
        if state is None:
            return self.cell.init_state(batch, device=like.device, dtype=like.dtype)
        return check_state("Recurrent", "state", state, shapes=[(batch, *s) for s in self.cell.state_shapes()],
                           like=like)

    def forward(self, x: Tensor, state: State | None = None, *, lengths: Tensor | None = None
                ) -> tuple[Tensor, State]:
        layout = "(batch, time, features)" if self.batch_first else "(time, batch, features)"
        x = check_tensor("Recurrent", "x", x, dim=3, layout=layout, size=self.cell.input_size,
                         like=parameter_like(self.cell))
        if not self.batch_first:
            x = x.transpose(0, 1)                                          # (B, T, I)
        B, T, _ = x.shape
        lengths = check_lengths("Recurrent", lengths, batch=B, time=T, device=x.device)
        state = self._check_state(state, B, x)
        if lengths is not None and not torch.compiler.is_compiling() and bool((lengths == T).all()):
            lengths = None                                                 # nothing to mask (a shortcut only)
        y, state = self._run(x, state, lengths)                            # (B, T, O)
        return (y if self.batch_first else y.transpose(0, 1)), state

    def _run(self, x: Tensor, state: State, lengths: Tensor | None) -> tuple[Tensor, State]:
        """Checked, batch-first input through the engine or the reference loop."""
        B, T, _ = x.shape
        if self.reverse:
            x = reverse_padded(x, lengths)
        refused = _engine.accepts(x) if self.engine != "reference" else None
        if refused and self.engine == "fast":
            fail("Recurrent", "x", "a CPU tensor of float32, float64 or bfloat16 with engine='fast' "
                 "(engine='auto' runs PyTorch's operators or the reference loop for others)", refused)
        if T and B and not refused and self.uses_engine():
            y, state = _engine.run(self.cell, x, state, lengths)           # (B, T, O)
            if lengths is not None:
                y = y.masked_fill(~valid_steps(lengths, T)[..., None], 0.0)
        elif T and B and self.engine in ("auto", "torch") and torch_backend.supports(self.cell):
            y, state = torch_backend.run(self.cell, x, state, lengths)
        elif T and B and self.engine != "reference" and isinstance(self.cell, PARALLEL):
            valid = None if lengths is None else valid_steps(lengths, T)   # (B, T)
            y, state = self._scan(x, state, valid)
            if valid is not None:
                y = y.masked_fill(~valid[..., None], 0.0)
        else:
            if self.engine == "auto" and x.device.type != "cpu":
                _warn_once(self.cell, x.device)
            y, state = self._loop(x, state, lengths)
        if self.reverse:
            y = reverse_padded(y, lengths)
        return y, state

    def _scan(self, x: Tensor, state: State, valid: Tensor | None) -> tuple[Tensor, State]:
        """The cell's parallel form: every step's gates at once."""
        if isinstance(self.cell, MLSTM):
            return self.cell.scan(x, state, valid)
        compiled = (_engine.linear_scan if x.dtype in _engine.scan.DTYPES and _engine.accepts(x) is None
                    and _engine.available() else None)
        return self.cell.scan(x, state, valid, recurrence=compiled)

    def _loop(self, x: Tensor, state: State, lengths: Tensor | None) -> tuple[Tensor, State]:
        """The reference loop: the specification."""
        B, T, _ = x.shape
        valid = None if lengths is None else valid_steps(lengths, T)      # (B, T)
        ys = []
        for t, x_t in enumerate(x.unbind(1)):                              # unbind: O(T) backward
            y_t, new = self.cell(x_t, state)
            if valid is None:
                state = new
            else:
                m = valid[:, t, None]                                      # (B, 1)
                state = tuple(torch.where(m.view(B, *([1] * (n.dim() - 1))), n, s) for n, s in zip(new, state))
                y_t = y_t.masked_fill(~m, 0.0)
            ys.append(y_t)
        y = torch.stack(ys, 1) if ys else x.new_zeros(B, 0, self.cell.output_size)  # (B, T, O)
        return y, state

    def step(self, x_t: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """One step: ``x_t`` (B, I) -> ``(y_t, state)``; the streaming form of a forward layer.

        It runs PyTorch's fused op where one has the cell's maths (:meth:`Cell.fused_step`), else,
        when no gradient is wanted and the layer uses the engine, the engine's single step, else
        the cell's reference step; all three are tested equal."""
        if self.reverse:
            fail("Recurrent.step", "self", "a forward layer (a reverse layer needs the whole sequence)",
                 "reverse=True")
        cell = self.cell
        x_t, state = cell.check_step(x_t, state)
        out = cell.fused_step(x_t, state)
        if out is not None:
            return out
        if (self.engine != "reference" and x_t.shape[0] and not _needs_graph(cell, x_t, state)
                and _engine.accepts(x_t) is None and self.uses_engine()):
            return _engine.step(cell, x_t, state)
        return cell(x_t, state)

    def extra_repr(self) -> str:
        return f"reverse={self.reverse}, batch_first={self.batch_first}, engine={self.engine!r}"


_WARNED: set[tuple[str, str]] = set()


def _warn_once(cell: Cell, device: torch.device) -> None:
    key = (type(cell).__name__, device.type)
    if key not in _WARNED:
        _WARNED.add(key)
        warnings.warn(f"lstmkit: {key[0]} has neither an engine kernel nor PyTorch's fused form on {device.type}; "
                      "its layers run the reference step loop there (the same results, slower)", RuntimeWarning,
                      stacklevel=3)


def _needs_graph(cell: Cell, x_t: Tensor, state: State) -> bool:
    """Whether a step must record autograd's graph (the engine's single step records none)."""
    if not torch.is_grad_enabled():
        return False
    return x_t.requires_grad or any(s.requires_grad for s in state) or any(p.requires_grad for p in cell.parameters())
