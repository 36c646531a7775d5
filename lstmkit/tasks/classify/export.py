"""The classifier's whole pipeline as an ONNX graph: inputs ``x`` (batch, time, features) float32,
the raw features padded, and ``lengths`` (batch,) int64; outputs ``probabilities`` (batch, classes)
and ``label`` (batch,), an index into the metadata's ``classes`` (JSON). The graph does not check
the values (predict does)."""

from __future__ import annotations

import json

from ...export.api import classifier_logits
from ...export.graph import Graph
from ...export.lengths import lengths_input
from .fitted import ClassifierFitted

__all__ = ["classify_graph"]


def classify_graph(g: Graph, model, fitted: ClassifierFitted) -> dict[str, str]:
    raw = g.input("x", "FLOAT", ["batch", "time", fitted.features])
    lens = lengths_input(g)
    x = g.op("Div", [g.op("Sub", [raw, g.const(fitted.mean, "mean")]), g.const(fitted.std, "std")])
    logits = classifier_logits(g, model, x, lens)
    C = len(fitted.classes)
    g.output(g.op("Softmax", [logits], axis=1), "probabilities", "FLOAT", ["batch", C])
    g.output(g.op("ArgMax", [logits], axis=1, keepdims=0), "label", "INT64", ["batch"])
    return {"classes": json.dumps(fitted.classes)}
