"""Decoding CTC outputs: best path (greedy) and prefix beam search, whole or chunk by chunk.

Both read log-probabilities (T, L + 1) per sequence, the blank at index 0, and give label
sequences (tuples of ids 1..L) with scores:

- :func:`best_path`: the most probable frame labels, repeats merged and blanks removed; its
  score is the log-probability of that one alignment.
- :func:`prefix_beam_search` (Graves 2012, §7.5; Hannun et al. 2014): ``beam`` label prefixes
  kept frame by frame, each with its probability summed over every alignment that ends in a
  blank and in a label; its score is log p(labels | x) over the alignments the beam kept, plus,
  with a ``scorer`` (an external language model: shallow fusion), ``lm_weight`` times the
  scorer's log-probability of each label and ``insertion_bonus`` per label.

The streaming classes, :class:`GreedyStream` and :class:`BeamStream`, take the frames chunk by
chunk; the functions are one chunk of them, so the two give the same result by construction.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from .._checks import check_positive_int, fail
from .ctc import BLANK

__all__ = ["best_path", "prefix_beam_search", "GreedyStream", "BeamStream", "Scorer", "collapse"]

#: An external label model: ``scorer(prefix, label)`` is log p(label | prefix).
Scorer = Callable[[tuple[int, ...], int], float]

_NEG = -math.inf


def _sequences(log_probs: Tensor, lengths: Tensor | None, owner: str) -> list[np.ndarray]:
    if not isinstance(log_probs, Tensor) or log_probs.dim() != 3 or log_probs.shape[2] < 2:
        fail(owner, "log_probs", "a (batch, frames, labels + 1) tensor",
             f"shape {tuple(log_probs.shape)}" if isinstance(log_probs, Tensor) else type(log_probs).__name__,
             kind=TypeError)
    B, T, _ = log_probs.shape
    if lengths is None:
        lengths = torch.full((B,), T, dtype=torch.long)
    if not isinstance(lengths, Tensor) or lengths.shape != (B,):
        fail(owner, "lengths", f"a ({B},) tensor", tuple(lengths.shape) if isinstance(lengths, Tensor) else lengths)
    if B and (int(lengths.min()) < 0 or int(lengths.max()) > T):
        fail(owner, "lengths", f"values in [0, {T}]", lengths.tolist())
    values = log_probs.detach().double().cpu().numpy()
    return [values[b, :n] for b, n in enumerate(lengths.tolist())]


class GreedyStream:
    """Best-path decoding of one sequence, chunk by chunk: :meth:`push` a chunk's log-probs
    (t, L + 1), read :attr:`labels` and :attr:`score` at any time."""

    def __init__(self):
        self.labels: list[int] = []
        self.score = 0.0
        self._last = BLANK

    def push(self, log_probs: np.ndarray) -> list[int]:
        """Take the next frames; returns the labels they completed."""
        best = log_probs.argmax(-1)
        self.score += float(log_probs[np.arange(len(best)), best].sum())
        new = []
        for label in best.tolist():
            if label != BLANK and label != self._last:
                new.append(label)
            self._last = label
        self.labels += new
        return new


def best_path(log_probs: Tensor, lengths: Tensor | None = None) -> tuple[list[tuple[int, ...]], Tensor]:
    """The best path of each sequence of ``log_probs`` (B, T, L + 1), collapsed: ``(labels, scores)``
    with ``labels[b]`` a tuple and ``scores`` (B,) the log-probability of each path."""
    labels, scores = [], []
    for values in _sequences(log_probs, lengths, "best_path"):
        stream = GreedyStream()
        stream.push(values)
        labels.append(tuple(stream.labels))
        scores.append(stream.score)
    return labels, torch.tensor(scores, dtype=torch.float64)


def _add(a: float, b: float) -> float:
    """log(exp(a) + exp(b))."""
    if a == _NEG:
        return b
    if b == _NEG:
        return a
    return max(a, b) + math.log1p(math.exp(-abs(a - b)))


class BeamStream:
    """Prefix beam search over one sequence, chunk by chunk: :meth:`push` a chunk's log-probs
    (t, L + 1); :meth:`hypotheses` gives the n best ``(labels, score)`` at any time, best first.

    ``prune``: at each frame, labels less probable than this are not tried (0 tries every one:
    exact within the beam). ``scorer``, ``lm_weight``, ``insertion_bonus``: shallow fusion, as
    in the module's description.
    """

    def __init__(self, beam: int = 8, *, prune: float = 0.0, scorer: Scorer | None = None, lm_weight: float = 0.0,
                 insertion_bonus: float = 0.0):
        self.beam = check_positive_int("prefix_beam_search", "beam", beam)
        if not (isinstance(prune, (int, float)) and 0.0 <= prune < 1.0):
            fail("prefix_beam_search", "prune", "a probability in [0, 1)", repr(prune))
        if scorer is not None and not callable(scorer):
            fail("prefix_beam_search", "scorer", "a callable scorer(prefix, label) -> log-probability",
                 type(scorer).__name__, kind=TypeError)
        self.threshold = math.log(prune) if prune > 0 else _NEG
        self.scorer, self.lm_weight, self.insertion_bonus = scorer, float(lm_weight), float(insertion_bonus)
        # prefix -> [log p(ends in blank), log p(ends in a label), the language model's score so far]
        self.prefixes: dict[tuple[int, ...], list[float]] = {(): [0.0, _NEG, 0.0]}

    def _extension(self, prefix: tuple[int, ...], label: int) -> float:
        if self.scorer is None:
            return self.insertion_bonus
        return self.lm_weight * float(self.scorer(prefix, label)) + self.insertion_bonus

    def push(self, log_probs: np.ndarray) -> None:
        for frame in log_probs:
            frame = frame.tolist()
            blank = frame[BLANK]
            tried = [k for k, p in enumerate(frame) if k != BLANK and p >= self.threshold]
            step: dict[tuple[int, ...], list[float]] = {}
            for prefix, (p_blank, p_label, lm) in self.prefixes.items():
                total = _add(p_blank, p_label)
                entry = step.setdefault(prefix, [_NEG, _NEG, lm])
                entry[0] = _add(entry[0], total + blank)                       # a blank: the prefix stays
                last = prefix[-1] if prefix else None
                if last is not None:                                           # its last label again: merged
                    entry[1] = _add(entry[1], p_label + frame[last])
                for k in tried:
                    longer = prefix + (k,)
                    new = step.get(longer)
                    if new is None:
                        new = step[longer] = [_NEG, _NEG, lm + self._extension(prefix, k)]
                    # a repeat is a new label only after a blank
                    new[1] = _add(new[1], (p_blank if k == last else total) + frame[k])
            ranked = sorted(step.items(), key=lambda item: -(_add(item[1][0], item[1][1]) + item[1][2]))
            self.prefixes = dict(ranked[:self.beam])

    def hypotheses(self, n: int = 1) -> list[tuple[tuple[int, ...], float]]:
        """The ``n`` best label sequences so far with their scores, best first."""
        scored = [(prefix, _add(p_blank, p_label) + lm) for prefix, (p_blank, p_label, lm) in self.prefixes.items()]
        return sorted(scored, key=lambda item: -item[1])[:n]


def prefix_beam_search(log_probs: Tensor, lengths: Tensor | None = None, *, beam: int = 8, n_best: int = 1,
                       prune: float = 0.0, scorer: Scorer | None = None, lm_weight: float = 0.0,
                       insertion_bonus: float = 0.0) -> list[list[tuple[tuple[int, ...], float]]]:
    """The ``n_best`` label sequences of each sequence of ``log_probs`` (B, T, L + 1), best first,
    each ``(labels, score)``; options as :class:`BeamStream`'s."""
    check_positive_int("prefix_beam_search", "beam", beam)
    check_positive_int("prefix_beam_search", "n_best", n_best)
    if n_best > beam:
        fail("prefix_beam_search", "n_best", f"at most the beam ({beam})", n_best)
    out = []
    for values in _sequences(log_probs, lengths, "prefix_beam_search"):
        stream = BeamStream(beam, prune=prune, scorer=scorer, lm_weight=lm_weight, insertion_bonus=insertion_bonus)
        stream.push(values)
        out.append(stream.hypotheses(n_best))
    return out


def collapse(path: Sequence[int]) -> tuple[int, ...]:
    """The labels of a frame-level path: repeats merged, then blanks removed."""
    out, last = [], None
    for label in path:
        if label != last and label != BLANK:
            out.append(label)
        last = label
    return tuple(out)
