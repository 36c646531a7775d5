r"""The xLSTM's residual blocks (Beck, Hochreiter et al. 2024, section 2.4 and figures 9-10).

- :class:`SLSTMBlock`, post-up-projection: ``x + GN(sLSTM(LN(x)))``, then a gated feed-forward
  ``x + W_down(GELU(W_g LN(x)) ⊙ W_u LN(x))`` of width ``ff_factor · size`` (the paper's 4/3).
- :class:`MLSTMBlock`, pre-up-projection: ``LN(x)`` projected up by ``up`` (the paper's 2) into
  two branches ``u`` and ``z``; the mLSTM reads ``u``; ``x + W_down((GN(mLSTM(u)) + s ⊙ u) ⊙
  SiLU(z))`` with a learnt skip ``s``.

GN is the paper's head-wise group norm (each head's units normalised on their own). Unlike the
paper's blocks these have no causal convolution before the gates (it would add a state of the
last inputs to every stream) and the mLSTM's query, key and value projections are full matrices
(the paper's are block-diagonal). A block's state is its cell's, so a block streams as a layer
does: :meth:`step` one step at a time, equal to ``forward`` over the whole sequence.

:func:`block_pattern` reads the paper's ratio notation: ``"7:1"`` is xLSTM[7:1], seven mLSTM
blocks for one sLSTM block.
"""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_positive_int, fail
from ..cells import State, make
from ..layers import Recurrent, valid_steps

__all__ = ["SLSTMBlock", "MLSTMBlock", "HeadNorm", "XLSTM", "block_pattern", "xlstm_blocks", "build_xlstm"]


class HeadNorm(nn.Module):
    """Each head's ``size / heads`` units normalised on their own (a group norm per step), times a learnt gain."""

    def __init__(self, size: int, heads: int, eps: float = 1e-5):
        super().__init__()
        self.heads, self.eps = heads, eps
        self.weight = nn.Parameter(torch.ones(size))

    def forward(self, x: Tensor) -> Tensor:
        d = x.shape[-1] // self.heads
        heads = x.unflatten(-1, (self.heads, d))
        return F.layer_norm(heads, (d,), eps=self.eps).flatten(-2) * self.weight


