"""Sequence tagging (many-to-many): one tag per word, by a recurrent network over the sentence
and a CRF or per-word softmax output (Huang, Xu & Yu 2015; Lample et al. 2016; Ma & Hovy 2016).

Shapes: B sentences, T words, L characters per word, K tags. ``words`` (B, T) int64 word ids
(0 padding), or (B, T, 2) with a row of the pretrained vectors per word; ``lengths`` (B,) the
words per sentence (>= 1); ``chars`` (B, T, L) and ``char_lengths`` (B, T) when the model has a
character encoder; ``tags`` (B, T) int64 gold tags (padding ignored).
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_positive_int, check_probability, fail
from ..layers import CRF, build_rnn, valid_steps
from .inputs import TokenEmbedding

__all__ = ["SequenceTagger", "OUTPUTS"]

OUTPUTS = ("crf", "softmax")


class SequenceTagger(nn.Module):
    """Words -> word embedding (+ pretrained vector, + character encoder: both optional) -> dropout ->
    recurrent network (bidirectional by default) -> dropout -> linear to K tag scores -> a
    linear-chain :class:`~lstmkit.layers.CRF` (``output="crf"``) or an independent softmax per
    word (``"softmax"``, the ablation that shows what the CRF adds).

    ``char_encoder``: a :class:`~lstmkit.models.CharCNN` or :class:`~lstmkit.models.CharRNN` (or
    None); ``allowed``: the CRF's allowed transitions (:func:`lstmkit.layers.allowed_transitions`),
    which a softmax output cannot enforce. ``word_dropout``, ``unk_index`` and ``word_vectors``
    as in :class:`TokenEmbedding`; ``feature_dropout`` on the recurrent network's input and output;
    ``rnn_options`` go to :func:`lstmkit.build_rnn`.

    ``forward`` returns ``(emissions (B, T, K), loss)``: the loss with ``tags`` (the CRF's
    negative log-likelihood per sentence, or the softmax's cross-entropy per word, averaged),
    else None. ``decode`` gives the best tags of each sentence (a list of its length) and
    ``marginals`` p(tag | sentence) per word (B, T, K).

    >>> model = SequenceTagger("lstm", 100, 16, 5, embedding_size=8)
    >>> words, lengths = torch.randint(1, 100, (2, 6)), torch.tensor([6, 4])
    >>> emissions, loss = model(words, lengths, targets=torch.randint(0, 5, (2, 6)))
    >>> emissions.shape, [len(p) for p in model.decode(words, lengths)]
    (torch.Size([2, 6, 5]), [6, 4])
    """

    def __init__(self, cell: str, vocab_size: int, hidden_size: int, num_tags: int, *, embedding_size: int = 100,
                 output: str = "crf", char_encoder: nn.Module | None = None,
                 allowed: tuple[Tensor, Tensor, Tensor] | None = None, feature_dropout: float = 0.0,
                 word_dropout: float = 0.0, unk_index: int = 1, word_vectors: Tensor | None = None,
                 bidirectional: bool = True, **rnn_options):
        super().__init__()
        owner = "SequenceTagger"
        check_positive_int(owner, "num_tags", num_tags)
        if output not in OUTPUTS:
            fail(owner, "output", f"one of {list(OUTPUTS)}", repr(output))
        if output == "softmax" and allowed is not None:
            fail(owner, "allowed", "None with a softmax output (only a CRF can forbid transitions)", "masks")
        self.embedding = TokenEmbedding(vocab_size, embedding_size, word_dropout=word_dropout, unk_index=unk_index,
                                        word_vectors=word_vectors)
        self.char_encoder = char_encoder
        features = self.embedding.output_size + (char_encoder.output_size if char_encoder is not None else 0)
        self.dropout = nn.Dropout(check_probability(owner, "feature_dropout", feature_dropout))
        self.rnn = build_rnn(cell, features, hidden_size, bidirectional=bidirectional, **rnn_options)
        if self.rnn.output_size is None:
            fail(owner, "merge", "a merge mode with a known output size", repr(rnn_options.get("merge")))
        self.project = nn.Linear(self.rnn.output_size, num_tags)
        self.output = output
        self.crf = CRF(num_tags, allowed=allowed) if output == "crf" else None

    @property
    def num_tags(self) -> int:
        return self.project.out_features

    def forward(self, words: Tensor, lengths: Tensor, *, chars: Tensor | None = None,
                char_lengths: Tensor | None = None, targets: Tensor | None = None,
                tags: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        if tags is not None:
            warnings.warn("SequenceTagger(..., tags=) is now targets=, as in every lstmkit model; the old name goes "
                          "in lstmkit 0.3", DeprecationWarning, stacklevel=2)
            targets = tags
        x = self.embedding(words)                                                # (B, T, E [+ D])
        if self.char_encoder is not None:
            if chars is None or char_lengths is None:
                fail("SequenceTagger", "chars", "the characters of every word (the model has a character encoder)",
                     "None")
            x = torch.cat([x, self.char_encoder(chars, char_lengths)], -1)      # (B, T, E + C)
        y, _ = self.rnn(self.dropout(x), lengths=lengths)                       # (B, T, O)
        emissions = self.project(self.dropout(y))                               # (B, T, K)
        if targets is None:
            return emissions, None
        if self.crf is not None:
            return emissions, self.crf(emissions, targets, lengths)
        valid = valid_steps(lengths, targets.shape[1])
        return emissions, F.cross_entropy(emissions[valid], targets[valid])

    @torch.no_grad()
    def decode(self, words: Tensor, lengths: Tensor, **chars) -> list[list[int]]:
        """The best tags of each sentence: Viterbi under the CRF, the argmax per word under a softmax."""
        return self.best_tags(self(words, lengths, **chars)[0], lengths)

    @torch.no_grad()
    def marginals(self, words: Tensor, lengths: Tensor, **chars) -> Tensor:
        """p(tag of word t = k | sentence), (B, T, K), zero past each length."""
        return self.probabilities(self(words, lengths, **chars)[0], lengths)

    @torch.no_grad()
    def best_tags(self, emissions: Tensor, lengths: Tensor) -> list[list[int]]:
        """:meth:`decode` from the emissions ``forward`` returned."""
        if self.crf is not None:
            return self.crf.decode(emissions, lengths)[0]
        best = emissions.argmax(-1).tolist()
        return [row[:n] for row, n in zip(best, lengths.tolist())]

    @torch.no_grad()
    def probabilities(self, emissions: Tensor, lengths: Tensor) -> Tensor:
        """:meth:`marginals` from the emissions ``forward`` returned."""
        if self.crf is not None:
            return self.crf.marginals(emissions, lengths)
        return emissions.softmax(-1) * valid_steps(lengths, emissions.shape[1])[..., None]
