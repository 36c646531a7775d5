"""The sentiment classifier as an ONNX graph, from token ids (tokenizing is string work that ONNX
has no operators for, so the metadata carries the vocabulary, where id k is ``vocab[k - 2]``, 1 is
unknown and 0 padding, and the tokenizing rules): inputs ``ids`` (batch, time) int64 (with
pretrained word vectors (batch, time, 2): each token's id and its row in the vectors, see
:mod:`lstmkit.data.word_vectors`) and ``lengths``; outputs ``probabilities`` (batch, classes) and
``label`` (batch,)."""

from __future__ import annotations

import json

from ...export.api import classifier_logits, ids_input, metadata_json
from ...export.graph import Graph
from ...export.lengths import lengths_input
from ...models import SequenceClassifier
from .fitted import TextFitted

__all__ = ["sentiment_graph"]


def sentiment_graph(g: Graph, model: SequenceClassifier, fitted: TextFitted) -> dict[str, str]:
    ids = ids_input(g, "ids", model.embedding, ["batch", "time"])
    logits = classifier_logits(g, model, ids, lengths_input(g))
    C = len(fitted.classes)
    g.output(g.op("Softmax", [logits], axis=1), "probabilities", "FLOAT", ["batch", C])
    g.output(g.op("ArgMax", [logits], axis=1, keepdims=0), "label", "INT64", ["batch"])
    tokenizer = {"lowercase": True, "token_pattern": fitted.token_pattern, "max_length": fitted.max_length}
    stored = {key: value for key, value in fitted.to_dict().items() if value is not None}
    return {**metadata_json(stored, "classes", "vocab", "word_vectors"), "tokenizer": json.dumps(tokenizer)}
