"""Verse-aligned Bibles for translation: the King James Version and the Reina-Valera 1909.

| corpus | source (package) | size | licence |
|---|---|---|---|
| ``bible`` | SWORD modules ``engKJV2006eb`` (Debian ``sword-text-kjv``) and ``spaRV1909eb`` (``sword-text-sparv``), dumped with ``mod2imp`` (``libsword-utils``) | 31,084 verses in both, in 66 books (18 of the KJV's 31,102 are empty in the Reina-Valera module) | public domain (both texts) |

The KJV's paragraph marks (``¶``) and the Reina-Valera's Strong's numbers (``<H1234>``,
``<G1234>``) are removed. The split is by whole books, so test verses are unseen text: in the
canonical order, books 6, 17, 28, ... (every eleventh from the sixth: Joshua, Esther, Hosea,
Malachi, Philippians, II Peter; 1,241 verses) are the test set, books 11, 22, 33, ... validate (I
Kings, Song of Solomon, Micah, Acts, II Timothy, Revelation; 2,531 verses), the other 54 books
train (27,312 verses).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from functools import lru_cache

from .datasets import MissingDataPackage

__all__ = ["MODULES", "read_module", "verse_pairs", "bible_split"]

MODULES = {"en": "engKJV2006eb", "es": "spaRV1909eb"}
_PACKAGES = {"en": "sword-text-kjv", "es": "sword-text-sparv"}
_HEADER = re.compile(r"^\$\$\$(.+) (\d+):(\d+)$")
_MARKUP = re.compile(r"<[GH]\d+>|¶")


@lru_cache(maxsize=2)
def read_module(language: str) -> tuple[tuple[str, int, int, str], ...]:
    """Every verse of the language's Bible, in canonical order: ``(book, chapter, verse, text)``."""
    if language not in MODULES:
        raise ValueError(f"read_module: argument 'language' expected one of {sorted(MODULES)}, got {language!r}")
    install = f"apt-get install libsword-utils {_PACKAGES[language]} (the README's set-up does this)"
    if shutil.which("mod2imp") is None:
        raise MissingDataPackage(f"dataset 'bible' is read with mod2imp, which is not installed: {install}")
    done = subprocess.run(["mod2imp", MODULES[language], "-s"], capture_output=True, text=True)
    if done.returncode != 0 or "$$$" not in done.stdout:
        raise MissingDataPackage(f"dataset 'bible': the SWORD module {MODULES[language]} could not be read "
                                 f"({done.stderr.strip()[:200] or 'no verses'}): {install}")
    verses, current, lines = [], None, []

    def flush():
        if current is not None and current[1] > 0 and current[2] > 0:
            text = " ".join(" ".join(_MARKUP.sub(" ", line).split()) for line in lines).strip()
            text = re.sub(r"\s+([,.;:?!])", r"\1", " ".join(text.split()))
            if text:
                verses.append((*current, text))

    for line in done.stdout.splitlines():
        if line.startswith("$$$"):
            flush()
            match = _HEADER.match(line.strip())
            current = (match.group(1), int(match.group(2)), int(match.group(3))) if match else None
            lines = []
        elif current is not None:
            lines.append(line)
    flush()
    return tuple(verses)


@lru_cache(maxsize=1)
def verse_pairs() -> tuple[tuple[str, int, int, str, str], ...]:
    """The verses present in both: ``(book, chapter, verse, english, spanish)``, canonical order."""
    spanish = {(b, c, v): t for b, c, v, t in read_module("es")}
    return tuple((b, c, v, t, spanish[(b, c, v)]) for b, c, v, t in read_module("en") if (b, c, v) in spanish)


def bible_split() -> dict[str, tuple[str, ...]]:
    """The books of each split (train, valid, test), in canonical order."""
    books = list(dict.fromkeys(b for b, *_ in verse_pairs()))
    test = tuple(b for k, b in enumerate(books) if k % 11 == 5)
    valid = tuple(b for k, b in enumerate(books) if k % 11 == 10)
    train = tuple(b for b in books if b not in test and b not in valid)
    return {"train": train, "valid": valid, "test": test}
