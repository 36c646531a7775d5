r"""The mLSTM's chunkwise-parallel form: a whole sequence in chunks of ``L`` steps.

Within a chunk every step's output is one masked product of its queries with the chunk's keys
(attention-like, L×L per head); between chunks only the matrix memory ``C``, the normaliser
``n`` and the stabiliser ``m`` are carried, so the memory grows linearly with the sequence's
length, as in the tiled formulation of Beck et al. 2025 (TFLA). The stabiliser is the step
form's own, unrolled: with ``b_τ`` the cumulated log forget gates of the chunk up to step τ and
``m_s`` the stabiliser at the chunk's start,

.. math::
    m_τ = \max\bigl(m_s + b_τ,\ \max_{j \le τ} (b_τ - b_j + \tilde i_j)\bigr)

which is the recursion :math:`m_τ = \max(\log f_τ + m_{τ-1}, \tilde i_τ)` written out, so
every exponential below has an argument of at most zero and the result is the step loop's
(tested in float64, outputs, final states and gradients). Steps past a sequence's length have
``f = 1`` and ``i = 0`` (log-gates 0 and -inf): the state goes through them unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["mlstm_chunkwise"]


def mlstm_chunkwise(q: Tensor, k: Tensor, v: Tensor, i: Tensor, log_f: Tensor, state: tuple[Tensor, Tensor, Tensor],
                    chunk: int) -> tuple[Tensor, tuple[Tensor, Tensor, Tensor]]:
    """``q, k, v`` (B, K, T, d) (``k`` already scaled), ``i`` and ``log_f`` (B, K, T) the input
    gate's pre-activation and the forget gate's log (``-inf`` and ``0`` at steps to skip),
    ``state`` ``(C (B, K, d, d), n (B, K, d), m (B, K))`` -> ``(h̃ (B, K, T, d), final state)``,
    ``h̃`` the normalised read-out before the output gate."""
    B, K, T, d = q.shape
    L = min(chunk, T)
    N = -(-T // L)
    pad = N * L - T
    if pad:
        q, k, v = (F.pad(t, (0, 0, 0, pad)) for t in (q, k, v))
        i = F.pad(i, (0, pad), value=-torch.inf)
        log_f = F.pad(log_f, (0, pad))
    q, k, v = (t.reshape(B, K, N, L, d) for t in (q, k, v))
    i, log_f = i.reshape(B, K, N, L), log_f.reshape(B, K, N, L)

    b = log_f.cumsum(-1)                                                 # (B, K, N, L)
    local = b + torch.cummax(i - b, -1).values                           # max_j<=τ (b_τ - b_j + i_j)
    end = local[..., -1]                                                 # the chunk's own part at its end
    finite_end = torch.where(torch.isfinite(end), end, torch.zeros_like(end))
    weight = torch.exp(b[..., -1:] - b + i - finite_end[..., None])      # (B, K, N, L), at most 1
    own_C = (v * weight[..., None]).transpose(-1, -2) @ k               # (B, K, N, d, d): value rows, key columns
    own_n = (k * weight[..., None]).sum(-2)                              # (B, K, N, d)

    C, n, m = state
    starts = []
    for c in range(N):                                                   # the memory carried from chunk to chunk
        starts.append((C, n, m))
        carried = m + b[:, :, c, -1]
        m_new = torch.maximum(carried, end[:, :, c])
        keep, add = torch.exp(carried - m_new), torch.exp(finite_end[:, :, c] - m_new)
        C = keep[..., None, None] * C + add[..., None, None] * own_C[:, :, c]
        n = keep[..., None] * n + add[..., None] * own_n[:, :, c]
        m = m_new
    C_s, n_s, m_s = (torch.stack(s, 2) for s in zip(*starts))            # each chunk's start

    m_t = torch.maximum(m_s[..., None] + b, local)                       # (B, K, N, L): the step form's m
    scale = torch.exp(m_s[..., None] + b - m_t)                          # the carried memory's weight
    causal = torch.ones(L, L, dtype=torch.bool, device=q.device).tril()
    log_D = torch.where(causal, b[..., :, None] - b[..., None, :] + i[..., None, :] - m_t[..., None], -torch.inf)
    S = (q @ k.transpose(-1, -2)) * torch.exp(log_D)                     # (B, K, N, L, L)
    numerator = scale[..., None] * (q @ C_s.transpose(-1, -2)) + S @ v   # (B, K, N, L, d)
    denominator = scale * (q * n_s[..., None, :]).sum(-1) + S.sum(-1)    # (B, K, N, L)
    h = numerator / torch.maximum(denominator.abs(), torch.exp(-m_t))[..., None]
    return h.reshape(B, K, N * L, d)[:, :, :T], (C, n, m)