class _Block(nn.Module):
    """What both blocks share: the layer protocol (``forward(x, state, *, lengths)``, ``step``,
    ``input_size``, ``output_size``), outputs past a sequence's length zero."""

    layer: Recurrent

    @property
    def input_size(self) -> int:
        return self.size

    @property
    def output_size(self) -> int:
        return self.size

    @property
    def cell(self):
        return self.layer.cell

    def mix(self, x: Tensor, run) -> tuple[Tensor, State]:  # pragma: no cover - interface
        raise NotImplementedError

    def forward(self, x: Tensor, state: State | None = None, *, lengths: Tensor | None = None) -> tuple[Tensor, State]:
        y, state = self.mix(x, lambda v: self.layer(v, state, lengths=lengths))
        if lengths is not None:
            y = y.masked_fill(~valid_steps(lengths, y.shape[1]).to(y.device)[..., None], 0.0)
        return y, state

    def step(self, x_t: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """One step: ``x_t`` (B, size) -> ``(y_t, state)``."""
        return self.mix(x_t, lambda v: self.layer.step(v, state))


class SLSTMBlock(_Block):
    """The sLSTM block (post-up-projection); ``heads``, ``forget`` go to the cell."""

    def __init__(self, size: int, *, heads: int = 4, forget: str = "sigmoid", ff_factor: float = 4 / 3,
                 engine: str = "auto"):
        super().__init__()
        self.size = check_positive_int("SLSTMBlock", "size", size)
        self.norm = nn.LayerNorm(size)
        self.layer = Recurrent(make("slstm", size, size, heads=heads, forget=forget), engine=engine)
        self.head_norm = HeadNorm(size, heads)
        inner = max(1, round(ff_factor * size))
        self.ff_norm = nn.LayerNorm(size)
        self.ff_up = nn.Linear(size, 2 * inner)
        self.ff_down = nn.Linear(inner, size)

    def mix(self, x, run):
        h, state = run(self.norm(x))
        x = x + self.head_norm(h)
        gate, value = self.ff_up(self.ff_norm(x)).chunk(2, -1)
        return x + self.ff_down(F.gelu(gate) * value), state


class MLSTMBlock(_Block):
    """The mLSTM block (pre-up-projection); ``heads``, ``chunk_size`` go to the cell."""

    def __init__(self, size: int, *, heads: int = 4, chunk_size: int = 64, up: float = 2.0, engine: str = "auto"):
        super().__init__()
        self.size = check_positive_int("MLSTMBlock", "size", size)
        inner = max(heads, round(up * size) // heads * heads)
        self.norm = nn.LayerNorm(size)
        self.up = nn.Linear(size, 2 * inner)
        self.layer = Recurrent(make("mlstm", inner, inner, heads=heads, chunk_size=chunk_size), engine=engine)
        self.head_norm = HeadNorm(inner, heads)
        self.skip = nn.Parameter(torch.ones(inner))
        self.down = nn.Linear(inner, size)

    def mix(self, x, run):
        u, z = self.up(self.norm(x)).chunk(2, -1)
        h, state = run(u)
        return x + self.down((self.head_norm(h) + self.skip * u) * F.silu(z)), state


def block_pattern(blocks: str, num_layers: int) -> str:
    """The kind of each of ``num_layers`` blocks, ``"m"`` or ``"s"``: ``blocks`` is either that
    string itself or a ratio ``"M:S"`` of mLSTM to sLSTM blocks (the paper's xLSTM[7:1]), whose
    sLSTM blocks are spread evenly (``"7:1"`` over 8 layers: ``"mmmmsmmm"``)."""
    if not isinstance(blocks, str):
        fail("xLSTM", "blocks", "a ratio 'M:S' or a string of 'm' and 's'", type(blocks).__name__, kind=TypeError)
    ratio = re.fullmatch(r"\s*(\d+)\s*:\s*(\d+)\s*", blocks)
    if ratio:
        m, s = int(ratio.group(1)), int(ratio.group(2))
        if m + s == 0:
            fail("xLSTM", "blocks", "a ratio with a positive part", repr(blocks))
        count = round(num_layers * s / (m + s))
        positions = {int((k + 0.5) * num_layers / count) for k in range(count)} if count else set()
        return "".join("s" if k in positions else "m" for k in range(num_layers))
    if not blocks or set(blocks) - {"m", "s"}:
        fail("xLSTM", "blocks", "a ratio 'M:S' such as '7:1', or a string of 'm' and 's' per layer", repr(blocks))
    if len(blocks) != num_layers:
        fail("xLSTM", "blocks", f"one letter per layer ({num_layers})", f"{len(blocks)} in {blocks!r}")
    return blocks


def xlstm_blocks(blocks: str, size: int, num_layers: int, *, heads: int = 4, forget: str = "sigmoid",
                 chunk_size: int = 64, engine: str = "auto") -> list[_Block]:
    """The residual blocks of an xLSTM of width ``size``: ``blocks`` as :func:`block_pattern` reads it."""
    return [MLSTMBlock(size, heads=heads, chunk_size=chunk_size, engine=engine) if kind == "m"
            else SLSTMBlock(size, heads=heads, forget=forget, engine=engine)
            for kind in block_pattern(blocks, num_layers)]


class XLSTM(nn.Module):
    """An xLSTM network as a layer: the input projected to ``size`` (where it differs), the
    residual ``blocks`` (:func:`block_pattern`), ``dropout`` between them, a final layer norm.
    ``forward(x (B, T, I), state=None, *, lengths=None) -> (y (B, T, size), states)``, one
    state per block; :meth:`step` streams one step."""

    def __init__(self, input_size: int, size: int, blocks: str, *, num_layers: int = 1, dropout: float = 0.0,
                 heads: int = 4, forget: str = "sigmoid", chunk_size: int = 64, engine: str = "auto"):
        super().__init__()
        self.input_size = check_positive_int("XLSTM", "input_size", input_size)
        self.output_size = check_positive_int("XLSTM", "size", size)
        check_positive_int("XLSTM", "num_layers", num_layers)
        self.project = nn.Linear(input_size, size) if input_size != size else None
        self.blocks = nn.ModuleList(xlstm_blocks(blocks, size, num_layers, heads=heads, forget=forget,
                                                 chunk_size=chunk_size, engine=engine))
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(size)

    def forward(self, x: Tensor, state: list | None = None, *, lengths: Tensor | None = None) -> tuple[Tensor, list]:
        state = [None] * len(self.blocks) if state is None else state
        if self.project is not None:
            x = self.project(x)
        finals = []
        for k, (block, s) in enumerate(zip(self.blocks, state)):
            x, s = block(x if k == 0 else self.dropout(x), s, lengths=lengths)
            finals.append(s)
        y = self.norm(x)
        if lengths is not None:
            y = y.masked_fill(~valid_steps(lengths, y.shape[1]).to(y.device)[..., None], 0.0)
        return y, finals

    def init_state(self, batch: int, **kwargs) -> list:
        """Every block's initial state (its cell's), for ``batch`` sequences."""
        return [block.cell.init_state(batch, **kwargs) for block in self.blocks]

    def step(self, x_t: Tensor, state: list | None = None) -> tuple[Tensor, list]:
        state = [None] * len(self.blocks) if state is None else state
        if self.project is not None:
            x_t = self.project(x_t)
        finals = []
        for block, s in zip(self.blocks, state):
            x_t, s = block.step(x_t, s)
            finals.append(s)
        return self.norm(x_t), finals


def build_xlstm(input_size: int, size: int, blocks: str, *, num_layers: int = 1, bidirectional: bool = False,
                merge: str | None = "concat", dropout: float = 0.0, residual: bool = False, batch_first: bool = True,
                engine: str = "auto", **options) -> XLSTM:
    """:class:`XLSTM` from :func:`lstmkit.build_rnn`'s arguments, so a model can take either.
    The blocks read forward, batch-first, and are residual already (``merge`` and ``residual``
    have nothing to act on)."""
    del merge, residual
    if bidirectional:
        fail("xLSTM", "bidirectional", "False (the xLSTM's blocks read forward)", repr(bidirectional))
    if not batch_first:
        fail("xLSTM", "batch_first", "True", repr(batch_first))
    return XLSTM(input_size, size, blocks, num_layers=num_layers, dropout=dropout, engine=engine, **options)
