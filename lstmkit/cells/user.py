"""Cells written by their users: the products a step needs and the rest of the step as tensor maths.

A new recurrent cell is a subclass of :class:`UserCell` with three methods: :meth:`~UserCell.state_shapes`
(every state ``H`` wide, state 0 its output), :meth:`~UserCell.products` (the matrices that multiply the
input and each state) and :meth:`~UserCell.pointwise` (the step from those products, as ordinary PyTorch on
the rows). Its :meth:`~UserCell.forward` is the step that follows from them: the specification, run by
the reference loop. The engine reads :meth:`~UserCell.pointwise` once, derives its gradient and runs the
cell at the speed of the built-in kernels (see :mod:`lstmkit._engine.lowering`); a step it cannot read
runs the reference loop, after one warning that names the reason.

>>> import torch
>>> from torch import nn
>>> class MyGRU(UserCell):
...     '''h' = (1 - z) n + z h, PyTorch's GRU written by hand.'''
...     def __init__(self, input_size, hidden_size):
...         super().__init__(input_size, hidden_size)
...         H = hidden_size
...         self.weight_ih = nn.Parameter(torch.empty(3 * H, input_size))
...         self.weight_hh = nn.Parameter(torch.empty(3 * H, H))
...         self.bias_ih = nn.Parameter(torch.empty(3 * H))
...         self.bias_hh = nn.Parameter(torch.empty(3 * H))
...         self._init_uniform(None)
...     def state_shapes(self):
...         return ((self.hidden_size,),)
...     def products(self):
...         return self.weight_ih, (self.weight_hh,)
...     def pointwise(self, zx, zs, state):
...         xr, xz, xn = (zx + self.bias_ih).chunk(3, -1)
...         hr, hz, hn = (zs[0] + self.bias_hh).chunk(3, -1)
...         r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
...         n = torch.tanh(xn + r * hn)
...         return ((1 - z) * n + z * state[0],)
>>> cell = MyGRU(3, 5)
>>> y, state = cell.step(torch.zeros(2, 3))
>>> tuple(y.shape)
(2, 5)
"""

from __future__ import annotations

from torch import Tensor

from .._checks import fail
from ._base import Cell, State

__all__ = ["UserCell"]


class UserCell(Cell):
    """A cell given as its products and a pointwise step (see the module's docstring).

    - ``state_shapes()``: ``((H,),) * S``, S states of ``hidden_size`` units; state 0 is ``y_t``.
    - ``products()``: ``(w_ih, w_states)``: ``w_ih`` (N, I) multiplies the input, ``zx = x_t w_ih^T``;
      ``w_states`` holds one entry per state, a matrix (n_s, H) that multiplies that state before the
      step (``z_s = s w^T``) or None for a state no matrix multiplies. The matrices may be computed
      from parameters (a constrained recurrent matrix, say): gradients flow back through them.
    - ``pointwise(zx, zs, state)``: the new states (a tuple, S tensors), from ``zx``, the tuple ``zs``
      (None where a state has no matrix) and the states before the step. Every tensor in it is a
      row-wise function of these and of the cell's own parameters of at most one dimension (biases,
      per-unit weights, scalars): elementwise maths and slices along the last dimension
      (``chunk``, ``split``, indexing, ``cat``), numbers and the cell's plain attributes. Batch rows are
      independent, so the engine runs it row by row.
    """

    def products(self) -> tuple[Tensor, tuple[Tensor | None, ...]]:
        raise NotImplementedError

    def pointwise(self, zx: Tensor, zs: tuple[Tensor | None, ...], state: State) -> tuple[Tensor, ...]:
        raise NotImplementedError

    def checked_products(self) -> tuple[Tensor, tuple[Tensor | None, ...]]:
        """:meth:`products`, checked against the input size and the states."""
        name = type(self).__name__
        got = self.products()
        if not (isinstance(got, tuple) and len(got) == 2):
            fail(name, "products()", "a pair (w_ih, w_states)", type(got).__name__, kind=TypeError)
        w_ih, w_states = got
        if not isinstance(w_ih, Tensor) or w_ih.dim() != 2 or w_ih.shape[1] != self.input_size or not len(w_ih):
            fail(name, "products()[0]", f"a matrix (N, {self.input_size}) that multiplies the input",
                 tuple(w_ih.shape) if isinstance(w_ih, Tensor) else type(w_ih).__name__)
        shapes = self.state_shapes()
        w_states = tuple(w_states)
        if len(w_states) != len(shapes):
            fail(name, "products()[1]", f"one matrix or None per state ({len(shapes)})", f"{len(w_states)} entries")
        for s, (w, shape) in enumerate(zip(w_states, shapes)):
            if w is not None and (not isinstance(w, Tensor) or w.dim() != 2 or w.shape[1:] != shape or not len(w)):
                fail(name, f"products()[1][{s}]", f"None or a matrix (n, {shape[0]}) that multiplies state {s}",
                     tuple(w.shape) if isinstance(w, Tensor) else type(w).__name__)
        return w_ih, w_states

    def forward(self, x_t: Tensor, state: State) -> tuple[Tensor, State]:
        w_ih, w_states = self.checked_products()
        zs = tuple(None if w is None else s @ w.t() for s, w in zip(state, w_states))
        new = tuple(self.pointwise(x_t @ w_ih.t(), zs, state))
        return new[0], new
