"""The forecaster's whole pipeline as an ONNX graph: inputs ``history`` (batch, window) float64,
the last ``window`` values of each series, and ``start`` (batch,) int64, the step index of the first
of them (the phase features read it; predict's ``start + len(history) - window``); output
``forecast`` (batch, horizon) float64. The preprocessing runs in float64, as predict's does. The
graph does not check the values (predict does: NaN, values outside the transform's domain)."""

from __future__ import annotations

import numpy as np

from ...export.api import forecaster_output
from ...export.graph import Graph
from .fitted import ForecastFitted

__all__ = ["forecast_graph"]


def forecast_graph(g: Graph, model, fitted: ForecastFitted) -> dict[str, str]:
    W, K = fitted.window, fitted.horizon
    DOUBLE, FLOAT = g.onnx.TensorProto.DOUBLE, g.onnx.TensorProto.FLOAT
    history = g.input("history", "DOUBLE", ["batch", W])
    start = g.input("start", "INT64", ["batch"])
    transform = fitted.transform
    values = history
    if transform == "sqrt":
        values = g.op("Sqrt", [values])
    elif transform == "log1p":
        values = g.op("Log", [g.op("Add", [values, g.const(1.0, "one", np.float64)])])
    mean, std = g.const(fitted.mean, "mean", np.float64), g.const(fitted.std, "std", np.float64)
    scaled = g.op("Cast", [g.op("Div", [g.op("Sub", [values, mean]), std])], to=FLOAT)          # (B, W)
    columns = [g.op("Unsqueeze", [scaled, g.const([2], "axis", np.int64)])]
    if fitted.periods:
        steps = g.const(np.arange(W), "steps", np.float64)
        t = g.op("Add", [g.op("Unsqueeze", [g.op("Cast", [start], to=DOUBLE), g.const([1], "axis", np.int64)]),
                         steps])                                                                 # (B, W)
        angle = g.op("Mul", [t, g.const(2 * np.pi, "two_pi", np.float64)])
        for period in fitted.periods:
            phase = g.op("Div", [angle, g.const(float(period), "period", np.float64)])
            for f in ("Sin", "Cos"):
                columns.append(g.op("Unsqueeze", [g.op("Cast", [g.op(f, [phase])], to=FLOAT),
                                                  g.const([2], "axis", np.int64)]))
    x = g.op("Concat", columns, axis=2) if len(columns) > 1 else columns[0]                    # (B, W, 1 + 2P)
    out = g.op("Add", [g.op("Mul", [g.op("Cast", [forecaster_output(g, model, x)], to=DOUBLE), std]), mean])
    if transform == "sqrt":
        positive = g.op("Max", [out, g.const(0.0, "zero", np.float64)])
        out = g.op("Mul", [positive, positive])
    elif transform == "log1p":
        out = g.op("Sub", [g.op("Exp", [out]), g.const(1.0, "one", np.float64)])
    g.output(out, "forecast", "DOUBLE", ["batch", K])
    return {"window": str(W), "horizon": str(K)}
