"""Many-to-one classification of sequences: features or tokens in, one class out."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_positive_int, check_probability, check_std, fail
from ..layers import build_rnn
from .inputs import InputNoise, TokenEmbedding
from .pooling import POOLINGS, Pooling, concat_split
from .xlstm import build_xlstm

__all__ = ["SequenceClassifier"]


class SequenceClassifier(nn.Module):
    """Many-to-one classifier: (embedding) -> recurrent network -> pooling -> dropout -> linear.

    ``vocab_size`` set: inputs are token ids (B, T) (0 is padding) embedded to ``embedding_size``;
    otherwise inputs are features (B, T, F) with F = ``input_size``. ``word_dropout`` (token ids
    only): in training, each non-padding token is replaced by ``unk_index`` with this probability,
    so the model cannot lean on a few rare words (word dropout, Iyyer et al. 2015). ``input_noise``:
    in training, Gaussian noise of this standard deviation is added to every input step (the
    features, or the word embeddings), a classic regulariser for small data. ``word_vectors``
    (with ``vocab_size``): a (P, D) table of pretrained vectors whose row 0 is the "no vector"
    row; inputs are then (B, T, 2), each token's id in the vocabulary and its row in the table,
    and the recurrent network reads the trained embedding and the frozen vector side by side
    (E + D features). The table is a buffer left out of the state dict: the caller supplies it
    again when it rebuilds the model, so checkpoints stay small. ``lengths``
    (B,) give the valid steps; without it every sequence has length T. ``rnn_options`` go to
    :func:`lstmkit.build_rnn` (``num_layers``, ``bidirectional``, ``merge``, ``dropout``,
    ``residual``, cell options...). ``blocks`` (a ratio such as ``"7:1"`` or a letter m or s per
    layer) makes the network the xLSTM's residual blocks instead (:class:`~lstmkit.models.XLSTM`;
    ``cell`` unused).

    >>> model = SequenceClassifier("lstm", 12, 32, 9, pooling="mean", bidirectional=True)
    >>> logits, loss = model(torch.randn(4, 20, 12), lengths=torch.tensor([20, 9, 15, 7]),
    ...                      targets=torch.tensor([0, 3, 8, 1]))
    >>> logits.shape, loss.ndim
    (torch.Size([4, 9]), 0)
    """

    def __init__(self, cell: str, input_size: int, hidden_size: int, num_classes: int, *,
                 pooling: str = "last", vocab_size: int | None = None, embedding_size: int | None = None,
                 head_dropout: float = 0.0, word_dropout: float = 0.0, unk_index: int = 1,
                 input_noise: float = 0.0, word_vectors: Tensor | None = None, blocks: str | None = None,
                 **rnn_options):
        super().__init__()
        owner = "SequenceClassifier"
        check_positive_int(owner, "num_classes", num_classes)
        if pooling not in POOLINGS:
            fail(owner, "pooling", f"one of {POOLINGS}", repr(pooling))
        check_probability(owner, "word_dropout", word_dropout)
        check_std(owner, "input_noise", input_noise)
        self.embedding = None
        if vocab_size is None:
            if word_dropout:
                fail(owner, "word_dropout", "0 when the inputs are features (no vocab_size)", repr(word_dropout))
            if word_vectors is not None:
                fail(owner, "word_vectors", "None when the inputs are features (no vocab_size)", "a table")
        else:
            check_positive_int(owner, "vocab_size", vocab_size)
            if not 0 < unk_index < vocab_size:
                fail(owner, "unk_index", f"an id in [1, {vocab_size})", repr(unk_index))
            self.embedding = TokenEmbedding(vocab_size, embedding_size or input_size, word_dropout=word_dropout,
                                            unk_index=unk_index, word_vectors=word_vectors)
            input_size = self.embedding.output_size
        self.noise = InputNoise(input_noise)
        if blocks is None:
            self.rnn = build_rnn(cell, input_size, hidden_size, **rnn_options)
        else:                                               # the xLSTM's residual blocks; cell unused
            self.rnn = build_xlstm(input_size, hidden_size, blocks, **rnn_options)
        O = self.rnn.output_size
        if O is None:
            fail(owner, "merge", "a merge mode with a known output size", repr(rnn_options.get("merge")))
        self.pool = Pooling(pooling, O, split=concat_split(self.rnn))
        self.dropout = nn.Dropout(head_dropout)
        self.head = nn.Linear(O, num_classes)
        self._register_load_state_dict_pre_hook(_attention_key_of_before_pooling_was_a_module)

    @property
    def pooling(self) -> str:
        return self.pool.how

    @property
    def word_vectors(self) -> Tensor | None:
        """The frozen table of pretrained vectors (None without one)."""
        return None if self.embedding is None else self.embedding.word_vectors

    def forward(self, x: Tensor, *, lengths: Tensor | None = None, targets: Tensor | None = None):
        B, T = x.shape[:2]
        if lengths is None:
            lengths = torch.full((B,), T, dtype=torch.long)
        if self.embedding is not None:
            x = self.embedding(x)                                      # (B, T) -> (B, T, E [+ D])
        y, _ = self.rnn(self.noise(x), lengths=lengths)                # (B, T, O)
        logits = self.head(self.dropout(self.pool(y, lengths)))        # (B, C)
        loss = F.cross_entropy(logits, targets) if targets is not None else None
        return logits, loss


def _attention_key_of_before_pooling_was_a_module(state_dict, prefix, *args) -> None:
    """Checkpoints written before pooling was its own module keep its scoring layer at
    ``attention.*``; it now lives at ``pool.attention.*``."""
    for name in ("weight", "bias"):
        old = f"{prefix}attention.{name}"
        if old in state_dict:
            state_dict[f"{prefix}pool.attention.{name}"] = state_dict.pop(old)
