"""Collections of series in long format (one row per series and time step), the convention of
statsforecast and neuralforecast: ``unique_id, ds, y`` plus covariate columns.

:func:`read_long` reads a CSV or Parquet file; :func:`to_panel` checks a frame and turns it into a
:class:`Panel` (one array per series), naming the series and the row of every problem: a missing
column, duplicate or missing time stamps, values that are not finite numbers.

Time stamps are integers (steps) or dates. Dates become steps through their period ordinal in the
frame's frequency (``freq``, a pandas alias such as ``"MS"`` or ``"D"``, inferred when not given),
so that step numbers, and phase features made from them, agree across series: month 7 of any year
has the same phase in every monthly series.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["Panel", "read_long", "to_panel", "period_freq", "ID", "TIME", "TARGET"]

ID, TIME, TARGET = "unique_id", "ds", "y"


@dataclass
class Panel:
    """Series of a long frame, in the frame's order of first appearance.

    ``y[i]`` (T_i,) float64 values; ``steps[i]`` (T_i,) int64 consecutive step numbers; ``ds[i]``
    the time stamps as given; ``hist[i]`` (T_i, P) past-only covariates; ``futr[i]`` (T_i, F)
    known-future covariates; ``static[name][i]`` each static column's value (a string)."""

    ids: list[str]
    y: list[np.ndarray]
    steps: list[np.ndarray]
    ds: list[np.ndarray]
    hist: list[np.ndarray]
    futr: list[np.ndarray]
    static: dict[str, list[str]] = field(default_factory=dict)
    freq: str | None = None                   # the pandas frequency of date stamps (None: integer steps)

    def __len__(self) -> int:
        return len(self.ids)

    def index(self) -> dict[str, int]:
        return {uid: i for i, uid in enumerate(self.ids)}

    def statics(self, i: int) -> dict[str, str]:
        """Series ``i``'s static values, by column."""
        return {name: values[i] for name, values in self.static.items()}


def read_long(path: str | Path, what: str = "data file"):
    """A long-format frame from a ``.csv`` or ``.parquet`` file; a ``ValueError`` names the file."""
    import pandas as pd
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{what} {str(path)!r}: no such file")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if path.suffix.lower() == ".csv":
            return pd.read_csv(path)
    except Exception as error:          # the readers' own errors, with the file named
        raise ValueError(f"{what} {str(path)!r} could not be read: {error}") from None
    raise ValueError(f"{what} {str(path)!r}: expected a .csv or .parquet file in long format "
                     f"({ID}, {TIME}, {TARGET} and covariate columns)")


def _shown(value) -> str:
    """A cell's value as a user wrote it: ``inf``, ``'n/a'``, ``2001-08-01``."""
    if hasattr(value, "isoformat"):
        return str(value)
    return repr(value.item() if hasattr(value, "item") else value)


def _numeric(df, column: str, where: str, *, allow_missing: bool = False) -> np.ndarray:
    import pandas as pd
    values = pd.to_numeric(df[column], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if allow_missing:
        bad &= df[column].notna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{where}: column {column!r} expected finite numbers, got {_shown(df[column].iloc[row])} "
                         f"in series {df[ID].iloc[row]!r} at {TIME} {_shown(df[TIME].iloc[row])} (row {df.index[row]})")
    return values


def _steps(df, where: str, freq: str | None) -> tuple[np.ndarray, str | None]:
    """Integer steps of the ``ds`` column, and the frequency used for dates."""
    import pandas as pd
    ds = df[TIME]
    if pd.api.types.is_integer_dtype(ds):
        return ds.to_numpy(dtype=np.int64), None
    try:
        stamps = pd.to_datetime(ds)
    except (ValueError, TypeError) as error:
        raise ValueError(f"{where}: column {TIME!r} expected integers or dates, got {ds.iloc[0]!r} ({error})") from None
    if freq is None:                 # the first series (of the first 50) whose dates have a regular frequency
        for uid in df[ID].unique()[:50]:
            sample = stamps[df[ID] == uid].sort_values()
            freq = pd.infer_freq(sample) if len(sample) >= 3 else None
            if freq is not None:
                break
        else:
            raise ValueError(f"{where}: could not infer the frequency of the dates (series {df[ID].iloc[0]!r}...); "
                             "give it as data.freq (a pandas alias such as 'MS', 'QS', 'D', 'h')")
    try:
        return stamps.dt.to_period(period_freq(freq)).astype("int64").to_numpy(), freq
    except (ValueError, TypeError) as error:
        raise ValueError(f"{where}: data.freq {freq!r} is not a pandas frequency ({error})") from None


