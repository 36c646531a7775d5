"""The time-series tasks' whole pipelines as ONNX graphs: the task's preprocessing constants
(scalers, transforms, phase features) around the model, answering what ``lstmkit predict``
answers. Each task's :meth:`~lstmkit.train.tasks.Task.export_graph` calls its builder here.

- ``classify``: inputs ``x`` (batch, time, features) float32, the raw features padded, and
  ``lengths`` (batch,) int64; outputs ``probabilities`` (batch, classes) and ``label`` (batch,),
  an index into the metadata's ``classes`` (JSON).
- ``forecast``: inputs ``history`` (batch, window) float64, the last ``window`` values of each
  series, and ``start`` (batch,) int64, the step index of the first of them (the phase features
  read it; predict's ``start + len(history) - window``); output ``forecast`` (batch, horizon)
  float64. The preprocessing runs in float64, as predict's does.
- ``anomaly``: input ``values`` (points,) float64, one series of more than ``window`` points;
  outputs ``scores`` (points,) float64 (0 for the first ``window`` points: each later point's
  squared one-step prediction error, smoothed by a trailing mean over ``smooth`` points) and
  ``anomalies``, the indices of the points scored above the threshold (in the metadata).

The graphs do not check the values (predict does: NaN, values outside the transform's domain).
"""

from __future__ import annotations

import json

import numpy as np

from .api import classifier_logits, forecast
from .graph import Graph
from .lengths import lengths_input

__all__ = ["classify_graph", "forecast_graph", "anomaly_graph"]


def classify_graph(g: Graph, model, meta: dict) -> dict[str, str]:
    raw = g.input("x", "FLOAT", ["batch", "time", meta["features"]])
    lens = lengths_input(g)
    x = g.op("Div", [g.op("Sub", [raw, g.const(meta["mean"], "mean")]), g.const(meta["std"], "std")])
    logits = classifier_logits(g, model, x, lens)
    C = len(meta["classes"])
    g.output(g.op("Softmax", [logits], axis=1), "probabilities", "FLOAT", ["batch", C])
    g.output(g.op("ArgMax", [logits], axis=1, keepdims=0), "label", "INT64", ["batch"])
    return {"classes": json.dumps(meta["classes"])}


def forecast_graph(g: Graph, model, meta: dict) -> dict[str, str]:
    W, K = meta["window"], meta["horizon"]
    DOUBLE, FLOAT = g.onnx.TensorProto.DOUBLE, g.onnx.TensorProto.FLOAT
    history = g.input("history", "DOUBLE", ["batch", W])
    start = g.input("start", "INT64", ["batch"])
    transform = meta.get("transform", "none")
    values = history
    if transform == "sqrt":
        values = g.op("Sqrt", [values])
    elif transform == "log1p":
        values = g.op("Log", [g.op("Add", [values, g.const(1.0, "one", np.float64)])])
    mean, std = g.const(meta["mean"], "mean", np.float64), g.const(meta["std"], "std", np.float64)
    scaled = g.op("Cast", [g.op("Div", [g.op("Sub", [values, mean]), std])], to=FLOAT)          # (B, W)
    columns = [g.op("Unsqueeze", [scaled, g.const([2], "axis", np.int64)])]
    if meta["periods"]:
        steps = g.const(np.arange(W), "steps", np.float64)
        t = g.op("Add", [g.op("Unsqueeze", [g.op("Cast", [start], to=DOUBLE), g.const([1], "axis", np.int64)]),
                         steps])                                                                 # (B, W)
        angle = g.op("Mul", [t, g.const(2 * np.pi, "two_pi", np.float64)])
        for period in meta["periods"]:
            phase = g.op("Div", [angle, g.const(float(period), "period", np.float64)])
            for f in ("Sin", "Cos"):
                columns.append(g.op("Unsqueeze", [g.op("Cast", [g.op(f, [phase])], to=FLOAT),
                                                  g.const([2], "axis", np.int64)]))
    x = g.op("Concat", columns, axis=2) if len(columns) > 1 else columns[0]                    # (B, W, 1 + 2P)
    out = g.op("Add", [g.op("Mul", [g.op("Cast", [forecast(g, model, x)], to=DOUBLE), std]), mean])
    if transform == "sqrt":
        positive = g.op("Max", [out, g.const(0.0, "zero", np.float64)])
        out = g.op("Mul", [positive, positive])
    elif transform == "log1p":
        out = g.op("Sub", [g.op("Exp", [out]), g.const(1.0, "one", np.float64)])
    g.output(out, "forecast", "DOUBLE", ["batch", K])
    return {"window": str(W), "horizon": str(K)}


def anomaly_graph(g: Graph, model, meta: dict) -> dict[str, str]:
    W, S = meta["window"], meta["smooth"]
    DOUBLE, FLOAT = g.onnx.TensorProto.DOUBLE, g.onnx.TensorProto.FLOAT
    zero64, one64 = g.const(0, "zero", np.int64), g.const(1, "one", np.int64)
    values = g.input("values", "DOUBLE", ["points"])
    scaled = g.op("Div", [g.op("Sub", [values, g.const(meta["mean"], "mean", np.float64)]),
                          g.const(meta["std"], "std", np.float64)])                           # (N,)
    N = g.op("Gather", [g.op("Shape", [values]), zero64], axis=0)
    M = g.op("Sub", [N, g.const(W, "window", np.int64)])                                      # windows
    index = g.op("Add", [g.op("Unsqueeze", [g.op("Range", [zero64, M, one64]), g.const([1], "axis", np.int64)]),
                         g.const(np.arange(W)[None, :], "steps", np.int64)])                  # (M, W)
    windows = g.op("Unsqueeze", [g.op("Gather", [g.op("Cast", [scaled], to=FLOAT), index], axis=0),
                                 g.const([2], "axis", np.int64)])                             # (M, W, 1)
    predicted = g.op("Squeeze", [g.op("Cast", [forecast(g, model, windows)], to=DOUBLE),
                                 g.const([1], "axis", np.int64)])                             # (M,)
    later = g.op("Slice", [scaled, g.const([W], "start", np.int64), g.const([2 ** 62], "end", np.int64)])
    error = g.op("Sub", [predicted, later])
    errors = g.op("Concat", [g.const(np.zeros(W), "first", np.float64), g.op("Mul", [error, error])], axis=0)
    # the trailing moving average of S errors, from cumulative sums
    total = g.op("CumSum", [errors, zero64])
    before = g.op("Slice", [g.op("Concat", [g.const(np.zeros(S), "pad", np.float64), total], axis=0),
                            g.const([0], "start", np.int64), g.op("Unsqueeze", [N, g.const([0], "axis", np.int64)])])
    smoothed = g.op("Div", [g.op("Sub", [total, before]), g.const(float(S), "smooth", np.float64)])
    scored = g.op("Cast", [g.op("GreaterOrEqual", [g.op("Range", [zero64, N, one64]),
                                                   g.const(W, "window", np.int64)])], to=DOUBLE)
    scores = g.op("Mul", [smoothed, scored])                                                  # 0 for the first W
    g.output(scores, "scores", "DOUBLE", ["points"])
    flagged = g.op("NonZero", [g.op("Greater", [scores, g.const(meta["threshold"], "threshold", np.float64)])])
    g.output(g.op("Reshape", [flagged, g.const([-1], "shape", np.int64)]), "anomalies", "INT64", ["anomalies"])
    return {"threshold": repr(meta["threshold"]), "window": str(W)}

