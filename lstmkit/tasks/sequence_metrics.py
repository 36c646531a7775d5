"""Errors of predicted label sequences: label and string error rates (jiwer), and the word and
phoneme error rates of grapheme to phoneme over each word's pronunciations (rapidfuzz)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["label_errors", "pronunciation_errors"]


def label_errors(truth: list[list[str]], hypotheses: list[list[str]]) -> dict[str, float]:
    """The label error rate (jiwer's word error rate with each label a word: substitutions,
    deletions and insertions over the reference labels) and the string error rate."""
    import jiwer
    if not truth:
        return {"ler": float("nan"), "ser": float("nan"), "n": 0}
    measures = jiwer.process_words([" ".join(t) for t in truth], [" ".join(h) for h in hypotheses])
    return {"ler": measures.wer, "ser": float(np.mean([t != h for t, h in zip(truth, hypotheses)])), "n": len(truth),
            "substitutions": measures.substitutions, "deletions": measures.deletions,
            "insertions": measures.insertions}


def pronunciation_errors(references: list[list[list[str]]], hypotheses: list[list[str]]) -> dict[str, Any]:
    """Grapheme-to-phoneme errors of one hypothesis per word against the word's pronunciations:
    the word error rate, the share of words whose hypothesis equals none of them, and the phoneme
    error rate, the edit distance to the closest pronunciation summed over words, over those
    pronunciations' lengths."""
    from rapidfuzz.distance import Levenshtein
    if not references:
        return {"wer": float("nan"), "per": float("nan"), "words": 0}
    wrong = edits = length = 0
    for refs, hypothesis in zip(references, hypotheses):
        distance, closest = min((Levenshtein.distance(r, hypothesis), len(r)) for r in refs)
        wrong += distance > 0
        edits, length = edits + distance, length + closest
    return {"wer": wrong / len(references), "per": edits / length, "words": len(references)}
