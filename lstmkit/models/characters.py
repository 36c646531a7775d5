"""Character-level word encoders: a word's vector built from its spelling, so that a tagger has
something to say about words it never saw in training (suffixes, capitals, digits).

Shapes: B sentences, T words, L characters per word (padded), C character vocabulary (id 0 is
padding), E character embedding size. Input ``chars`` (B, T, L) int64 and ``char_lengths``
(B, T) int64, the number of characters of each word (0 for a padding word); output (B, T, D),
zeros for padding words.

- :class:`CharCNN`: embeddings, one convolution over each word's characters, max-pooled over
  its characters (Ma & Hovy 2016, the character encoder of their BiLSTM-CNN-CRF);
- :class:`CharRNN`: a bidirectional recurrent network of any registered cell over each word's
  characters, the forward direction's last output beside the backward direction's (Lample et
  al. 2016).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._checks import check_positive_int, check_probability, fail
from ..layers import build_rnn, valid_steps

__all__ = ["CharCNN", "CharRNN"]


def _check_chars(owner: str, chars: Tensor, char_lengths: Tensor) -> tuple[int, int, int]:
    if not isinstance(chars, Tensor) or chars.dim() != 3 or chars.dtype != torch.long:
        got = f"{chars.dtype} shape {tuple(chars.shape)}" if isinstance(chars, Tensor) else type(chars).__name__
        fail(owner, "chars", "an int64 tensor (sentences, words, characters)", got)
    B, T, L = chars.shape
    if not isinstance(char_lengths, Tensor) or char_lengths.shape != (B, T) or char_lengths.dtype != torch.long:
        got = (f"{char_lengths.dtype} shape {tuple(char_lengths.shape)}" if isinstance(char_lengths, Tensor)
               else type(char_lengths).__name__)
        fail(owner, "char_lengths", f"an int64 tensor of shape ({B}, {T})", got)
    if char_lengths.numel() and (int(char_lengths.min()) < 0 or int(char_lengths.max()) > L):
        fail(owner, "char_lengths", f"values in [0, {L}]", f"[{int(char_lengths.min())}, {int(char_lengths.max())}]")
    return B, T, L


class CharCNN(nn.Module):
    """Characters (B, T, L) -> word vectors (B, T, filters): embed, convolve ``width`` characters
    at a time (padded by ``width // 2`` each side), max over the word's own characters.

    >>> encoder = CharCNN(40, embedding_size=8, filters=12)
    >>> encoder(torch.randint(1, 40, (2, 5, 7)), torch.full((2, 5), 7)).shape
    torch.Size([2, 5, 12])
    """

    def __init__(self, num_chars: int, *, embedding_size: int = 30, filters: int = 30, width: int = 3,
                 dropout: float = 0.0):
        super().__init__()
        for name, value in (("num_chars", num_chars), ("embedding_size", embedding_size), ("filters", filters),
                            ("width", width)):
            check_positive_int("CharCNN", name, value)
        if width % 2 == 0:
            fail("CharCNN", "width", "an odd number of characters (the window is centred)", width)
        self.embed = nn.Embedding(num_chars, embedding_size, padding_idx=0)
        self.dropout = nn.Dropout(check_probability("CharCNN", "dropout", dropout))
        self.conv = nn.Conv1d(embedding_size, filters, width, padding=width // 2)
        self.output_size = filters

    def forward(self, chars: Tensor, char_lengths: Tensor) -> Tensor:
        B, T, L = _check_chars("CharCNN", chars, char_lengths)
        valid = valid_steps(char_lengths.reshape(B * T), L)[..., None]         # (B*T, L, 1)
        # padding characters are zeros, as the convolution's own padding is, whatever ids they hold
        x = self.dropout(self.embed(chars.view(B * T, L))) * valid             # (B*T, L, E)
        h = self.conv(x.transpose(1, 2)).transpose(1, 2)                       # (B*T, L, F)
        h = h.masked_fill(~valid, float("-inf")).amax(1)                       # (B*T, F)
        empty = char_lengths.reshape(B * T, 1) == 0
        return h.masked_fill(empty, 0.0).view(B, T, -1)                        # padding words: zeros


class CharRNN(nn.Module):
    """Characters (B, T, L) -> word vectors (B, T, 2 * hidden_size): a bidirectional ``cell``
    network over each word's characters (lengths respected), its forward direction's output
    after the last character and its backward direction's after the first (having read the word
    from the end).

    >>> encoder = CharRNN(40, embedding_size=8, hidden_size=6, cell="gru")
    >>> encoder(torch.randint(1, 40, (2, 5, 7)), torch.full((2, 5), 7)).shape
    torch.Size([2, 5, 12])
    """

    def __init__(self, num_chars: int, *, embedding_size: int = 25, hidden_size: int = 25, cell: str = "lstm",
                 dropout: float = 0.0, **cell_options):
        super().__init__()
        for name, value in (("num_chars", num_chars), ("embedding_size", embedding_size),
                            ("hidden_size", hidden_size)):
            check_positive_int("CharRNN", name, value)
        self.embed = nn.Embedding(num_chars, embedding_size, padding_idx=0)
        self.dropout = nn.Dropout(check_probability("CharRNN", "dropout", dropout))
        self.rnn = build_rnn(cell, embedding_size, hidden_size, bidirectional=True, **cell_options)
        self.hidden_size = hidden_size
        self.output_size = 2 * hidden_size

    def forward(self, chars: Tensor, char_lengths: Tensor) -> Tensor:
        B, T, L = _check_chars("CharRNN", chars, char_lengths)
        H = self.hidden_size
        lengths = char_lengths.reshape(B * T)
        y, _ = self.rnn(self.dropout(self.embed(chars.view(B * T, L))), lengths=lengths)   # (B*T, L, 2H)
        last = (lengths - 1).clamp(min=0)                                                 # (B*T,)
        forward = y[torch.arange(B * T), last, :H]                                        # after the last character
        backward = y[:, 0, H:]                                                            # after reading back to the first
        out = torch.cat([forward, backward], -1).masked_fill((lengths == 0)[:, None], 0.0)
        return out.view(B, T, 2 * H)
