"""Task models built on the recurrent layers: many-to-one classification and forecasting.

Shape legend: B batch, T time, F input features, H hidden units, O recurrent output features,
C classes, V vocabulary, E embedding size, W window, K horizon.

Both models are plain ``torch.nn.Module``s (and :class:`Ensemble` averages several of either);
``forward`` returns the prediction and, given targets, the loss, like nanoGPT:
``logits, loss = model(x, lengths=lengths, targets=y)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._bidirectional import Bidirectional
from ._build import build_rnn
from ._checks import check_positive_int, fail
from ._recurrent import valid_steps
from ._stack import Stack

__all__ = ["POOLINGS", "SequenceClassifier", "Forecaster", "Ensemble", "pool"]

POOLINGS = ("last", "mean", "max", "attention")


def _is_bidirectional_concat(rnn: nn.Module) -> bool:
    top = rnn.layers[-1] if isinstance(rnn, Stack) else rnn
    return isinstance(top, Bidirectional) and top.merge == "concat"


def pool(y: Tensor, lengths: Tensor, how: str, *, split: int | None = None, scores: Tensor | None = None) -> Tensor:
    """One vector per sequence from the outputs ``y`` (B, T, O) of the valid steps.

    ``last``: the output at each sequence's last valid step; with ``split`` (a bidirectional,
    concatenated output whose backward half starts at feature ``split``) the backward half is
    taken at step 0, where the backward direction has read the whole sequence. ``mean``/``max``
    over the valid steps; ``attention``: softmax of ``scores`` (B, T) over the valid steps.
    """
    B, T, O = y.shape
    valid = valid_steps(lengths.to(y.device), T)                       # (B, T) bool
    if how == "last":
        last = y[torch.arange(B, device=y.device), lengths.to(y.device) - 1]    # (B, O)
        if split is None:
            return last
        return torch.cat([last[:, :split], y[:, 0, split:]], dim=1)
    if how == "mean":
        mask = valid.unsqueeze(-1).to(y.dtype)                         # (B, T, 1)
        return (y * mask).sum(1) / lengths.to(y.device, y.dtype).unsqueeze(-1)
    if how == "max":
        return y.masked_fill(~valid.unsqueeze(-1), float("-inf")).amax(1)
    if how == "attention":
        weights = torch.softmax(scores.masked_fill(~valid, float("-inf")), dim=1)   # (B, T)
        return torch.einsum("bt,bto->bo", weights, y)
    fail("pool", "how", f"one of {POOLINGS}", repr(how))


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
    ``residual``, cell options...).

    >>> model = SequenceClassifier("lstm", 12, 32, 9, pooling="mean", bidirectional=True)
    >>> logits, loss = model(torch.randn(4, 20, 12), lengths=torch.tensor([20, 9, 15, 7]),
    ...                      targets=torch.tensor([0, 3, 8, 1]))
    >>> logits.shape, loss.ndim
    (torch.Size([4, 9]), 0)
    """

    def __init__(self, cell: str, input_size: int, hidden_size: int, num_classes: int, *,
                 pooling: str = "last", vocab_size: int | None = None, embedding_size: int | None = None,
                 head_dropout: float = 0.0, word_dropout: float = 0.0, unk_index: int = 1,
                 input_noise: float = 0.0, word_vectors: Tensor | None = None, **rnn_options):
        super().__init__()
        check_positive_int("SequenceClassifier", "num_classes", num_classes)
        if pooling not in POOLINGS:
            fail("SequenceClassifier", "pooling", f"one of {POOLINGS}", repr(pooling))
        if not 0.0 <= word_dropout < 1.0:
            fail("SequenceClassifier", "word_dropout", "a probability in [0, 1)", repr(word_dropout))
        if word_dropout and vocab_size is None:
            fail("SequenceClassifier", "word_dropout", "0 when the inputs are features (no vocab_size)",
                 repr(word_dropout))
        if not isinstance(input_noise, (int, float)) or isinstance(input_noise, bool):
            fail("SequenceClassifier", "input_noise", "a float", repr(input_noise), kind=TypeError)
        if not input_noise >= 0.0:
            fail("SequenceClassifier", "input_noise", "a standard deviation >= 0", repr(input_noise))
        self.pooling = pooling
        self.word_dropout, self.unk_index, self.input_noise = word_dropout, unk_index, float(input_noise)
        self.embedding = None
        if vocab_size is not None:
            check_positive_int("SequenceClassifier", "vocab_size", vocab_size)
            if not 0 < unk_index < vocab_size:
                fail("SequenceClassifier", "unk_index", f"an id in [1, {vocab_size})", repr(unk_index))
            input_size = embedding_size or input_size
            self.embedding = nn.Embedding(vocab_size, input_size, padding_idx=0)
        self.register_buffer("word_vectors", None, persistent=False)
        if word_vectors is not None:
            if vocab_size is None:
                fail("SequenceClassifier", "word_vectors", "None when the inputs are features (no vocab_size)",
                     "a table")
            if not isinstance(word_vectors, Tensor) or word_vectors.dim() != 2 or not word_vectors.is_floating_point():
                fail("SequenceClassifier", "word_vectors", "a 2-d float tensor (rows, dim)",
                     f"{type(word_vectors).__name__} {tuple(getattr(word_vectors, 'shape', ()))}", kind=TypeError)
            self.word_vectors = word_vectors.detach()
            input_size += word_vectors.shape[1]
        self.rnn = build_rnn(cell, input_size, hidden_size, **rnn_options)
        O = self.rnn.output_size
        if O is None:
            fail("SequenceClassifier", "merge", "a merge mode with a known output size", repr(rnn_options.get("merge")))
        self.split = O // 2 if _is_bidirectional_concat(self.rnn) else None
        self.attention = nn.Linear(O, 1) if pooling == "attention" else None
        self.dropout = nn.Dropout(head_dropout)
        self.head = nn.Linear(O, num_classes)

    def forward(self, x: Tensor, *, lengths: Tensor | None = None, targets: Tensor | None = None):
        B, T = x.shape[:2]
        if lengths is None:
            lengths = torch.full((B,), T, dtype=torch.long)
        if self.embedding is not None:
            rows = None
            if self.word_vectors is not None:
                if x.dim() != 3 or x.shape[-1] != 2:
                    fail("SequenceClassifier.forward", "x", "(B, T, 2) token ids and vector rows",
                         f"shape {tuple(x.shape)}")
                x, rows = x[..., 0], x[..., 1]
            if self.training and self.word_dropout:
                drop = (torch.rand(x.shape, device=x.device) < self.word_dropout) & (x != 0)
                x = x.masked_fill(drop, self.unk_index)
            x = self.embedding(x)                                      # (B, T) -> (B, T, E)
            if rows is not None:                                       # + the frozen vectors: (B, T, E + D)
                x = torch.cat([x, F.embedding(rows, self.word_vectors).to(x.dtype)], -1)
        if self.training and self.input_noise:
            x = x + self.input_noise * torch.randn_like(x)
        y, _ = self.rnn(x, lengths=lengths)                            # (B, T, O)
        scores = self.attention(y).squeeze(-1) if self.attention is not None else None   # (B, T)
        z = pool(y, lengths, self.pooling, split=self.split, scores=scores)             # (B, O)
        logits = self.head(self.dropout(z))                            # (B, C)
        loss = F.cross_entropy(logits, targets) if targets is not None else None
        return logits, loss


