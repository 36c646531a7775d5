"""Scores of forecasts in the long format of statsforecast's cross-validation (``unique_id, ds,
cutoff, y`` and one column per method; intervals as ``METHOD-lo-80`` / ``METHOD-hi-80``, quantiles
as ``METHOD-q-0.1``), per series and fold, by utilsforecast's losses.

Point: sMAPE and MAPE in percent (sMAPE as the M3 and M4 competitions define it,
``200·|y - ŷ| / (|y| + |ŷ|)``), MASE and RMSSE against the in-sample seasonal-naive errors of the
history before each cut-off. Intervals: coverage and the M4's MSIS (the interval score of the 95%
interval scaled like MASE). Quantiles: the scaled CRPS approximated by the weighted quantile loss
over the quantile set (Rangapuram et al. 2021).
"""

from __future__ import annotations

import numpy as np

__all__ = ["interval_columns", "quantile_column", "score", "msis"]


def quantile_column(method: str, q: float) -> str:
    return f"{method}-q-{q:g}"


def interval_columns(method: str, level: int) -> tuple[str, str]:
    return f"{method}-lo-{level}", f"{method}-hi-{level}"


def msis(df, method: str, train_df, season: int, level: int = 95):
    """Per series and cut-off: the mean interval score of ``method``'s ``level``% interval
    (width, plus 2/α times how far the truth falls outside) over the in-sample mean absolute
    seasonal difference of the history up to the cut-off (Makridakis et al. 2020, the M4)."""
    import pandas as pd
    alpha = 1 - level / 100
    low, high = (df[c].to_numpy() for c in interval_columns(method, level))
    y = df["y"].to_numpy()
    score = (high - low) + 2 / alpha * (np.maximum(low - y, 0) + np.maximum(y - high, 0))
    scores = df[["unique_id", "cutoff"]].assign(score=score).groupby(["unique_id", "cutoff"], sort=False).mean()
    histories = {uid: (g["ds"].to_numpy(), g["y"].to_numpy())
                 for uid, g in train_df[train_df["unique_id"].isin(set(df["unique_id"]))].groupby("unique_id")}
    scale = {}
    for (uid, cutoff) in scores.index:
        ds, y = histories[uid]
        history = y[ds <= cutoff]
        scale[(uid, cutoff)] = np.mean(np.abs(history[season:] - history[:-season])) if len(history) > season else np.nan
    return scores["score"] / pd.Series(scale).reindex(scores.index)


def score(df, train_df, season: int, methods: list[str], *, levels: tuple[int, ...] = (),
          quantiles: list[float] = (), probabilistic: str | None = None):
    """One row per series and cut-off, one column per ``METRIC_METHOD`` (``smape_lstmkit``...):
    the point metrics of every method, and for ``probabilistic`` its coverage of each of
    ``levels``, the MSIS of its 95% interval and its scaled CRPS over ``quantiles``."""
    from utilsforecast import losses
    keys = ["unique_id", "cutoff"]
    parts = []
    for name, loss in (("smape", losses.smape), ("mape", losses.mape)):
        parts.append(loss(df, methods).set_index(keys).mul(200 if name == "smape" else 100).add_prefix(f"{name}_"))
    for name, loss in (("mase", losses.mase), ("rmsse", losses.rmsse)):
        parts.append(loss(df, methods, season, train_df).set_index(keys).add_prefix(f"{name}_"))
    if probabilistic is not None:
        p = probabilistic
        for level in levels:
            renamed = df.rename(columns=dict(zip(interval_columns(p, level), (f"{p}-lo-{level}", f"{p}-hi-{level}"))))
            parts.append(losses.coverage(renamed, [p], level).set_index(keys).mul(100)
                         .rename(columns={p: f"coverage{level}_{p}"}))
        if 95 in levels:
            parts.append(msis(df, p, train_df, season).rename(f"msis_{p}").to_frame())
        if quantiles:
            columns = {p: [quantile_column(p, q) for q in quantiles]}
            parts.append(losses.scaled_crps(df, columns, np.asarray(quantiles)).set_index(keys)
                         .rename(columns={p: f"crps_{p}"}))
    out = parts[0]
    for part in parts[1:]:
        out = out.join(part)
    return out.reset_index()