def period_freq(freq: str) -> str:
    """The period frequency of a date frequency: month, quarter and year starts (``MS``, ``QS``,
    ``YS``) count the same periods as their ends."""
    for start, period in (("MS", "M"), ("QS", "Q"), ("YS", "Y"), ("AS", "Y")):
        if freq.startswith(start):
            return period + freq[len(start):]
    return freq


def to_panel(df, *, where: str = "data", hist_exog: tuple[str, ...] = (), futr_exog: tuple[str, ...] = (),
             static: tuple[str, ...] = (), freq: str | None = None, target: bool = True) -> Panel:
    """The series of ``df`` (long format). Every column is the id, the time, the target (unless
    ``target`` is False: a frame of future covariates) or one of the declared covariates; an
    undeclared column is refused, so a column that would leak the future is never read by mistake."""
    import pandas as pd
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{where}: expected a pandas DataFrame in long format, got {type(df).__name__}")
    needed = [ID, TIME] + ([TARGET] if target else []) + list(hist_exog) + list(futr_exog) + list(static)
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise ValueError(f"{where}: missing column(s) {missing}; it has {list(df.columns)}")
    extra = [c for c in df.columns if c not in needed and not (not target and c == TARGET)]
    if extra:
        raise ValueError(f"{where}: column(s) {extra} are not declared: name each as a past-only covariate "
                         f"(data.hist_exog), a known-future one (data.futr_exog) or a static one (data.static), "
                         f"or drop it")
    if len(df) == 0:
        raise ValueError(f"{where}: no rows")
    df = df.reset_index(drop=True)
    if df[ID].isna().any():
        raise ValueError(f"{where}: column {ID!r} is empty at row {int(np.flatnonzero(df[ID].isna())[0])}")
    df = df.assign(**{ID: df[ID].astype(str)})
    steps, freq = _steps(df, where, freq)
    duplicated = pd.Series(list(zip(df[ID], steps))).duplicated()
    if duplicated.any():
        row = int(np.flatnonzero(duplicated)[0])
        raise ValueError(f"{where}: series {df[ID].iloc[row]!r} has {TIME} {_shown(df[TIME].iloc[row])} twice "
                         f"(row {row}); expected one row per series and time step")
    y = _numeric(df, TARGET, where) if target else np.zeros(len(df))
    hist = np.stack([_numeric(df, c, where) for c in hist_exog], 1) if hist_exog else np.zeros((len(df), 0))
    futr = np.stack([_numeric(df, c, where) for c in futr_exog], 1) if futr_exog else np.zeros((len(df), 0))
    order = np.lexsort((steps, pd.factorize(df[ID])[0]))
    codes, ids = pd.factorize(df[ID].to_numpy()[order])
    bounds = np.flatnonzero(np.diff(codes)) + 1
    panel = Panel(ids=[str(i) for i in ids], y=[], steps=[], ds=[], hist=[], futr=[],
                  static={name: [] for name in static}, freq=freq)
    for rows in np.split(order, bounds):
        uid = df[ID].iloc[rows[0]]
        gaps = np.flatnonzero(np.diff(steps[rows]) != 1)
        if len(gaps):
            before, after = df[TIME].iloc[rows[gaps[0]]], df[TIME].iloc[rows[gaps[0] + 1]]
            raise ValueError(f"{where}: series {uid!r} has missing time steps between {TIME} {_shown(before)} and "
                             f"{_shown(after)} (row {rows[gaps[0] + 1]}); expected consecutive steps")
        for name in static:
            values = df[name].iloc[rows].astype(str).unique()
            if len(values) > 1:
                raise ValueError(f"{where}: static column {name!r} of series {uid!r} changes over time "
                                 f"({list(values[:3])}); expected one value per series")
            panel.static[name].append(str(values[0]))
        panel.y.append(y[rows])
        panel.steps.append(steps[rows])
        panel.ds.append(df[TIME].to_numpy()[rows])
        panel.hist.append(hist[rows])
        panel.futr.append(futr[rows])
    return panel
