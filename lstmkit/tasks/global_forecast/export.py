"""The global forecaster's whole pipeline as an ONNX graph, from the raw values to the quantiles.

Inputs (``batch`` series): ``history`` (batch, window) float64, each series' last values left-aligned
(``lengths`` (batch,) int64 of them are read, the rest is padding); for a run that reads whole
histories (``data.context: whole``) ``history`` is (batch, time), each series' whole history, and
``window`` below stands for ``time``; ``start`` (batch,) int64, the
step of ``history[:, 0]``; ``group`` (batch,) int64, the index of the series' group in the metadata's
``groups``; ``static`` (batch, S) int64, the codes of its static categories (1 + the index in the
metadata's ``static`` lists, 0 for an unseen one) when the run has any; ``hist_exog`` (batch, window, P)
and ``futr_exog`` (batch, window + horizon, F) float64 when it has covariates (the known-future ones
over the history and the horizon after it). Outputs: ``quantiles`` (batch, horizon, Q) float64 and
``forecast`` (batch, horizon), the median. The scaling and the features run in float64 as
``predict``'s do; the graph does not check the values (``predict`` does)."""

from __future__ import annotations

import json

import numpy as np
import torch

from ...export.api import linear, pool
from ...export.graph import ExportError, Graph
from ...export.recurrent import layer
from ...models import GlobalForecaster
from .fitted import GlobalFitted

__all__ = ["global_forecast_graph"]


