"""The tagger as an ONNX graph: inputs ``words`` (batch, time) int64 (or (batch, time, 2) with word
vectors), ``lengths``, and with a character encoder ``chars`` (batch, time, letters) int64 and
``char_lengths`` (batch, time); outputs ``tags`` (batch, time) int64 (the best tags: Viterbi under
a CRF, else each word's argmax; -1 past each length), ``confidence`` (batch, time), the marginal
probability of each chosen tag, and ``marginals`` (batch, time, tags). The metadata carries the
vocabularies and the tokenizing rules."""

from __future__ import annotations

import numpy as np
from torch import nn

from ...export import crf
from ...export.api import embed, ids_input, linear, metadata_json
from ...export.graph import ExportError, Graph
from ...export.lengths import lengths_input, valid_steps
from ...export.recurrent import layer
from ...models import CharCNN, CharRNN, SequenceTagger
from .fitted import TaggerFitted

__all__ = ["tagger_graph"]


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


def tagger_graph(g: Graph, model: SequenceTagger, fitted: TaggerFitted) -> dict[str, str]:
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
    stored = {key: value for key, value in fitted.to_dict().items() if value is not None}
    return metadata_json(stored, "tags", "vocab", "chars", "lowercase", "digits_to_zero", "max_word_length", "scheme",
                 "word_vectors")
