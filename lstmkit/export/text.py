"""The text tasks' pipelines as ONNX graphs. A graph starts from token ids: tokenizing is string
work that ONNX has no operators for, so the metadata carries what a caller needs to make the
ids as ``lstmkit predict`` does (the vocabulary, where id k is ``vocab[k - 2]``, 1 is unknown and
0 padding, or the language model's own numbering, and the tokenizing rules).

- ``sentiment``: inputs ``ids`` (batch, time) int64 (with pretrained word vectors (batch, time, 2):
  each token's id and its row in the vectors, see :mod:`lstmkit.data.word_vectors`) and
  ``lengths``; outputs ``probabilities`` (batch, classes) and ``label`` (batch,).
- ``language_model``: inputs ``tokens`` (batch, time) int64 and each layer's state ``state_K_J``
  (zeros to start); outputs ``log_probs`` (batch, time, vocabulary) of the next token and the
  final states ``final_K_J``, to feed back for the tokens that follow.
- ``tagging``: inputs ``words`` (batch, time) int64 (or (batch, time, 2) with word vectors),
  ``lengths``, and with a character encoder ``chars`` (batch, time, letters) int64 and
  ``char_lengths`` (batch, time); outputs ``tags`` (batch, time) int64 (the best tags: Viterbi
  under a CRF, else each word's argmax; -1 past each length), ``confidence`` (batch, time), the
  marginal probability of each chosen tag, and ``marginals`` (batch, time, tags).
"""

from __future__ import annotations

import json

import numpy as np
from torch import nn

from ..models import CharCNN, CharRNN, LanguageModel, SequenceClassifier, SequenceTagger
from . import crf
from .api import classifier_logits, embed, ids_input, language_model, linear, state_outputs
from .graph import ExportError, Graph
from .lengths import lengths_input, valid_steps
from .recurrent import layer

__all__ = ["sentiment_graph", "language_model_graph", "tagger_graph"]


def _json(meta: dict, *keys: str) -> dict[str, str]:
    return {key: json.dumps(meta[key]) for key in keys if key in meta}


def sentiment_graph(g: Graph, model: SequenceClassifier, meta: dict) -> dict[str, str]:
    ids = ids_input(g, "ids", model.embedding, ["batch", "time"])
    logits = classifier_logits(g, model, ids, lengths_input(g))
    C = len(meta["classes"])
    g.output(g.op("Softmax", [logits], axis=1), "probabilities", "FLOAT", ["batch", C])
    g.output(g.op("ArgMax", [logits], axis=1, keepdims=0), "label", "INT64", ["batch"])
    tokenizer = {"lowercase": True, "token_pattern": meta["token_pattern"], "max_length": meta["max_length"]}
    return {**_json(meta, "classes", "vocab", "word_vectors"), "tokenizer": json.dumps(tokenizer)}


def language_model_graph(g: Graph, model: LanguageModel, meta: dict) -> dict[str, str]:
    logits, finals = language_model(g, model)
    g.output(g.op("LogSoftmax", [logits], axis=2), "log_probs", "FLOAT", ["batch", "time", len(meta["vocab"])])
    state_outputs(g, finals)
    return {**_json(meta, "vocab", "level"), "ids": json.dumps("vocab index; a text starts after vocab[0], the "
                                                               "end of a sentence; vocab[1] is unknown")}


