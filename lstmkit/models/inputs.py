"""What a model does to its inputs before the recurrent network reads them: token embeddings
(with word dropout and frozen pretrained vectors) and Gaussian input noise."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_positive_int, check_probability, check_std, fail

__all__ = ["TokenEmbedding", "InputNoise"]


class TokenEmbedding(nn.Embedding):
    """Token ids (B, T) -> embeddings (B, T, E); id 0 is padding.

    ``word_dropout``: in training, each non-padding token is replaced by ``unk_index`` with this
    probability, so the model cannot lean on a few rare words (word dropout, Iyyer et al. 2015).
    ``word_vectors``: a (P, D) table of pretrained vectors whose row 0 is the "no vector" row;
    inputs are then (B, T, 2), each token's id and its row in the table, and the output is the
    trained embedding and the frozen vector side by side (B, T, E + D). The table is a buffer left
    out of the state dict: whoever rebuilds the model supplies it again, so checkpoints stay small.

    >>> embed = TokenEmbedding(50, 6, word_vectors=torch.randn(10, 4))
    >>> embed(torch.tensor([[[3, 1], [7, 0]]])).shape
    torch.Size([1, 2, 10])
    """

    def __init__(self, vocab_size: int, embedding_size: int, *, word_dropout: float = 0.0, unk_index: int = 1,
                 word_vectors: Tensor | None = None):
        check_positive_int("TokenEmbedding", "vocab_size", vocab_size)
        check_positive_int("TokenEmbedding", "embedding_size", embedding_size)
        if not 0 < unk_index < vocab_size:
            fail("TokenEmbedding", "unk_index", f"an id in [1, {vocab_size})", repr(unk_index))
        word_dropout = check_probability("TokenEmbedding", "word_dropout", word_dropout)
        super().__init__(vocab_size, embedding_size, padding_idx=0)
        self.word_dropout, self.unk_index = word_dropout, unk_index
        self.register_buffer("word_vectors", None, persistent=False)
        if word_vectors is not None:
            if not isinstance(word_vectors, Tensor) or word_vectors.dim() != 2 or not word_vectors.is_floating_point():
                fail("TokenEmbedding", "word_vectors", "a 2-d float tensor (rows, dim)",
                     f"{type(word_vectors).__name__} {tuple(getattr(word_vectors, 'shape', ()))}", kind=TypeError)
            self.word_vectors = word_vectors.detach()

    @property
    def output_size(self) -> int:
        return self.embedding_dim + (0 if self.word_vectors is None else self.word_vectors.shape[1])

    def forward(self, x: Tensor) -> Tensor:
        rows = None
        if self.word_vectors is not None:
            if x.dim() != 3 or x.shape[-1] != 2:
                fail("TokenEmbedding", "x", "(B, T, 2) token ids and vector rows", f"shape {tuple(x.shape)}")
            x, rows = x[..., 0], x[..., 1]
        if self.training and self.word_dropout:
            drop = (torch.rand(x.shape, device=x.device) < self.word_dropout) & (x != 0)
            x = x.masked_fill(drop, self.unk_index)
        out = super().forward(x)                                       # (B, T) -> (B, T, E)
        if rows is not None:                                           # + the frozen vectors: (B, T, E + D)
            out = torch.cat([out, F.embedding(rows, self.word_vectors).to(out.dtype)], -1)
        return out

    def extra_repr(self) -> str:
        vectors = "" if self.word_vectors is None else f", word_vectors={tuple(self.word_vectors.shape)}"
        return f"{super().extra_repr()}, word_dropout={self.word_dropout}{vectors}"


class InputNoise(nn.Module):
    """In training, add Gaussian noise of standard deviation ``std`` to every input step (a
    classic regulariser for small data); the identity in eval mode or with ``std=0``."""

    def __init__(self, std: float = 0.0):
        super().__init__()
        self.std = check_std("InputNoise", "std", std)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.std * torch.randn_like(x) if self.training and self.std else x

    def extra_repr(self) -> str:
        return f"std={self.std}"