def global_forecast_graph(g: Graph, model: GlobalForecaster, fitted: GlobalFitted) -> dict[str, str]:
    if model.distribution in ("student_t", "negative_binomial"):
        raise ExportError(f"export: a {model.distribution} run's quantiles are read from random draws, which the "
                          "graph does not make; export a run with quantile or normal outputs")
    if model.decoder == "autoregressive":
        raise ExportError("export: an autoregressive run's quantiles are read from sample paths, which the graph "
                          "does not draw; export a run with decoder direct")
    W, K = fitted.window, fitted.horizon
    whole = fitted.context == "whole"
    DOUBLE, FLOAT = g.onnx.TensorProto.DOUBLE, g.onnx.TensorProto.FLOAT
    c = lambda value, hint, dtype=np.float64: g.const(value, hint, dtype)           # noqa: E731
    axis1, axis2 = c([1], "axis", np.int64), c([2], "axis", np.int64)
    # the steps read: W (a window, left-aligned) or every step of the longest history (whole)
    history = g.input("history", "DOUBLE", ["batch", "time" if whole else W])
    lens = g.input("lengths", "INT64", ["batch"])
    start = g.input("start", "INT64", ["batch"])
    group = g.input("group", "INT64", ["batch"])
    if whole:
        read = g.op("Slice", [g.op("Shape", [history]), c([1], "start", np.int64), c([2], "end", np.int64)])  # [T]
        steps = g.op("Range", [c(0, "zero", np.int64), g.op("Squeeze", [read, c([0], "axis", np.int64)]),
                               c(1, "one", np.int64)])                                          # (T,)
    else:
        read, steps = c([W], "window", np.int64), c(np.arange(W), "steps", np.int64)             # (W,)
    lens_col = g.op("Unsqueeze", [lens, axis1])                                                 # (B, 1)
    # the steps that scale a history: all it reads (window), or its first `anchor` (whole)
    scaled_end = g.op("Min", [lens_col, c([[fitted.anchor]], "anchor", np.int64)]) if whole else lens_col
    scaling = g.op("Cast", [g.op("Less", [steps, scaled_end])], to=DOUBLE)                       # (B, T)
    count = g.op("Cast", [scaled_end], to=DOUBLE)
    seasons = g.op("Gather", [c([s for _, s in fitted.groups.values()], "seasons", np.int64), group], axis=0)
    season_col = g.op("Unsqueeze", [seasons, axis1])                                            # (B, 1)
    # s: the mean absolute value of the scaling steps (1 if they are all zeros)
    s = g.op("Div", [g.reduce("ReduceSum", g.op("Mul", [g.op("Abs", [history]), scaling]), 1, keepdims=1), count])
    s = g.op("Where", [g.op("Greater", [s, c(0.0, "zero")]), s, c(1.0, "one")])                  # (B, 1)
    if fitted.scaling == "log":
        u = g.op("Log", [g.op("Add", [g.op("Div", [history, s]), c(1.0, "one")])])
        last_season = g.op("GreaterOrEqual", [steps, g.op("Sub", [scaled_end, season_col])])
        recent = g.op("Mul", [scaling, g.op("Cast", [last_season], to=DOUBLE)])                # their last season
        level = g.op("Div", [g.reduce("ReduceSum", g.op("Mul", [u, recent]), 1, keepdims=1),
                             g.reduce("ReduceSum", recent, 1, keepdims=1)])
        z = g.op("Sub", [u, level])
    else:
        level, z = c(0.0, "zero"), g.op("Div", [history, s])

    def phase(t: str) -> list[str]:
        """sin and cos of the phase of steps ``t`` (B, N) int64 in each row's season."""
        angle = g.op("Div", [g.op("Mul", [g.op("Cast", [g.op("Mod", [t, season_col])], to=DOUBLE), c(2 * np.pi, "two_pi")]),
                             g.op("Cast", [season_col], to=DOUBLE)])
        return [g.op("Unsqueeze", [g.op(f, [angle]), axis2]) for f in ("Sin", "Cos")]

    def standardised(x: str, first: int, n: int) -> str:
        mean, std = np.asarray(fitted.exog_mean[first:first + n]), np.asarray(fitted.exog_std[first:first + n])
        return g.op("Div", [g.op("Sub", [x, c(mean, "exog_mean")]), c(std, "exog_std")])

    start_col = g.op("Unsqueeze", [start, axis1])
    columns = [g.op("Unsqueeze", [z, axis2])] + phase(g.op("Add", [start_col, steps]))          # (B, W, 1) each
    P, F = len(fitted.hist_exog), len(fitted.futr_exog)
    future_columns = phase(g.op("Add", [g.op("Add", [start_col, lens_col]), c(np.arange(K), "ahead", np.int64)]))
    if P:
        columns.append(standardised(g.input("hist_exog", "DOUBLE", ["batch", "time" if whole else W, P]), 0, P))
    if F:
        futr = standardised(g.input("futr_exog", "DOUBLE", ["batch", "time_ahead" if whole else W + K, F]), P, F)
        columns.append(g.op("Slice", [futr, c([0], "start", np.int64), read, axis1]))            # (B, T, F)
        ahead = g.op("Add", [lens_col, c(np.arange(K), "ahead", np.int64)])                      # (B, K)
        index = g.op("Expand", [g.op("Unsqueeze", [ahead, axis2]), g.op("Concat", [g.op("Shape", [ahead]),
                                                                                   c([F], "width", np.int64)], axis=0)])
        future_columns.append(g.op("GatherElements", [futr, index], axis=1))                    # (B, K, F)
    x = g.op("Cast", [g.op("Concat", columns, axis=2)], to=FLOAT)                               # (B, W, I)
    codes = []
    if model.embeddings:
        static = g.input("static", "INT64", ["batch", len(model.embeddings)])
        for j, embedding in enumerate(model.embeddings):
            column = g.op("Gather", [static, c(j, "column", np.int64)], axis=1)                  # (B,)
            codes.append(g.op("Gather", [c(embedding.weight.detach().numpy().astype(np.float32), "embedding",
                                           np.float32), column], axis=0))                       # (B, E)
        embedded = g.op("Concat", codes, axis=1)
        repeat = g.op("Concat", [c([1], "one", np.int64), read, c([1], "one", np.int64)], axis=0)
        x = g.op("Concat", [x, g.op("Tile", [g.op("Unsqueeze", [embedded, axis1]), repeat])], axis=2)
    lens32 = g.op("Cast", [lens], to=g.onnx.TensorProto.INT32)
    y, _ = layer(g, model.rnn, g.op("Transpose", [x], perm=[1, 0, 2]), lens32)                 # (W, B, O)
    summary = [pool(g, y, lens32, "last", model.split, None)] + codes
    if model.future_size:
        future = g.op("Cast", [g.op("Concat", future_columns, axis=2)], to=FLOAT)               # (B, K, Fk)
        summary.append(g.op("Reshape", [future, c([0, K * model.future_size], "flat", np.int64)]))
    raw = g.op("Reshape", [linear(g, g.op("Concat", summary, axis=1), model.head, "head"),
                           c([0, K, -1], "shape", np.int64)])                                   # (B, K, P or Q)
    levels = np.asarray(fitted.quantiles)
    if model.distribution is None:
        centre = model.centre
        edges = lambda a, b: g.op("Slice", [raw, c([a], "start", np.int64), c([b], "end", np.int64), axis2])  # noqa
        q = edges(centre, centre + 1)
        last_axis = c(2, "axis", np.int64)
        above = g.op("Add", [q, g.op("CumSum", [g.op("Softplus", [edges(centre + 1, len(levels))]), last_axis])])
        below = g.op("Sub", [q, g.op("CumSum", [g.op("Softplus", [edges(0, centre)]), last_axis], reverse=1)])
        z_out = g.op("Concat", [below, q, above], axis=2)
    else:                                                                                       # normal: its quantiles
        loc = g.op("Slice", [raw, c([0], "start", np.int64), c([1], "end", np.int64), axis2])
        scale = g.op("Add", [g.op("Softplus", [g.op("Slice", [raw, c([1], "start", np.int64), c([2], "end", np.int64),
                                                               axis2])]), c(1e-6, "eps", np.float32)])
        z_out = g.op("Add", [loc, g.op("Mul", [scale, c(torch.special.ndtri(torch.tensor(levels)).numpy().astype(np.float32), "ndtri", np.float32)])])
    z_out = g.op("Cast", [z_out], to=DOUBLE)
    s3, l3 = g.op("Unsqueeze", [s, axis2]), (g.op("Unsqueeze", [level, axis2]) if fitted.scaling == "log" else level)
    if fitted.scaling == "log":
        out = g.op("Mul", [s3, g.op("Sub", [g.op("Exp", [g.op("Add", [z_out, l3])]), c(1.0, "one")])])
    else:
        out = g.op("Mul", [s3, z_out])
    g.output(out, "quantiles", "DOUBLE", ["batch", K, len(levels)])
    median = g.op("Gather", [out, c(list(levels).index(0.5), "median", np.int64)], axis=2)
    g.output(median, "forecast", "DOUBLE", ["batch", K])
    return {"context": fitted.context, "window": str(W), "anchor": str(fitted.anchor), "horizon": str(K),
            "quantiles": json.dumps(list(levels)),
            "groups": json.dumps(list(fitted.groups)), "static": json.dumps(fitted.static),
            "hist_exog": json.dumps(fitted.hist_exog), "futr_exog": json.dumps(fitted.futr_exog)}
