r"""The xLSTM's cells (Beck, Hochreiter et al., NeurIPS 2024): sLSTM and mLSTM, in their step form.

Both gate with exponentials and keep a normaliser ``n`` beside the memory, and a stabiliser
``m`` (the running maximum of the log-gates) that keeps the exponentials finite: the stabilised
state is the paper's state times ``exp(-m)``, so the output is the same as without it (tested
in float64 against the unstabilised equations). The step is the specification. The mLSTM's
layers run its chunkwise-parallel form (:mod:`lstmkit.cells.chunkwise`), tested equal to it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_positive_int, fail
from ._base import Cell, State
from ._registry import register
from .chunkwise import mlstm_chunkwise

__all__ = ["SLSTM", "MLSTM", "block_diagonal"]


def _log_sigmoid(v: Tensor) -> Tensor:
    """``log(sigmoid(v))`` exactly (``F.logsigmoid`` is exact too, but not for every dtype)."""
    return -torch.logaddexp(-v, torch.zeros((), dtype=v.dtype, device=v.device))


def _heads(name: str, hidden_size: int, heads: int) -> int:
    heads = check_positive_int(name, "heads", heads)
    if hidden_size % heads:
        fail(name, "heads", f"a divisor of hidden_size {hidden_size}", str(heads))
    return heads


def block_diagonal(blocks: Tensor) -> Tensor:
    """An sLSTM's recurrent blocks (4, heads, d, d) as one block-diagonal (4H, H) matrix: row
    g·H + k·d + e, column k·d + j (zeros off the blocks), the layout of ``h @ W^T``."""
    G, K, d, _ = blocks.shape
    eye = torch.eye(K, dtype=blocks.dtype, device=blocks.device)
    return torch.einsum("gkej,kl->gkelj", blocks, eye).reshape(G * K * d, K * d)


class SLSTM(Cell):
    r"""sLSTM (the xLSTM paper's equations 8-17): exponential input gate, sigmoid or exponential
    forget gate, a normaliser and a stabiliser, and heads whose recurrent weights are
    block-diagonal (each head reads its own part of :math:`h_{t-1}`).

    .. math::
        \tilde g_t &= W_g x_t + R_g h_{t-1} + b_g,\quad g \in \{i, f, z, o\} \\
        m_t &= \max(\log f_t + m_{t-1},\ \tilde i_t),\quad
        \log f_t = \log\sigma(\tilde f_t)\ \text{(or } \tilde f_t \text{ with forget="exp")} \\
        i'_t &= \exp(\tilde i_t - m_t),\quad f'_t = \exp(\log f_t + m_{t-1} - m_t) \\
        c_t &= f'_t c_{t-1} + i'_t \tanh(\tilde z_t),\quad n_t = f'_t n_{t-1} + i'_t \\
        h_t &= \sigma(\tilde o_t) \odot c_t / n_t

    Gate order in ``weight_ih`` (4H, I) and ``bias`` (4H): (i, f, z, o). ``weight_hh`` is
    (4, heads, H/heads, H/heads): gate, head, then the head's block. State: ``(h, c, n, m)``.
    """

    gates = ("i", "f", "z", "o")

    def __init__(self, input_size: int, hidden_size: int, *, heads: int = 1, forget: str = "sigmoid",
                 bias: bool = True, init_range: float | None = None,
                 gate_bias: Mapping[str, float | Sequence[float]] | None = None):
        super().__init__(input_size, hidden_size)
        if forget not in ("sigmoid", "exp"):
            fail("SLSTM", "forget", "'sigmoid' or 'exp'", repr(forget))
        self.heads, self.forget = _heads("SLSTM", hidden_size, heads), forget
        H, I, d = hidden_size, input_size, hidden_size // self.heads
        self.weight_ih = nn.Parameter(torch.empty(4 * H, I))
        self.weight_hh = nn.Parameter(torch.empty(4, self.heads, d, d))
        self.bias = nn.Parameter(torch.empty(4 * H)) if bias else None
        self._init_uniform(init_range)
        self._apply_gate_bias(gate_bias)

    def state_shapes(self):
        H = self.hidden_size
        return ((H,), (H,), (H,), (H,))

    def forward(self, x_t: Tensor, state: State) -> tuple[Tensor, State]:
        h, c, n, m = state
        B, H, d = h.shape[0], self.hidden_size, self.hidden_size // self.heads
        recurrent = torch.einsum("bkd,gked->gbke", h.view(B, self.heads, d), self.weight_hh).reshape(4, B, H)
        i, f, z, o = (F.linear(x_t, self.weight_ih, self.bias).view(B, 4, H).transpose(0, 1) + recurrent).unbind(0)
        log_f = _log_sigmoid(f) if self.forget == "sigmoid" else f
        m_new = torch.maximum(log_f + m, i)
        i_s, f_s = torch.exp(i - m_new), torch.exp(log_f + m - m_new)
        c = f_s * c + i_s * torch.tanh(z)
        n = f_s * n + i_s
        h = torch.sigmoid(o) * c / n
        return h, (h, c, n, m_new)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, heads={self.heads}, forget={self.forget!r}"


class MLSTM(Cell):
    r"""mLSTM (the xLSTM paper's equations 19-27): a matrix memory per head updated by the
    covariance rule, queries, keys and values from the input, a scalar exponential input gate
    and a scalar forget gate per head, stabilised; no recurrent weights.

    .. math::
        q_t &= W_q x_t + b_q,\quad k_t = (W_k x_t + b_k)/\sqrt{d},\quad v_t = W_v x_t + b_v \\
        m_t &= \max(\log\sigma(\tilde f_t) + m_{t-1},\ \tilde i_t),\quad
        i'_t = \exp(\tilde i_t - m_t),\quad f'_t = \exp(\log\sigma(\tilde f_t) + m_{t-1} - m_t) \\
        C_t &= f'_t C_{t-1} + i'_t\, v_t k_t^\top,\quad n_t = f'_t n_{t-1} + i'_t k_t \\
        h_t &= \sigma(W_o x_t + b_o) \odot \frac{C_t q_t}{\max(|n_t^\top q_t|,\ \exp(-m_t))}

    per head of size d = H / heads. Gate order in ``weight_ih`` ((4H + 2·heads), I) and ``bias``:
    (q, k, v, o) with H rows each, then (i, f) with one row per head. State: ``(C, n, m)``, C of
    (heads, d, d) per example (value rows, key columns), n (heads, d), m (heads,).

    :meth:`scan` is the chunkwise-parallel form over a whole sequence, ``chunk_size`` steps per
    chunk: memory linear in the sequence's length, L×L products within a chunk.
    """

    gates = ("q", "k", "v", "o", "i", "f")

    def __init__(self, input_size: int, hidden_size: int, *, heads: int = 1, chunk_size: int = 64, bias: bool = True,
                 init_range: float | None = None, gate_bias: Mapping[str, float | Sequence[float]] | None = None):
        super().__init__(input_size, hidden_size)
        self.heads = _heads("MLSTM", hidden_size, heads)
        self.chunk_size = check_positive_int("MLSTM", "chunk_size", chunk_size)
        H, I = hidden_size, input_size
        self.weight_ih = nn.Parameter(torch.empty(4 * H + 2 * self.heads, I))
        self.bias = nn.Parameter(torch.empty(4 * H + 2 * self.heads)) if bias else None
        self._init_uniform(init_range)
        self._apply_gate_bias(gate_bias)

    def _gate_rows(self):
        if self.bias is None:
            return {}
        H, K = self.hidden_size, self.heads
        rows = {g: slice(k * H, (k + 1) * H) for k, g in enumerate(("q", "k", "v", "o"))}
        rows |= {"i": slice(4 * H, 4 * H + K), "f": slice(4 * H + K, 4 * H + 2 * K)}
        return {g: ((self.bias,), where) for g, where in rows.items()}

    def state_shapes(self):
        K, d = self.heads, self.hidden_size // self.heads
        return ((K, d, d), (K, d), (K,))

    def _split(self, projected: Tensor) -> tuple[Tensor, ...]:
        """``q, k (scaled), v, o`` (..., K, d) and ``i, f`` (..., K) of the projected input."""
        H, K = self.hidden_size, self.heads
        lead = projected.shape[:-1]
        q, k, v, o = (projected[..., j * H:(j + 1) * H].reshape(*lead, K, H // K) for j in range(4))
        return q, k / math.sqrt(H // K), v, o, projected[..., 4 * H:4 * H + K], projected[..., 4 * H + K:]

    def forward(self, x_t: Tensor, state: State) -> tuple[Tensor, State]:
        C, n, m = state
        B, H = x_t.shape[0], self.hidden_size
        q, k, v, o, i, f = self._split(F.linear(x_t, self.weight_ih, self.bias))   # (B, K, d) and (B, K)
        log_f = _log_sigmoid(f)
        m_new = torch.maximum(log_f + m, i)
        i_s, f_s = torch.exp(i - m_new)[..., None], torch.exp(log_f + m - m_new)[..., None]   # (B, K, 1)
        C = f_s[..., None] * C + i_s[..., None] * v[..., :, None] * k[..., None, :]
        n = f_s * n + i_s * k
        numerator = (C @ q[..., None])[..., 0]                                         # (B, K, d)
        denominator = torch.maximum((n * q).sum(-1).abs(), torch.exp(-m_new))[..., None]
        h = (torch.sigmoid(o) * numerator / denominator).reshape(B, H)
        return h, (C, n, m_new)

    def scan(self, x: Tensor, state: State, valid: Tensor | None = None) -> tuple[Tensor, State]:
        """The whole sequence at once, chunkwise: ``x`` (B, T, I), ``valid`` (B, T) or None (steps
        past a sequence's length leave its state as it was) -> ``(y (B, T, H), (C, n, m))``."""
        B, T, _ = x.shape
        q, k, v, o, i, f = self._split(F.linear(x, self.weight_ih, self.bias))     # (B, T, K, d) and (B, T, K)
        log_f = _log_sigmoid(f)
        if valid is not None:
            keep = valid[..., None]
            i, log_f = i.masked_fill(~keep, -torch.inf), log_f.masked_fill(~keep, 0.0)
        heads_first = [t.transpose(1, 2) for t in (q, k, v, i, log_f)]
        h, state = mlstm_chunkwise(*heads_first, tuple(state), self.chunk_size)   # h (B, K, T, d)
        y = torch.sigmoid(o).reshape(B, T, self.hidden_size) * h.transpose(1, 2).reshape(B, T, self.hidden_size)
        return y, state

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, heads={self.heads}, chunk_size={self.chunk_size}"


@register("slstm")
def slstm(input_size: int, hidden_size: int, *, heads: int = 1, forget: str = "sigmoid", bias: bool = True,
          init_range: float | None = None, gate_bias=None) -> SLSTM:
    """sLSTM of the xLSTM: exponential gating, normaliser, stabiliser, block-diagonal heads."""
    return SLSTM(input_size, hidden_size, heads=heads, forget=forget, bias=bias, init_range=init_range,
                 gate_bias=gate_bias)


@register("mlstm")
def mlstm(input_size: int, hidden_size: int, *, heads: int = 1, chunk_size: int = 64, bias: bool = True,
          init_range: float | None = None, gate_bias=None) -> MLSTM:
    """mLSTM of the xLSTM: a matrix memory per head, the covariance update, exponential gating."""
    return MLSTM(input_size, hidden_size, heads=heads, chunk_size=chunk_size, bias=bias, init_range=init_range,
                 gate_bias=gate_bias)
