"""Baselines no one here wrote the model of, on the seq2seq task's own split:

- grapheme to phoneme: the nearest spelling, each test word pronounced as the training word at
  the smallest edit distance (rapidfuzz; ties to the more frequent in the dictionary's order);
- translation: copying the source, and word-by-word translation with an IBM Model 1 dictionary
  (NLTK's ``IBMModel1``, trained on the training verses): each source word becomes its most
  probable target word, capitalised where the source word is, an unknown word stays as it is,
  and the words are detokenised (NLTK's Treebank detokenizer: no space before punctuation), so
  that the case-sensitive metrics score the words rather than their casing and spacing.
"""

from __future__ import annotations

import re
from collections import defaultdict

import numpy as np

__all__ = ["nearest_spelling", "ibm1_word_by_word", "words"]

_WORD = re.compile(r"\w+|[^\w\s]")


def words(text: str) -> list[str]:
    """Lower-cased words and punctuation marks."""
    return _WORD.findall(text.lower())


def nearest_spelling(train: list[tuple[str, list[str]]], queries: list[str], *, chunk: int = 256) -> list[list[str]]:
    """The pronunciation of the training word nearest to each query's spelling."""
    from rapidfuzz.distance import Levenshtein
    from rapidfuzz.process import cdist
    spellings = [w for w, _ in train]
    out = []
    for start in range(0, len(queries), chunk):
        distances = cdist(queries[start:start + chunk], spellings, scorer=Levenshtein.distance, dtype=np.int32,
                          workers=-1)
        out += [train[int(i)][1] for i in distances.argmin(1)]
    return out


def ibm1_word_by_word(train: list[tuple[str, str]], sources: list[str], *, iterations: int = 5) -> list[str]:
    """Each source translated word by word with an IBM Model 1 dictionary learnt from ``train``
    (source, target) pairs."""
    from nltk.tokenize.treebank import TreebankWordDetokenizer
    from nltk.translate import AlignedSent, IBMModel1
    bitext = [AlignedSent(words(target), words(source)) for source, target in train]
    table = IBMModel1(bitext, iterations).translation_table              # table[target][source] = p(t | s)
    best: dict[str, tuple[float, str]] = defaultdict(lambda: (-1.0, ""))
    for target, row in table.items():
        if target is None:
            continue
        for source, p in row.items():
            if p > best[source][0]:
                best[source] = (p, target)
    detokenizer = TreebankWordDetokenizer()

    def translated(word: str) -> str:
        found = best[word.lower()][1] if word.lower() in best else word
        return found[:1].upper() + found[1:] if word[:1].isupper() else found

    return [detokenizer.detokenize([translated(w) for w in _WORD.findall(source)]) for source in sources]
