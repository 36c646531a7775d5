"""Sequence to sequence: an encoder over the source, a decoder that writes the target one token at
a time, with or without attention (Sutskever et al. 2014; Bahdanau et al. 2015; Luong et al. 2015).

Shapes: B sentences, S source tokens, T target tokens, V target vocabulary, H hidden units.
Ids: 0 is padding in both vocabularies; the target's 1 is the start (``BOS_ID``) and 2 the end
(``EOS_ID``) of a sentence, which every target ends with. The decoder's softmax is over ``EOS_ID`` and
the tokens after it: padding and ``BOS_ID`` are never written (their logits are -inf).

Decoding (:meth:`Seq2Seq.greedy`, :meth:`Seq2Seq.beam_search`, :meth:`Seq2Seq.sample`) runs the
decoder's streaming step from the carried state; beam search advances every beam of every
sentence as one batch.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_positive_int, check_probability, fail
from ..layers import build_rnn, reverse_padded, valid_steps
from .attention import ATTENTIONS, Attention
from .pooling import pool

__all__ = ["Seq2Seq", "Hypothesis", "BOS_ID", "EOS_ID", "LENGTH_PENALTIES"]

BOS_ID, EOS_ID = 1, 2         # ids; the language models' end of sentence is the token "<eos>" (lstmkit.data.text.EOS)


def __getattr__(name: str):
    if name in ("BOS", "EOS"):
        warnings.warn(f"lstmkit.models.seq2seq.{name} is now {name}_ID (an id; lstmkit.data.text.EOS is the token "
                      "'<eos>'); the old name goes in lstmkit 0.3", DeprecationWarning, stacklevel=2)
        return globals()[f"{name}_ID"]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _renamed(targets: Tensor | None, target: Tensor | None) -> Tensor:
    """``targets``, or the deprecated keyword ``target`` (every model's loss reads ``targets``)."""
    if target is not None:
        warnings.warn("Seq2Seq(..., target=) is now targets=, as in every lstmkit model; the old name goes in "
                      "lstmkit 0.3", DeprecationWarning, stacklevel=3)
        return target
    if targets is None:
        fail("Seq2Seq", "targets", "the target sentences' ids (B, T)", "None")
    return targets
LENGTH_PENALTIES = ("none", "normalize", "gnmt")


@dataclass
class Hypothesis:
    """A decoded target: its tokens (without ``EOS_ID``), its log-probability (``EOS_ID`` included, if
    it ended) and the score it is ranked by (the log-probability under the length penalty)."""

    tokens: list[int]
    log_prob: float
    score: float
    finished: bool = True


def _penalty(kind: str, alpha: float, length: int) -> float:
    """What a hypothesis' log-probability is divided by to rank it (``length`` counts ``EOS_ID``)."""
    if kind == "normalize":
        return float(length)
    if kind == "gnmt":                                   # Wu et al. 2016
        return ((5 + length) / 6) ** alpha
    return 1.0


class Seq2Seq(nn.Module):
    """Encoder: source embedding -> recurrent network (any registry cell; bidirectional, stacked,
    with lengths). Decoder: target embedding [+ the previous attentional vector: Luong's input
    feeding] -> forward recurrent layers (any cell, one streaming step per token) -> with
    ``attention`` ("additive", "dot", "general"), the context over the source and
    tanh(W [context; h]) (Luong et al.'s attentional vector), without ("none"), the top layer's
    output -> dropout -> linear to V logits. The decoder's initial state is tanh of a linear map
    of the source summary (the encoder's last output, its backward half at the first step);
    ``reverse_source`` reads the source backwards (Sutskever et al.).

    ``forward(source, source_lengths, targets)``: teacher forcing; returns ``(logits (B, T, V),
    loss)``, the cross-entropy over the target's tokens (with ``label_smoothing``).

    >>> model = Seq2Seq("lstm", 20, 15, 16, attention="general")
    >>> source, lengths = torch.randint(3, 20, (2, 6)), torch.tensor([6, 4])
    >>> target = torch.tensor([[5, 7, 2], [9, 2, 0]])
    >>> logits, loss = model(source, lengths, target)
    >>> logits.shape, [len(h[0].tokens) <= 10 for h in model.beam_search(source, lengths, beam=3, max_length=10)]
    (torch.Size([2, 3, 15]), [True, True])
    """

    def __init__(self, cell: str, source_vocab: int, target_vocab: int, hidden_size: int, *,
                 embedding_size: int | None = None, encoder_layers: int = 1, decoder_layers: int = 1,
                 bidirectional: bool = True, attention: str = "additive", input_feeding: bool = True,
                 reverse_source: bool = False, dropout: float = 0.0, label_smoothing: float = 0.0,
                 decoder_cell: str | None = None, **rnn_options):
        super().__init__()
        owner = "Seq2Seq"
        for name, value in (("source_vocab", source_vocab), ("target_vocab", target_vocab),
                            ("hidden_size", hidden_size), ("decoder_layers", decoder_layers)):
            check_positive_int(owner, name, value)
        if target_vocab <= EOS_ID:
            fail(owner, "target_vocab", f"more than {EOS_ID + 1} ids (padding, start and end come first)", target_vocab)
        if attention not in ("none", *ATTENTIONS):
            fail(owner, "attention", f"one of {['none', *ATTENTIONS]}", repr(attention))
        E = embedding_size or hidden_size
        self.attention_kind, self.input_feeding = attention, bool(input_feeding and attention != "none")
        self.reverse_source = bool(reverse_source)
        self.label_smoothing = check_probability(owner, "label_smoothing", label_smoothing)
        self.source_embedding = nn.Embedding(source_vocab, E, padding_idx=0)
        self.target_embedding = nn.Embedding(target_vocab, E, padding_idx=0)
        self.encoder = build_rnn(cell, E, hidden_size, num_layers=encoder_layers, bidirectional=bidirectional,
                                 dropout=dropout, **rnn_options)
        if self.encoder.output_size is None:
            fail(owner, "merge", "a merge mode with a known output size", repr(rnn_options.get("merge")))
        memory = self.encoder.output_size
        self._split = hidden_size if bidirectional and rnn_options.get("merge", "concat") == "concat" else None
        self.dropout = nn.Dropout(check_probability(owner, "dropout", dropout))
        H = hidden_size
        inputs = E + (H if self.input_feeding else 0)
        self.decoder = nn.ModuleList(build_rnn(decoder_cell or cell, inputs if k == 0 else H, H,
                                               **{k: v for k, v in rnn_options.items() if k != "merge"})
                                     for k in range(decoder_layers))
        self.bridge = nn.ModuleList(nn.Linear(memory, shape[0]) for layer in self.decoder
                                    for shape in layer.cell.state_shapes())
        if attention == "dot" and memory != H:
            fail(owner, "attention", f"'dot' with an encoder output as wide as the decoder ({H}): its score is a dot "
                 "product (a bidirectional encoder with merge 'sum' or 'ave' keeps the width; 'general' and "
                 "'additive' project it)", f"'dot' with an encoder output of {memory}")
        if attention != "none":
            self.attention = Attention(attention, H, memory)
            self.combine = nn.Linear(memory + H, H, bias=False)
        else:
            self.attention = None
        self.output = nn.Linear(H, target_vocab - EOS_ID)            # EOS_ID and the tokens after it

    # encoding ---------------------------------------------------------------------------
    def encode(self, source: Tensor, lengths: Tensor) -> tuple[tuple, list]:
        """``(memory prepared for attention, the decoder's initial state)`` of a source batch."""
        if not isinstance(source, Tensor) or source.dim() != 2 or source.dtype != torch.long:
            fail("Seq2Seq", "source", "an int64 tensor (batch, tokens)",
                 f"{source.dtype} {tuple(source.shape)}" if isinstance(source, Tensor) else type(source).__name__)
        if not isinstance(lengths, Tensor) or lengths.shape != source.shape[:1]:
            fail("Seq2Seq", "source_lengths", f"a ({source.shape[0]},) tensor",
                 tuple(lengths.shape) if isinstance(lengths, Tensor) else repr(lengths))
        if source.shape[0] and (int(lengths.min()) < 1 or int(lengths.max()) > source.shape[1]):
            fail("Seq2Seq", "source_lengths", f"values in [1, {source.shape[1]}] (an empty source has nothing to "
                 "translate)", lengths.tolist())
        if self.reverse_source:
            source = reverse_padded(source, lengths)
        memory, _ = self.encoder(self.dropout(self.source_embedding(source)), lengths=lengths)      # (B, S, M)
        summary = pool(memory, lengths, "last", split=self._split)                                 # (B, M)
        bridges = iter(self.bridge)
        state = [tuple(torch.tanh(next(bridges)(summary)) for _ in layer.cell.state_shapes())
                 for layer in self.decoder]
        valid = valid_steps(lengths, source.shape[1])
        prepared = self.attention.prepare(memory, valid) if self.attention is not None else (memory, None, valid)
        return prepared, state

    # one decoder step -------------------------------------------------------------------
    def _zero_feed(self, batch: int, like: Tensor) -> Tensor | None:
        return like.new_zeros(batch, self.output.in_features) if self.input_feeding else None

    @property
    def target_vocab(self) -> int:
        return self.output.out_features + EOS_ID

    def step(self, tokens: Tensor, state: list, feed: Tensor | None,
             prepared: tuple) -> tuple[Tensor, list, Tensor | None, Tensor | None]:
        """The logits (B, V) after ``tokens`` (B,), the new state and attentional vector, and the
        attention weights (B, S) (None without attention)."""
        x = self.dropout(self.target_embedding(tokens))
        if self.input_feeding:
            x = torch.cat([x, feed], -1)
        new_state = []
        for k, (layer, s) in enumerate(zip(self.decoder, state)):
            x, s = layer.step(self.dropout(x) if k else x, s)
            new_state.append(s)
        weights = None
        if self.attention is not None:
            context, weights = self.attention(x, prepared)
            x = torch.tanh(self.combine(torch.cat([context, x], -1)))
        scores = self.output(self.dropout(x))
        never = scores.new_full((scores.shape[0], EOS_ID), float("-inf"))           # padding and BOS_ID
        return torch.cat([never, scores], -1), new_state, x, weights

    def _teacher_forced(self, source: Tensor, source_lengths: Tensor, targets: Tensor) -> tuple[Tensor, list]:
        """The logits (B, T, V) of reading ``targets`` after the source, each step fed the true
        previous token, and the attention weights of each step (None without attention)."""
        if not isinstance(targets, Tensor) or targets.dim() != 2 or targets.shape[0] != source.shape[0] \
                or targets.dtype != torch.long:
            fail("Seq2Seq", "targets", f"an int64 tensor ({source.shape[0]}, tokens) ending with EOS_ID={EOS_ID}",
                 f"{targets.dtype} {tuple(targets.shape)}" if isinstance(targets, Tensor) else type(targets).__name__)
        if bool(((targets == BOS_ID) | ((targets == 0) & (targets.cumsum(1) == 0))).any()) or bool(
                ((targets < 0) | (targets >= self.target_vocab)).any()):
            fail("Seq2Seq", "targets", f"ids in [{EOS_ID}, {self.target_vocab}) padded with 0 after EOS_ID",
                 sorted(set(targets.flatten().tolist()))[:10])
        prepared, state = self.encode(source, source_lengths)
        B, T = targets.shape
        inputs = torch.cat([torch.full((B, 1), BOS_ID, dtype=torch.long), targets[:, :-1]], 1)       # shifted right
        feed, logits, weights = self._zero_feed(B, prepared[0]), [], []
        for t in range(T):
            out, state, feed, attended = self.step(inputs[:, t], state, feed, prepared)
            logits.append(out)
            weights.append(attended)
        return torch.stack(logits, 1), weights

    def forward(self, source: Tensor, source_lengths: Tensor, targets: Tensor | None = None, *,
                target: Tensor | None = None) -> tuple[Tensor, Tensor]:
        targets = _renamed(targets, target)
        logits, _ = self._teacher_forced(source, source_lengths, targets)                        # (B, T, V)
        # the softmax over the tokens that can be written; padding (now -EOS_ID) is ignored
        loss = F.cross_entropy(logits[..., EOS_ID:].flatten(0, 1), (targets - EOS_ID).flatten(), ignore_index=-EOS_ID,
                               label_smoothing=self.label_smoothing)
        return logits, loss

    @torch.no_grad()
    def score(self, source: Tensor, source_lengths: Tensor, targets: Tensor | None = None, *,
              target: Tensor | None = None) -> Tensor:
        """log p(targets | source) of each sentence (B,), ``targets`` padded with 0 after its ``EOS_ID``."""
        targets = _renamed(targets, target)
        logits, _ = self(source, source_lengths, targets)
        log_probs = logits.double().log_softmax(-1).gather(2, targets[..., None]).squeeze(2)
        return (log_probs * (targets != 0)).sum(1)

    @torch.no_grad()
    def attention_weights(self, source: Tensor, source_lengths: Tensor, target: Tensor) -> Tensor:
        """The attention weights (B, T, S) while reading ``target`` (teacher forcing)."""
        if self.attention is None:
            fail("Seq2Seq.attention_weights", "self", "a model with attention", "attention='none'")
        return torch.stack(self._teacher_forced(source, source_lengths, target)[1], 1)

    # decoding ---------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, source: Tensor, source_lengths: Tensor, *, max_length: int, temperature: float = 1.0,
               generator: torch.Generator | None = None) -> list[Hypothesis]:
        """One target per source, each token drawn from softmax(logits / temperature); 0: the
        most probable (greedy decoding)."""
        check_positive_int("Seq2Seq.sample", "max_length", max_length)
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature >= 0:
            fail("Seq2Seq.sample", "temperature", "a number >= 0 (0: the most probable token)", repr(temperature))
        self.eval()
        prepared, state = self.encode(source, source_lengths)
        B = source.shape[0]
        tokens, feed = torch.full((B,), BOS_ID, dtype=torch.long), self._zero_feed(B, prepared[0])
        out = [Hypothesis([], 0.0, 0.0, finished=False) for _ in range(B)]
        for _ in range(max_length):
            logits, state, feed, _ = self.step(tokens, state, feed, prepared)
            log_probs = logits.double().log_softmax(-1)
            if temperature == 0:
                tokens = log_probs.argmax(-1)
            else:
                tokens = torch.multinomial((log_probs / temperature).softmax(-1), 1, generator=generator).squeeze(1)
            for b, (hypothesis, token) in enumerate(zip(out, tokens.tolist())):
                if hypothesis.finished:
                    continue
                hypothesis.log_prob += float(log_probs[b, token])
                hypothesis.finished = token == EOS_ID
                if token != EOS_ID:
                    hypothesis.tokens.append(token)
            if all(h.finished for h in out):
                break
        for h in out:
            h.score = h.log_prob
        return out

    def greedy(self, source: Tensor, source_lengths: Tensor, *, max_length: int) -> list[Hypothesis]:
        """The most probable token at each step, per source."""
        return self.sample(source, source_lengths, max_length=max_length, temperature=0)

    @torch.no_grad()
    def beam_search(self, source: Tensor, source_lengths: Tensor, *, beam: int, max_length: int,
                    n_best: int = 1, length_penalty: str = "none", alpha: float = 0.6) -> list[list[Hypothesis]]:
        """The ``n_best`` targets of each source found by beam search, best first by score.

        Every beam of every sentence advances as one batch of B·beam rows; each step keeps the
        ``beam`` best continuations that do not end, and every one that ends among the best
        2·``beam``. A hypothesis ends at ``EOS_ID`` or after ``max_length`` tokens (then ``finished``
        is False); a sentence stops when none of its live beams can still rank above its
        ``n_best``-th ended hypothesis (a bound, not a count of ended ones: stopping at ``beam``
        ended hypotheses would return short, improbable ones while a far better beam is alive).
        ``length_penalty``: "none" ranks by log-probability, "normalize" by log-probability per
        token, "gnmt" by log-probability over ((5 + length) / 6) ** ``alpha`` (Wu et al. 2016).
        """
        owner = "Seq2Seq.beam_search"
        check_positive_int(owner, "beam", beam)
        check_positive_int(owner, "max_length", max_length)
        check_positive_int(owner, "n_best", n_best)
        if n_best > beam:
            fail(owner, "n_best", f"at most the beam ({beam})", n_best)
        if length_penalty not in LENGTH_PENALTIES:
            fail(owner, "length_penalty", f"one of {list(LENGTH_PENALTIES)}", repr(length_penalty))
        self.eval()
        prepared, state = self.encode(source, source_lengths)
        B, K = source.shape[0], beam
        rows = torch.arange(B).repeat_interleave(K)                                    # row -> sentence
        prepared = tuple(None if p is None else p[rows] for p in prepared)
        state = [tuple(s[rows] for s in layer) for layer in state]
        feed = self._zero_feed(B * K, prepared[0])
        # live beams: only the first of each sentence at the start (the others at -inf)
        scores = torch.full((B, K), -math.inf, dtype=torch.float64)
        scores[:, 0] = 0.0
        sequences = [[[] for _ in range(K)] for _ in range(B)]
        ended: list[list[Hypothesis]] = [[] for _ in range(B)]
        done = [False] * B
        tokens = torch.full((B * K,), BOS_ID, dtype=torch.long)
        for step in range(1, max_length + 1):
            logits, state, feed, _ = self.step(tokens, state, feed, prepared)
            V = logits.shape[-1]
            total = (scores.flatten()[:, None] + logits.double().log_softmax(-1)).view(B, K * V)
            top, index = total.topk(min(2 * K, K * V), dim=1)                    # room for K that do not end
            parents, words = index // V, index % V
            new_scores = torch.full((B, K), -math.inf, dtype=torch.float64)
            chosen = torch.zeros(B, K, dtype=torch.long)                         # each new beam's parent row
            next_tokens = torch.full((B, K), EOS_ID, dtype=torch.long)
            new_sequences = [[[] for _ in range(K)] for _ in range(B)]
            for b in range(B):
                if done[b]:
                    continue
                kept = 0
                for value, parent, word in zip(top[b].tolist(), parents[b].tolist(), words[b].tolist()):
                    if value == -math.inf or kept == K:
                        break
                    prefix = sequences[b][parent]
                    if word == EOS_ID:
                        ended[b].append(Hypothesis(list(prefix), value, value / _penalty(length_penalty, alpha, step)))
                        continue
                    new_scores[b, kept], chosen[b, kept], next_tokens[b, kept] = value, b * K + parent, word
                    new_sequences[b][kept] = prefix + [word]
                    kept += 1
                done[b] = self._finished(ended[b], new_scores[b], n_best, step, max_length, length_penalty, alpha)
            scores, sequences = new_scores, new_sequences
            if all(done):
                break
            index = chosen.flatten()
            state = [tuple(s[index] for s in layer) for layer in state]
            feed = feed[index] if feed is not None else None
            tokens = next_tokens.flatten()
        out = []
        for b in range(B):
            hypotheses = list(ended[b])
            if len(hypotheses) < n_best:                 # not ended within max_length: the live beams too
                hypotheses += [Hypothesis(sequences[b][k], float(scores[b, k]),
                                          float(scores[b, k]) / _penalty(length_penalty, alpha, len(sequences[b][k])),
                                          finished=False)
                               for k in range(K) if scores[b, k] > -math.inf]
            out.append(sorted(hypotheses, key=lambda h: -h.score)[:n_best])
        return out

    @staticmethod
    def _finished(ended: list[Hypothesis], live: Tensor, n_best: int, step: int, max_length: int, kind: str,
                  alpha: float) -> bool:
        """Whether a sentence's search can stop: no live beam, or ``n_best`` ended hypotheses that
        no live beam can still rank above (log-probabilities only fall; with a length penalty, the
        best a live beam can reach is bounded over the lengths still allowed)."""
        best_live = float(live.max())
        if best_live == -math.inf or step >= max_length:
            return True
        if len(ended) < n_best:
            return False
        kept = sorted((h.score for h in ended), reverse=True)[n_best - 1]
        if kind == "none":
            return best_live <= kept
        reach = max(best_live / _penalty(kind, alpha, n) for n in range(step + 1, max_length + 1))
        return reach <= kept