def _char_features(g: Graph, encoder: nn.Module, chars: str, char_lengths: str) -> str:
    """The character encoder's word vectors (B, T, C) for ``chars`` (B, T, L)."""
    shape = g.op("Shape", [chars])
    letters = g.op("Slice", [shape, g.const([2], "start", np.int64), g.const([3], "end", np.int64)])
    flat = g.op("Reshape", [chars, g.op("Concat", [g.const([-1], "words", np.int64), letters], axis=0)])   # (N, L)
    lengths = g.op("Cast", [g.op("Reshape", [char_lengths, g.const([-1], "words", np.int64)])],
                   to=g.onnx.TensorProto.INT32)                                                         # (N,)
    x = g.op("Transpose", [embed(g, encoder.embed, flat)], perm=[1, 0, 2])                              # (L, N, E)
    valid = valid_steps(g, x, lengths)                                                                 # (L, N, 1)
    if isinstance(encoder, CharCNN):
        conv = encoder.conv
        h = g.op("Conv", [g.op("Transpose", [g.op("Mul", [x, valid])], perm=[1, 2, 0]),                 # (N, E, L)
                          g.const(conv.weight.detach().cpu().numpy(), "conv_weight"),
                          g.const(conv.bias.detach().cpu().numpy(), "conv_bias")],
                 pads=[conv.padding[0]] * 2)                                                            # (N, C, L)
        inside = g.op("Cast", [g.op("Transpose", [valid], perm=[1, 2, 0])], to=g.onnx.TensorProto.BOOL)  # (N, 1, L)
        out = g.reduce("ReduceMax", g.op("Where", [inside, h, g.const(-np.inf, "minus_inf")]), 2)       # (N, C)
    elif isinstance(encoder, CharRNN):
        one = g.const(1, "one", np.int32)
        at_least_one = g.op("Max", [lengths, one])                  # an empty (padding) word is zeroed below
        y, _ = layer(g, encoder.rnn, x, at_least_one)                                                   # (L, N, 2H)
        H = encoder.hidden_size
        last = g.op("Unsqueeze", [g.op("Cast", [g.op("Sub", [at_least_one, one])], to=g.onnx.TensorProto.INT64),
                                  g.const([1], "axis", np.int64)])                                      # (N, 1)
        after_last = g.op("GatherND", [g.op("Transpose", [y], perm=[1, 0, 2]), last], batch_dims=1)      # (N, 2H)
        after_first = g.op("Gather", [y, g.const(0, "zero", np.int64)], axis=0)
        axis = g.const([1], "axis", np.int64)
        out = g.op("Concat", [g.op("Slice", [after_last, g.const([0], "start", np.int64), g.const([H], "end", np.int64),
                                             axis]),
                              g.op("Slice", [after_first, g.const([H], "start", np.int64),
                                             g.const([2 * H], "end", np.int64), axis])], axis=1)
    else:
        raise ExportError(f"export: the character encoder {type(encoder).__name__} has no ONNX export "
                          "(CharCNN and CharRNN do)")
    empty = g.op("Unsqueeze", [g.op("Equal", [lengths, g.const(0, "zero", np.int32)]), g.const([1], "axis", np.int64)])
    out = g.op("Where", [empty, g.const(0.0, "zero"), out])                                            # (N, C)
    words = g.op("Slice", [shape, g.const([0], "start", np.int64), g.const([2], "end", np.int64)])
    return g.op("Reshape", [out, g.op("Concat", [words, g.const([-1], "features", np.int64)], axis=0)])


def tagger_graph(g: Graph, model: SequenceTagger, meta: dict) -> dict[str, str]:
    words = ids_input(g, "words", model.embedding, ["batch", "time"])
    lens = lengths_input(g)
    x = embed(g, model.embedding, words)                                                   # (B, T, E [+ D])
    if model.char_encoder is not None:
        chars = g.input("chars", "INT64", ["batch", "time", "letters"])
        char_lengths = g.input("char_lengths", "INT64", ["batch", "time"])
        x = g.op("Concat", [x, _char_features(g, model.char_encoder, chars, char_lengths)], axis=2)
    y, _ = layer(g, model.rnn, g.op("Transpose", [x], perm=[1, 0, 2]), lens)               # (T, B, O)
    emissions = linear(g, y, model.project, "project")                                     # (T, B, K)
    mask = valid_steps(g, emissions, lens)                                                 # (T, B, 1)
    steps = g.op("Squeeze", [mask, g.const([2], "axis", np.int64)])                        # (T, B)
    if model.crf is not None:
        tags, _ = crf.viterbi(g, model.crf, emissions, lens)
        marginals = crf.marginals(g, model.crf, emissions, lens)
    else:
        valid = g.op("Cast", [steps], to=g.onnx.TensorProto.BOOL)
        tags = g.op("Where", [valid, g.op("ArgMax", [emissions], axis=2, keepdims=0), g.const(-1, "padding", np.int64)])
        marginals = g.op("Mul", [g.op("Softmax", [emissions], axis=2), mask])
    axis = g.const([2], "axis", np.int64)
    chosen = g.op("Unsqueeze", [g.op("Max", [tags, g.const(0, "zero", np.int64)]), axis])  # padding reads tag 0...
    confidence = g.op("Mul", [g.op("Squeeze", [g.op("GatherElements", [marginals, chosen], axis=2), axis]), steps])
    g.output(g.op("Transpose", [tags], perm=[1, 0]), "tags", "INT64", ["batch", "time"])
    g.output(g.op("Transpose", [confidence], perm=[1, 0]), "confidence", "FLOAT", ["batch", "time"])  # ...and is 0
    g.output(g.op("Transpose", [marginals], perm=[1, 0, 2]), "marginals", "FLOAT", ["batch", "time", model.num_tags])
    return _json(meta, "tags", "vocab", "chars", "lowercase", "digits_to_zero", "max_word_length", "scheme",
                 "word_vectors")