class Forecaster(nn.Module):
    """Direct multi-step forecaster: a window (B, W, F) -> the next ``horizon`` values (B, K).

    The recurrent network reads the window; the output at its last step goes through a
    linear layer to all K future values at once (the direct strategy: no error feedback).
    With ``horizon=1`` it is a one-step predictor, as used for prediction-error anomaly scores.

    >>> model = Forecaster("gru", 1, 16, horizon=12)
    >>> pred, loss = model(torch.randn(8, 48, 1), targets=torch.randn(8, 12))
    >>> pred.shape
    torch.Size([8, 12])
    """

    def __init__(self, cell: str, input_size: int, hidden_size: int, *, horizon: int = 1, **rnn_options):
        super().__init__()
        check_positive_int("Forecaster", "horizon", horizon)
        self.horizon = horizon
        self.rnn = build_rnn(cell, input_size, hidden_size, **rnn_options)
        if self.rnn.output_size is None:
            fail("Forecaster", "merge", "a merge mode with a known output size", repr(rnn_options.get("merge")))
        self.split = self.rnn.output_size // 2 if _is_bidirectional_concat(self.rnn) else None
        self.head = nn.Linear(self.rnn.output_size, horizon)

    def forward(self, x: Tensor, *, targets: Tensor | None = None):
        B, W, _ = x.shape
        y, _ = self.rnn(x)                                             # (B, W, O)
        lengths = torch.full((B,), W, dtype=torch.long)
        pred = self.head(pool(y, lengths, "last", split=self.split))   # (B, K)
        loss = F.mse_loss(pred, targets) if targets is not None else None
        return pred, loss


class Ensemble(nn.Module):
    """Several models of the same kind trained side by side on the same batches, each on its own
    loss, whose predictions are averaged (seed ensembles: the cheapest reliable gain on small data).

    ``combine="probabilities"`` (classifiers): the output is the log of the members' mean class
    probabilities, so its softmax and argmax are those of the averaged probabilities and its cross
    entropy is the mixture's. ``combine="mean"`` (forecasters): the mean prediction. The loss is the
    mean of the members' losses, so each member's gradient is that of its own loss (scaled by 1/N).
    Members are built by the caller; different initial weights make them differ.

    >>> model = Ensemble([SequenceClassifier("lstm", 12, 16, 3) for _ in range(4)], combine="probabilities")
    >>> logits, loss = model(torch.randn(2, 5, 12), targets=torch.tensor([0, 2]))
    >>> logits.shape, torch.allclose(logits.exp().sum(-1), torch.ones(2))
    (torch.Size([2, 3]), True)
    """

    COMBINES = ("probabilities", "mean")

    def __init__(self, members: list[nn.Module], *, combine: str):
        super().__init__()
        if combine not in self.COMBINES:
            fail("Ensemble", "combine", f"one of {self.COMBINES}", repr(combine))
        members = list(members)
        if not members or not all(isinstance(m, nn.Module) for m in members):
            fail("Ensemble", "members", "a non-empty list of nn.Module", repr(members)[:80])
        self.members = nn.ModuleList(members)
        self.combine = combine

    def forward(self, x: Tensor, *, targets: Tensor | None = None, **kwargs):
        outputs = [member(x, targets=targets, **kwargs) for member in self.members]
        predictions = torch.stack([out for out, _ in outputs])            # (N, B, ...)
        if self.combine == "probabilities":
            combined = torch.logsumexp(torch.log_softmax(predictions, -1), 0) - math.log(len(outputs))
        else:
            combined = predictions.mean(0)
        loss = torch.stack([loss for _, loss in outputs]).mean() if targets is not None else None
        return combined, loss
