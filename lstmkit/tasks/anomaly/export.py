"""The anomaly detector's whole pipeline as an ONNX graph: input ``values`` (points,) float64, one
series of more than ``window`` points; outputs ``scores`` (points,) float64 (0 for the first
``window`` points: each later point's squared one-step prediction error, smoothed by a trailing
mean over ``smooth`` points) and ``anomalies``, the indices of the points scored above the
threshold (in the metadata)."""

from __future__ import annotations

import numpy as np

from ...export.api import forecaster_output
from ...export.graph import Graph
from .fitted import AnomalyFitted

__all__ = ["anomaly_graph"]


def anomaly_graph(g: Graph, model, fitted: AnomalyFitted) -> dict[str, str]:
    W, S = fitted.window, fitted.smooth
    DOUBLE, FLOAT = g.onnx.TensorProto.DOUBLE, g.onnx.TensorProto.FLOAT
    zero64, one64 = g.const(0, "zero", np.int64), g.const(1, "one", np.int64)
    values = g.input("values", "DOUBLE", ["points"])
    scaled = g.op("Div", [g.op("Sub", [values, g.const(fitted.mean, "mean", np.float64)]),
                          g.const(fitted.std, "std", np.float64)])                           # (N,)
    N = g.op("Gather", [g.op("Shape", [values]), zero64], axis=0)
    M = g.op("Sub", [N, g.const(W, "window", np.int64)])                                      # windows
    index = g.op("Add", [g.op("Unsqueeze", [g.op("Range", [zero64, M, one64]), g.const([1], "axis", np.int64)]),
                         g.const(np.arange(W)[None, :], "steps", np.int64)])                  # (M, W)
    windows = g.op("Unsqueeze", [g.op("Gather", [g.op("Cast", [scaled], to=FLOAT), index], axis=0),
                                 g.const([2], "axis", np.int64)])                             # (M, W, 1)
    predicted = g.op("Squeeze", [g.op("Cast", [forecaster_output(g, model, windows)], to=DOUBLE),
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
    flagged = g.op("NonZero", [g.op("Greater", [scores, g.const(fitted.threshold, "threshold", np.float64)])])
    g.output(g.op("Reshape", [flagged, g.const([-1], "shape", np.int64)]), "anomalies", "INT64", ["anomalies"])
    return {"threshold": repr(fitted.threshold), "window": str(W)}
