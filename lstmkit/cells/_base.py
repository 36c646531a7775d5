"""The cell protocol every recurrent cell of lstmkit follows.

Shape legend for the whole library: B batch, T time, I input features, H hidden units,
G gates (so G·H rows in a gate-stacked weight matrix).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from .._checks import check_positive_int, check_state, check_tensor, fail, parameter_like

__all__ = ["Cell", "State"]

State = tuple[Tensor, ...]


_CELL_OPS = {"gru": torch.gru_cell, "rnn_tanh": torch.rnn_tanh_cell, "rnn_relu": torch.rnn_relu_cell}


class Cell(nn.Module):
    """One time step of a recurrent network, and nothing else.

    A cell maps ``(x_t, state) -> (y_t, new_state)`` where ``x_t`` is (B, I), ``y_t`` is
    (B, output_size) and ``state`` is a tuple of tensors whose per-example shapes are
    :meth:`state_shapes`. Subclasses implement :meth:`forward` (one step, unchecked, the hot path
    that layers call) and :meth:`state_shapes`; :meth:`step` is the checked public entry.

    Gated cells list the blocks of their stacked weight matrices in ``gates`` (for example
    ``("i", "f", "g", "o")``) and accept ``gate_bias``, a mapping from gate name to an initial
    bias: a number for every unit of that gate, or one value per unit.
    """

    gates: tuple[str, ...] = ()

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        name = type(self).__name__
        self.input_size = check_positive_int(name, "input_size", input_size)
        self.hidden_size = check_positive_int(name, "hidden_size", hidden_size)
        self._step_shapes: dict[int, tuple[tuple[int, ...], ...]] = {}   # batch -> full state shapes, for step

    @property
    def output_size(self) -> int:
        """Features of ``y_t``."""
        return self.hidden_size

    def state_shapes(self) -> tuple[tuple[int, ...], ...]:
        """Per-example shapes of the state tensors, e.g. ``((H,), (H,))`` for (h, c)."""
        raise NotImplementedError

    def init_state(self, batch: int, *, device: torch.device | str | None = None,
                   dtype: torch.dtype | None = None) -> State:
        """The zero state for ``batch`` sequences, on the parameters' device and dtype by default."""
        check_positive_int(type(self).__name__, "batch", batch)
        like = parameter_like(self)
        device = like.device if device is None else device
        dtype = like.dtype if dtype is None else dtype
        return tuple(torch.zeros(batch, *shape, device=device, dtype=dtype) for shape in self.state_shapes())

    def step(self, x_t: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """One checked step: ``x_t`` (B, I), ``state`` as from :meth:`init_state` (zeros if None)."""
        x_t, state = self.check_step(x_t, state)
        out = self.fused_step(x_t, state)
        return self(x_t, state) if out is None else out

    def check_step(self, x_t: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """The checks of :meth:`step`: ``(x_t, state)`` with the zero state for None."""
        name = type(self).__name__
        like = next(iter(self._parameters.values()), None)      # the cell's own first parameter: cheaper than
        like = parameter_like(self) if like is None else like    # walking the module tree at every step
        x_t = check_tensor(name, "x_t", x_t, dim=2, layout="(batch, features)", size=self.input_size, like=like)
        B = x_t.shape[0]
        if state is None:
            return x_t, self.init_state(B)
        shapes = self._step_shapes.get(B)
        if shapes is None:
            shapes = self._step_shapes[B] = tuple((B, *s) for s in self.state_shapes())
        return x_t, check_state(name, "state", state, shapes=shapes, like=like)

    def torch_rnn(self) -> tuple[str, Tensor, Tensor, Tensor | None, Tensor | None] | None:
        """The cell as PyTorch's own recurrent operators take it, where its maths is theirs:
        ``(mode, w_ih, w_hh, b_ih, b_hh)`` with mode "lstm", "gru", "rnn_tanh" or "rnn_relu" (the
        weights of ``nn.LSTM`` and the like, a bias None where the cell has none), else None. A
        cell class provides it as ``_torch_rnn``; only the exact class's own counts, as a subclass
        may change the maths."""
        own = type(self).__dict__.get("_torch_rnn")
        return None if own is None else own(self)

    def fused_step(self, x_t: Tensor, state: State) -> tuple[Tensor, State] | None:
        """The step as one fused PyTorch op (``nn.LSTMCell``'s and the like: the same maths, tested
        equal), or None where the cell has no :meth:`torch_rnn` form."""
        form = self.torch_rnn()
        if form is None:
            return None
        mode, w_ih, w_hh, b_ih, b_hh = form
        if mode == "lstm":
            h, c = torch.lstm_cell(x_t, state, w_ih, w_hh, b_ih, b_hh)
            return h, (h, c)
        h = _CELL_OPS[mode](x_t, state[0], w_ih, w_hh, b_ih, b_hh)
        return h, (h,)

    def forward(self, x_t: Tensor, state: State) -> tuple[Tensor, State]:  # pragma: no cover - interface
        raise NotImplementedError

    # -- initialisation shared by the family ---------------------------------------------------

    def _gate_rows(self) -> dict[str, tuple[tuple[Tensor, ...], slice]]:
        """Where each gate's bias lives: gate name -> (bias parameters, rows).

        The default reads ``self.bias`` as H rows per gate in the order of ``gates``; cells with
        another layout override it.
        """
        bias = getattr(self, "bias", None)
        H = self.hidden_size
        return {} if bias is None else {g: ((bias,), slice(k * H, (k + 1) * H)) for k, g in enumerate(self.gates)}

    def _init_uniform(self, init_range: float | None) -> None:
        """Every parameter U(-k, k), k = init_range or 1/sqrt(H) (torch.nn.LSTM's default)."""
        k = 1.0 / math.sqrt(self.hidden_size) if init_range is None else init_range
        with torch.no_grad():
            for p in self.parameters():
                p.uniform_(-k, k)

    def _apply_gate_bias(self, gate_bias: Mapping[str, float | Sequence[float]] | None) -> None:
        """Write ``gate_bias`` into the bias rows of the named gates (see the class docstring)."""
        if not gate_bias:
            return
        name = type(self).__name__
        if not isinstance(gate_bias, Mapping):
            fail(name, "gate_bias", "a mapping from gate name to a number or a sequence of numbers",
                 type(gate_bias).__name__, kind=TypeError)
        rows = self._gate_rows()
        for gate, value in gate_bias.items():
            if gate not in rows:
                fail(name, "gate_bias", f"gate names with a bias, out of {sorted(rows)}", repr(gate))
            params, where = rows[gate]
            size = where.stop - where.start
            try:
                values = torch.as_tensor(value, dtype=torch.float64)
            except (TypeError, ValueError, RuntimeError):
                fail(name, f"gate_bias[{gate!r}]", f"a number or {size} numbers", repr(value), kind=TypeError)
            if not torch.isfinite(values).all():
                fail(name, f"gate_bias[{gate!r}]", "finite numbers", repr(value))
            if values.dim() == 0:
                values = values.expand(size)
            if values.shape != (size,):
                fail(name, f"gate_bias[{gate!r}]", f"a number or {size} values", f"shape {tuple(values.shape)}")
            with torch.no_grad():
                # A gate whose bias is split in two vectors (as torch.nn.GRU's) gets the value in the
                # first and zero in the others, so the effective bias is the value given.
                params[0][where] = values.to(params[0])
                for other in params[1:]:
                    other[where] = 0.0
