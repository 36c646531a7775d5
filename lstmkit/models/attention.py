"""Attention over an encoder's outputs (a "memory"), for a decoder's query at each step.

Shapes: B sequences, S source steps, K memory features, Q query features, A attention units.

- ``additive`` (Bahdanau et al. 2015): score(q, k) = vᵀ tanh(W_q q + W_k k + b);
- ``dot`` (Luong et al. 2015): score(q, k) = q·k (needs Q = K);
- ``general`` (Luong et al. 2015): score(q, k) = q·(W k).

Padding steps of the memory get no weight: the weights over the valid steps sum to 1.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._checks import check_positive_int, fail

__all__ = ["Attention", "ATTENTIONS"]

ATTENTIONS = ("additive", "dot", "general")


class Attention(nn.Module):
    """Scores of a query against each memory step, softmax over the valid steps, the weighted sum.

    :meth:`prepare` projects the memory once per batch (what does not depend on the query);
    ``forward(query, prepared)`` gives ``(context (B, K), weights (B, S))``.

    >>> attention = Attention("additive", 6, 8)
    >>> memory, valid = torch.randn(2, 5, 8), torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], dtype=torch.bool)
    >>> context, weights = attention(torch.randn(2, 6), attention.prepare(memory, valid))
    >>> context.shape, weights[1, 3:].tolist(), round(weights[1].sum().item(), 6)
    (torch.Size([2, 8]), [0.0, 0.0], 1.0)
    """

    def __init__(self, kind: str, query_size: int, memory_size: int, attention_size: int | None = None):
        super().__init__()
        if kind not in ATTENTIONS:
            fail("Attention", "kind", f"one of {list(ATTENTIONS)}", repr(kind))
        check_positive_int("Attention", "query_size", query_size)
        check_positive_int("Attention", "memory_size", memory_size)
        self.kind = kind
        if kind == "dot" and query_size != memory_size:
            fail("Attention", "query_size", f"the memory size ({memory_size}) for dot attention", query_size)
        if kind == "additive":
            A = check_positive_int("Attention", "attention_size", attention_size or query_size)
            self.query_projection = nn.Linear(query_size, A, bias=False)
            self.memory_projection = nn.Linear(memory_size, A)
            self.v = nn.Linear(A, 1, bias=False)
        elif kind == "general":
            self.memory_projection = nn.Linear(memory_size, query_size, bias=False)

    def prepare(self, memory: Tensor, valid: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(memory (B, S, K), its projection, valid (B, S) bool)`` for the steps of a batch."""
        if memory.dim() != 3 or valid.shape != memory.shape[:2] or valid.dtype != torch.bool:
            fail("Attention.prepare", "valid", f"a bool mask of shape {tuple(memory.shape[:2])}",
                 f"{valid.dtype} {tuple(valid.shape)}")
        keys = memory if self.kind == "dot" else self.memory_projection(memory)
        return memory, keys, valid

    def forward(self, query: Tensor, prepared: tuple[Tensor, Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        memory, keys, valid = prepared
        if self.kind == "additive":
            scores = self.v(torch.tanh(keys + self.query_projection(query)[:, None])).squeeze(-1)      # (B, S)
        else:
            scores = torch.bmm(keys, query[:, :, None]).squeeze(-1)                                    # (B, S)
        weights = scores.masked_fill(~valid, float("-inf")).softmax(-1)
        return torch.bmm(weights[:, None], memory).squeeze(1), weights

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}"
