"""Language models: the next token from the tokens before it (Zaremba et al. 2014; Press & Wolf
2017; Merity et al. 2018).

Shapes: B streams, T steps, V vocabulary, E embedding size, H hidden units. ``tokens`` (B, T)
int64 ids; ``state`` a list with each layer's state (None: zeros), carried from one window of
a stream to the next in truncated backpropagation through time.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_positive_int, check_probability, fail
from ..cells import make
from ..layers import Recurrent, WeightDrop
from .xlstm import xlstm_blocks
from .output import linear_cross_entropy

__all__ = ["LanguageModel", "LockedDropout", "EmbeddingDropout", "detach_state"]

State = list


def detach_state(state: State | None) -> State | None:
    """The state with its history cut off (truncated BPTT: gradients stop at the window's start)."""
    if state is None:
        return None
    return [tuple(s.detach() for s in layer) for layer in state]


class LockedDropout(nn.Module):
    """Dropout with one mask per sequence, the same at every step (variational dropout, Gal &
    Ghahramani 2016): ``x`` (B, T, F) -> ``x * m / (1 - p)``, ``m`` (B, 1, F). In eval mode, or
    with ``p = 0``, the identity."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.p = check_probability("LockedDropout", "p", p)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or not self.p:
            return x
        B, _, Fx = x.shape
        mask = x.new_empty(B, 1, Fx).bernoulli_(1 - self.p) / (1 - self.p)      # (B, 1, F)
        return x * mask

    def extra_repr(self) -> str:
        return f"p={self.p}"


class EmbeddingDropout(nn.Module):
    """Drops whole words: in training each row of an embedding table is zeroed with probability
    ``p`` (the survivors scaled by 1 / (1 - p)), one mask per forward pass, so a dropped word
    is dropped wherever it occurs in the batch (Gal & Ghahramani 2016, AWD-LSTM)."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.p = check_probability("EmbeddingDropout", "p", p)

    def forward(self, weight: Tensor) -> Tensor:
        if not self.training or not self.p:
            return weight
        V = weight.shape[0]
        return weight * (weight.new_empty(V, 1).bernoulli_(1 - self.p) / (1 - self.p))   # (V, E)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class LanguageModel(nn.Module):
    """tokens (B, T) -> embedding (B, T, E) -> dropout -> ``num_layers`` forward recurrent layers
    of any registered ``cell``, dropout after each -> linear to next-token logits (B, T, V).

    Dropout is on the non-recurrent connections only (Zaremba et al. 2014): ``dropout`` on every
    layer's input and on the last layer's output, a fresh mask at every step, or with
    ``locked_dropout=True`` one mask per sequence (variational dropout); ``embedding_dropout``
    drops whole words from the embedding table. ``tie_weights`` shares the embedding table with
    the output layer (Press & Wolf 2017; Inan et al. 2017): it needs ``embedding_size ==
    hidden_size``. ``weight_drop`` is DropConnect on every layer's recurrent weights, one mask
    per forward pass (:class:`~lstmkit.layers.WeightDrop`, AWD-LSTM's regulariser). In training
    the loss adds ``ar`` times the mean square of the last layer's (dropped) outputs and ``tar``
    times the mean square of their change from one step to the next (activation and temporal
    activation regularisation, Merity et al. 2017). ``init_range``: every weight uniform in ±init_range (Zaremba: 0.1), None keeps
    each part's own initialisation. ``cell_options`` go to every cell.

    ``blocks`` makes the layers the xLSTM's residual blocks instead of plain layers of ``cell``:
    a ratio of mLSTM to sLSTM blocks such as ``"7:1"`` (the paper's xLSTM[7:1]) or a letter per
    layer (``"msms"``); see :mod:`lstmkit.models.xlstm`. ``cell`` is then unused and
    ``cell_options`` go to the blocks (``heads``, ``forget``, ``chunk_size``).

    ``forward(tokens, state=None, *, targets=None) -> (logits, state, loss)``: the loss is the
    mean cross-entropy of ``targets`` (B, T), else None; ``state`` the layers' final states, to
    pass to the next window. :meth:`step` is one token per stream from a carried state: the
    streaming form, equal to ``forward`` over the whole sequence.

    >>> model = LanguageModel("lstm", 50, 16, num_layers=2, tie_weights=True)
    >>> logits, state, loss = model(torch.randint(0, 50, (3, 7)), targets=torch.randint(0, 50, (3, 7)))
    >>> logits.shape, len(state)
    (torch.Size([3, 7, 50]), 2)
    """

    def __init__(self, cell: str, vocab_size: int, hidden_size: int, *, embedding_size: int | None = None,
                 num_layers: int = 2, dropout: float = 0.0, locked_dropout: bool = False,
                 embedding_dropout: float = 0.0, weight_drop: float = 0.0, tie_weights: bool = False,
                 init_range: float | None = None, ar: float = 0.0, tar: float = 0.0, blocks: str | None = None,
                 **cell_options):
        super().__init__()
        owner = "LanguageModel"
        check_positive_int(owner, "vocab_size", vocab_size)
        check_positive_int(owner, "hidden_size", hidden_size)
        check_positive_int(owner, "num_layers", num_layers)
        embedding_size = hidden_size if embedding_size is None else check_positive_int(owner, "embedding_size",
                                                                                         embedding_size)
        if tie_weights and embedding_size != hidden_size:
            fail(owner, "tie_weights", f"embedding_size == hidden_size to share the table (the output layer reads "
                 f"{hidden_size} features)", f"embedding_size {embedding_size}")
        if init_range is not None and not (isinstance(init_range, (int, float)) and init_range > 0):
            fail(owner, "init_range", "a positive number or None", repr(init_range))
        for name, value in (("ar", ar), ("tar", tar)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                fail(owner, name, "a weight >= 0", repr(value))
        self.ar, self.tar = float(ar), float(tar)
        self.embedding = nn.Embedding(vocab_size, embedding_size)
        self.embedding_dropout = EmbeddingDropout(embedding_dropout)
        p = check_probability(owner, "dropout", dropout)
        self.dropout = LockedDropout(p) if locked_dropout else nn.Dropout(p)
        if blocks is None:
            sizes = [embedding_size] + [hidden_size] * num_layers
            layers = [Recurrent(make(cell, sizes[k], hidden_size, **cell_options)) for k in range(num_layers)]
        else:
            if embedding_size != hidden_size:
                fail(owner, "embedding_size", f"hidden_size {hidden_size} with blocks (residual blocks keep the "
                     "width)", str(embedding_size))
            if weight_drop:
                fail(owner, "weight_drop", "0 with blocks (DropConnect wraps plain layers)", repr(weight_drop))
            layers = xlstm_blocks(blocks, hidden_size, num_layers, **cell_options)
        self.decoder = nn.Linear(hidden_size, vocab_size)
        if init_range is not None:
            for parameter in [*self.embedding.parameters(), *self.decoder.parameters(),
                              *(p for layer in layers for p in layer.parameters())]:
                nn.init.uniform_(parameter, -init_range, init_range)
        if check_probability(owner, "weight_drop", weight_drop):
            layers = [WeightDrop(layer, weight_drop) for layer in layers]
        self.layers = nn.ModuleList(layers)
        if tie_weights:
            self.decoder.weight = self.embedding.weight
        self.tie_weights = tie_weights

    @property
    def vocab_size(self) -> int:
        return self.embedding.num_embeddings

    def _check_tokens(self, tokens: Tensor, dim: int) -> None:
        if not isinstance(tokens, Tensor) or tokens.dtype != torch.long or tokens.dim() != dim:
            shape = "(B, T)" if dim == 2 else "(B,)"
            got = f"{tokens.dtype} {tuple(tokens.shape)}" if isinstance(tokens, Tensor) else type(tokens).__name__
            fail("LanguageModel", "tokens", f"an int64 tensor {shape} of token ids", got, kind=TypeError)
        if tokens.numel() and not (0 <= int(tokens.min()) and int(tokens.max()) < self.vocab_size):
            fail("LanguageModel", "tokens", f"ids in [0, {self.vocab_size})",
                 f"ids from {int(tokens.min())} to {int(tokens.max())}")

    def _embed(self, tokens: Tensor) -> Tensor:
        return F.embedding(tokens, self.embedding_dropout(self.embedding.weight))

    def _hidden(self, tokens: Tensor, state: State | None) -> tuple[Tensor, Tensor, State]:
        """The last layer's output after dropout and before it (B, T, H), and the final states."""
        self._check_tokens(tokens, 2)
        state = [None] * len(self.layers) if state is None else state
        x = self.dropout(self._embed(tokens))                                  # (B, T, E)
        finals = []
        for layer, s in zip(self.layers, state):
            h, final = layer(x, s)                                              # (B, T, H)
            x = self.dropout(h)
            finals.append(final)
        return x, h, finals

    def _regularised(self, loss: Tensor, x: Tensor, h: Tensor) -> Tensor:
        if self.training and self.ar:
            loss = loss + self.ar * x.pow(2).mean()
        if self.training and self.tar and h.shape[1] > 1:
            loss = loss + self.tar * (h[:, 1:] - h[:, :-1]).pow(2).mean()
        return loss

    def forward(self, tokens: Tensor, state: State | None = None, *, targets: Tensor | None = None
                ) -> tuple[Tensor, State, Tensor | None]:
        x, h, finals = self._hidden(tokens, state)
        logits = self.decoder(x)                                                # (B, T, V)
        loss = None
        if targets is not None:
            loss = self._regularised(F.cross_entropy(logits.flatten(0, 1), targets.flatten()), x, h)
        return logits, finals, loss

    def loss(self, tokens: Tensor, targets: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """``forward(tokens, state, targets=targets)``'s loss and state without the logits: the
        output layer and the cross-entropy run as one node (:func:`~lstmkit.models.output.linear_cross_entropy`),
        which spares most of the memory passes over the (B * T, V) logits. The training step."""
        x, h, finals = self._hidden(tokens, state)
        if not isinstance(targets, Tensor) or targets.shape != tokens.shape:
            got = tuple(targets.shape) if isinstance(targets, Tensor) else type(targets).__name__
            fail("LanguageModel", "targets", f"a tensor shaped like tokens {tuple(tokens.shape)}", got)
        loss = linear_cross_entropy(x.flatten(0, 1), self.decoder.weight, self.decoder.bias, targets.flatten())
        return self._regularised(loss, x, h), finals

    def step(self, tokens: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """One token per stream: ``tokens`` (B,) -> ``(logits (B, V), state)``."""
        self._check_tokens(tokens, 1)
        state = [None] * len(self.layers) if state is None else state
        x = self._embed(tokens)                                                 # (B, E)
        new = []
        for layer, s in zip(self.layers, state):
            x, s = layer.step(x, s)                                             # (B, H)
            new.append(s)
        return self.decoder(x), new

    def extra_repr(self) -> str:
        return f"tie_weights={self.tie_weights}"
