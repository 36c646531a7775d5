"""The n-gram baseline of the language model task: Witten-Bell interpolation (Witten & Bell 1991;
Chen & Goodman 1998) over NLTK's n-gram counts and its Witten-Bell estimator.

NLTK's interpolation ends at the unigram relative frequency, which gives probability zero to a
vocabulary token never seen in training (a character that only the test split holds) and an
infinite cross-entropy. Here the recursion ends, as Chen & Goodman write it, at the uniform
distribution over the vocabulary: ``p1(w) = (c(w) + T / |V|) / (N + T)`` with ``T`` distinct tokens
among ``N`` training tokens. Every higher order is NLTK's ``alpha + gamma * p_lower``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["WittenBellNgrams"]


class WittenBellNgrams:
    """Counts of every n-gram up to ``max_order`` in a token stream (ints or strings), scored at
    every order 1..max_order in one pass (:meth:`bits`)."""

    def __init__(self, stream: Sequence, max_order: int, vocabulary_size: int):
        try:
            from nltk.lm import NgramCounter
            from nltk.lm.smoothing import WittenBell
            from nltk.util import everygrams
        except ImportError:
            raise ImportError("the n-gram baseline needs nltk, which is not installed: pip install 'lstmkit[train]' "
                              "(or set data.ngram_baseline: null)") from None
        if max_order < 1:
            raise ValueError(f"max_order: expected an order >= 1, got {max_order}")
        self.max_order = max_order
        self.counts = NgramCounter([everygrams(list(stream), max_len=max_order)])
        self.estimator = WittenBell(None, self.counts)
        unigrams = self.counts.unigrams
        self._total, self._types = unigrams.N(), len(unigrams)
        self._uniform = self._types / max(vocabulary_size, self._types)

    def _unigram(self, token) -> float:
        return (self.counts.unigrams[token] + self._uniform) / (self._total + self._types)

    def bits(self, stream: Sequence) -> np.ndarray:
        """``out[k - 1]``: the bits of ``stream[1:]`` under the order-k model, each token given the
        ones before it in ``stream`` (the first token is context only)."""
        stream = list(stream)
        out = np.zeros(self.max_order)
        levels = [self.counts[k] for k in range(2, self.max_order + 1)]     # order k: context (k-1 tokens) -> counts
        log2 = math.log2
        for t in range(1, len(stream)):
            token = stream[t]
            p = self._unigram(token)
            out[0] -= log2(p)
            for k in range(1, self.max_order):
                if k <= t:
                    context = tuple(stream[t - k:t])
                    if levels[k - 1].get(context):              # an unseen context leaves p as it is (gamma 1)
                        alpha, gamma = self.estimator.alpha_gamma(token, context)
                        p = alpha + gamma * p
                out[k] -= log2(p)
        return out
