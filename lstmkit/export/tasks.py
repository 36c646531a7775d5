"""A trained run's whole pipeline as one ONNX graph: the task's preprocessing constants (scalers,
transforms, phase features) around the model, answering what ``lstmkit predict`` answers.

- ``classify``: inputs ``x`` (batch, time, features) float32, the raw features padded, and
  ``lengths`` (batch,) int64; outputs ``probabilities`` (batch, classes) and ``label`` (batch,),
  an index into the metadata's ``classes`` (JSON).
- ``forecast``: inputs ``history`` (batch, window) float64, the last ``window`` values of each
  series, and ``start`` (batch,) int64, the step index of the first of them (the phase features
  read it; predict's ``start + len(history) - window``); output ``forecast`` (batch, horizon)
  float64. The preprocessing runs in float64, as predict's does.

The graphs do not check the values (predict does: NaN, values outside the transform's domain).
"""

from __future__ import annotations

import json

import numpy as np

from .api import classifier_logits, forecast
from .graph import Graph

__all__ = ["TASK_GRAPHS"]


def _classify(g: Graph, model, meta: dict) -> dict[str, str]:
    raw = g.input("x", "FLOAT", ["batch", "time", meta["features"]])
    lens = g.op("Cast", [g.input("lengths", "INT64", ["batch"])], to=g.onnx.TensorProto.INT32)
    x = g.op("Div", [g.op("Sub", [raw, g.const(meta["mean"], "mean")]), g.const(meta["std"], "std")])
    logits = classifier_logits(g, model, x, lens)
    C = len(meta["classes"])
    g.output(g.op("Softmax", [logits], axis=1), "probabilities", "FLOAT", ["batch", C])
    g.output(g.op("ArgMax", [logits], axis=1, keepdims=0), "label", "INT64", ["batch"])
    return {"classes": json.dumps(meta["classes"])}


def _forecast(g: Graph, model, meta: dict) -> dict[str, str]:
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


#: The tasks whose whole pipeline exports, by name: each builds its graph and returns metadata.
TASK_GRAPHS = {"classify": _classify, "forecast": _forecast}
