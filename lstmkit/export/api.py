"""``to_onnx`` and ``export_run``: what a user calls; the graphs of layers and models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from torch import nn

from ..layers import Bidirectional, Recurrent, Stack, WeightDrop
from ..models import Ensemble, Forecaster, LanguageModel, SequenceClassifier
from ..models.inputs import TokenEmbedding
from ..runs import load_run, registry
from .graph import ExportError, Graph, _onnx
from .lengths import full_lengths, lengths_input, valid_steps
from .recurrent import layer, one_direction

__all__ = ["MIN_OPSET", "to_onnx", "export_run", "check", "embed", "linear", "classifier_logits", "forecaster_output",
           "ids_input", "language_model_logits", "state_outputs", "metadata_json", "pool"]

#: Squeeze and Unsqueeze with their axes as an input, and ReduceSum likewise, need opset 13;
#: 14 is the first with every attribute of LSTM, GRU and RNN that the export writes.
MIN_OPSET = 14


def linear(g: Graph, x: str, linear: nn.Linear, hint: str) -> str:
    """``linear`` over the last axis of ``x`` (any rank)."""
    weight = linear.weight.detach().cpu().numpy().astype(np.float32).T                    # (in, out)
    y = g.op("MatMul", [x, g.const(weight, f"{hint}_weight")])
    if linear.bias is not None:
        y = g.op("Add", [y, g.const(linear.bias.detach().cpu().numpy(), f"{hint}_bias")], hint=hint)
    return y


def pool(g: Graph, y: str, lens: str, how: str, split: int | None, attention: nn.Linear | None) -> str:
    """:func:`lstmkit.models.pooling.pool` over time-major ``y`` (T, B, O): (B, O)."""
    if how == "last":
        batch_major = g.op("Transpose", [y], perm=[1, 0, 2])                                # (B, T, O)
        last_step = g.op("Sub", [g.op("Cast", [lens], to=g.onnx.TensorProto.INT64), g.const(1, "one", np.int64)])
        index = g.op("Unsqueeze", [last_step, g.const([1], "axis", np.int64)])              # (B, 1)
        last = g.op("GatherND", [batch_major, index], batch_dims=1)                         # (B, O)
        if split is None:
            return last
        first = g.op("Gather", [y, g.const(0, "zero", np.int64)], axis=0)                   # (B, O)
        big, axis = g.const([2 ** 62], "end", np.int64), g.const([1], "axis", np.int64)
        at = g.const([split], "split", np.int64)
        return g.op("Concat", [g.op("Slice", [last, g.const([0], "start", np.int64), at, axis]),
                               g.op("Slice", [first, at, big, axis])], axis=1)
    mask = valid_steps(g, y, lens)                                                          # (T, B, 1)
    if how == "mean":
        total = g.reduce("ReduceSum", g.op("Mul", [y, mask]), 0)                          # (B, O)
        count = g.op("Unsqueeze", [g.op("Cast", [lens], to=g.onnx.TensorProto.FLOAT), g.const([1], "axis", np.int64)])
        return g.op("Div", [total, count])
    valid = g.op("Cast", [mask], to=g.onnx.TensorProto.BOOL)
    minus_inf = g.const(-np.inf, "minus_inf")
    if how == "max":
        return g.reduce("ReduceMax", g.op("Where", [valid, y, minus_inf]), 0)
    scores = linear(g, y, attention, "attention")                                          # (T, B, 1)
    weights = g.op("Softmax", [g.op("Where", [valid, scores, minus_inf])], axis=0)
    return g.reduce("ReduceSum", g.op("Mul", [weights, y]), 0)


def metadata_json(meta: dict, *keys: str) -> dict[str, str]:
    """The ``keys`` of a run's fitted set-up that it has, as the JSON strings ONNX metadata holds."""
    return {key: json.dumps(meta[key]) for key in keys if key in meta}


def _flatten(state) -> list[str]:
    if isinstance(state, str):
        return [state]
    return [name for part in state for name in _flatten(part)]


def state_shapes(module: nn.Module) -> list[list]:
    """The ONNX shape of each final state of ``module``'s recurrent layers, in the order of
    ``_flatten`` (a matrix memory's state has more axes than a width)."""
    layers = [m for m in module.modules() if isinstance(m, Recurrent)]
    return [["batch", *shape] for layer in layers for shape in layer.cell.state_shapes()]


def check(module: nn.Module, opset: int) -> None:
    newest = _onnx().defs.onnx_opset_version()     # a file of a later opset is one no runtime here can load
    if not isinstance(opset, int) or isinstance(opset, bool) or not MIN_OPSET <= opset <= newest:
        raise ExportError(f"to_onnx: argument 'opset' expected an int >= {MIN_OPSET} (LSTM, GRU and RNN with every "
                          f"attribute the export writes) and <= {newest} (the newest the installed onnx knows), "
                          f"got {opset!r}")
    if module.training:
        raise ExportError(f"to_onnx: {type(module).__name__} is in training mode (dropout and input noise would be "
                          "left out of the graph, which would then compute something else): call .eval() first")


def _layer_graph(g: Graph, module) -> None:
    I = module.input_size
    x = g.input("x", "FLOAT", ["batch", "time", I] if module.batch_first else ["time", "batch", I])
    lens = lengths_input(g)
    x_tm = g.op("Transpose", [x], perm=[1, 0, 2]) if module.batch_first else x
    y, finals = layer(g, module, x_tm, lens)
    if module.batch_first:
        y = g.op("Transpose", [y], perm=[1, 0, 2])
    g.output(y, "y", "FLOAT", ["batch", "time", module.output_size] if module.batch_first
             else ["time", "batch", module.output_size])
    for k, (final, shape) in enumerate(zip(_flatten(finals), state_shapes(module), strict=True)):
        g.output(final, f"state_{k}", "FLOAT", shape)


def ids_input(g: Graph, name: str, embedding: nn.Embedding, shape: list) -> str:
    """The int64 input ``name`` of token ids for ``embedding``: ``shape``, plus a last axis of 2
    (each token's id and its row in the pretrained vectors) where the embedding has vectors."""
    vectors = isinstance(embedding, TokenEmbedding) and embedding.word_vectors is not None
    return g.input(name, "INT64", [*shape, 2] if vectors else shape)


def embed(g: Graph, embedding: nn.Embedding, ids: str) -> str:
    """The (B, T, E) embeddings of token ids (B, T); for a :class:`TokenEmbedding` with word
    vectors, of ids (B, T, 2), with the frozen vector beside each token's embedding (B, T, E + D)."""
    table = g.const(embedding.weight.detach().cpu().numpy(), "embedding")
    if not (isinstance(embedding, TokenEmbedding) and embedding.word_vectors is not None):
        return g.op("Gather", [table, ids], axis=0)
    tokens, rows = (g.op("Gather", [ids, g.const(k, "column", np.int64)], axis=2) for k in (0, 1))
    vectors = g.const(embedding.word_vectors.cpu().numpy(), "word_vectors")
    return g.op("Concat", [g.op("Gather", [table, tokens], axis=0), g.op("Gather", [vectors, rows], axis=0)], axis=2)


def classifier_logits(g: Graph, model: SequenceClassifier, x: str, lens: str) -> str:
    """The logits (B, C) of ``model`` for batch-first features ``x`` (B, T, F), or token ids
    (B, T) (with word vectors (B, T, 2)) where the model embeds tokens."""
    if model.embedding is not None:
        x = embed(g, model.embedding, x)
    y, _ = layer(g, model.rnn, g.op("Transpose", [x], perm=[1, 0, 2]), lens)
    pooled = pool(g, y, lens, model.pool.how, model.pool.split, model.pool.attention)
    return linear(g, pooled, model.head, "head")


def forecaster_output(g: Graph, model: Forecaster, x: str) -> str:
    """The forecast (B, K) of ``model`` for windows ``x`` (B, W, F): every window read whole."""
    lens = full_lengths(g, x)
    y, _ = layer(g, model.rnn, g.op("Transpose", [x], perm=[1, 0, 2]), lens)
    return linear(g, pool(g, y, lens, "last", model.split, None), model.head, "head")


def language_model_logits(g: Graph, model: LanguageModel) -> tuple[str, list[tuple[str, ...]]]:
    """The inputs ``tokens`` and each layer's state ``state_K_J``; returns the next-token logits
    (B, T, V) and each layer's final state."""
    tokens = g.input("tokens", "INT64", ["batch", "time"])
    x = g.op("Transpose", [embed(g, model.embedding, tokens)], perm=[1, 0, 2])
    lens = full_lengths(g, tokens)
    finals = []
    for k, module in enumerate(model.layers):
        if isinstance(module, WeightDrop):         # in eval mode its weights are the raw ones: put them back
            module._set_weights()                  # (the cell may still hold the last training pass's mask)
            module = module.layer
        initial = tuple(g.input(f"state_{k}_{j}", "FLOAT", ["batch", *shape])
                        for j, shape in enumerate(module.cell.state_shapes()))
        x, final = one_direction(g, module, x, lens, initial)
        finals.append(final)
    return linear(g, g.op("Transpose", [x], perm=[1, 0, 2]), model.decoder, "decoder"), finals


def state_outputs(g: Graph, finals: list[tuple[str, ...]], model: nn.Module) -> None:
    """Each layer's final state as the outputs ``final_K_J``, to feed back as ``state_K_J``."""
    shapes = iter(state_shapes(model))
    for k, final in enumerate(finals):
        for j, value in enumerate(final):
            g.output(value, f"final_{k}_{j}", "FLOAT", next(shapes))


def to_onnx(module: nn.Module, path: str | Path | None = None, *, opset: int = 17):
    """Export ``module`` (in eval mode) to ONNX; returns the ``onnx.ModelProto`` (and writes it to ``path``).

    - a layer (``Recurrent``, ``Bidirectional``, ``Stack``): inputs ``x`` (batch, time,
      features) (time-major without ``batch_first``) and ``lengths`` (batch,) int64; outputs
      ``y`` and the final state's tensors ``state_0``, ``state_1``, ... in the order of the
      layer's state, flattened (for a stack: layer by layer);
    - a ``SequenceClassifier``: inputs ``x`` (batch, time, features), or token ids (batch, time)
      int64 ((batch, time, 2) with pretrained word vectors: each token's id and vector row), and
      ``lengths``; outputs ``logits`` and ``probabilities`` (batch, classes);
    - a ``Forecaster``: input ``x`` (batch, window, features); output ``forecast`` (batch, horizon);
    - a ``LanguageModel``: inputs ``tokens`` (batch, time) int64 and each layer's state,
      ``state_K_J`` (batch, width) (zeros to start); outputs ``logits`` (batch, time, vocabulary)
      and the final states ``final_K_J``, to feed back for the next tokens (streaming generation).

    Batch and time are dynamic axes. Cells become native nodes or a ``Scan`` over their step;
    cells, merges and options that neither can express raise an :class:`ExportError` naming them.
    """
    check(module, opset)
    g = Graph(opset)
    if isinstance(module, (Recurrent, Bidirectional, Stack)):
        _layer_graph(g, module)
    elif isinstance(module, SequenceClassifier):
        if module.embedding is None:
            x = g.input("x", "FLOAT", ["batch", "time", module.rnn.input_size])
        else:
            x = ids_input(g, "x", module.embedding, ["batch", "time"])
        lens = lengths_input(g)
        logits = classifier_logits(g, module, x, lens)
        g.output(logits, "logits", "FLOAT", ["batch", module.head.out_features])
        g.output(g.op("Softmax", [logits], axis=1), "probabilities", "FLOAT", ["batch", module.head.out_features])
    elif isinstance(module, LanguageModel):
        logits, finals = language_model_logits(g, module)
        g.output(logits, "logits", "FLOAT", ["batch", "time", module.decoder.out_features])
        state_outputs(g, finals, module)
    elif isinstance(module, Forecaster):
        x = g.input("x", "FLOAT", ["batch", "window", module.rnn.input_size])
        g.output(forecaster_output(g, module, x), "forecast", "FLOAT", ["batch", module.horizon])
    else:
        raise ExportError(f"to_onnx: expected a Recurrent, Bidirectional or Stack layer, a SequenceClassifier, a "
                          f"Forecaster or a LanguageModel, got {type(module).__name__}")
    model = g.model(type(module).__name__)
    if path is not None:
        Path(path).write_bytes(model.SerializeToString())
    return model


def export_run(run: str | Path, path: str | Path, *, opset: int = 17):
    """Export a trained run's model with its preprocessing to ``path``: the graph reads the
    inputs as ``lstmkit predict`` reads them (token ids for the text tasks) and answers what it
    answers; the run's task builds it (:meth:`~lstmkit.runs.task.Task.export_graph`, in the task's
    folder). The task, the checkpoint and what the caller needs to make the inputs (classes,
    vocabulary...) are in the model's metadata."""
    loaded = load_run(run)
    task, model = loaded.task, loaded.model
    checkpoints = loaded.checkpoint.resolve().parent
    if Path(path).resolve().is_relative_to(checkpoints):
        raise ExportError(f"export: argument 'path' expected a file outside the run's checkpoints, got {str(path)!r} "
                          f"(inside {str(checkpoints)!r}: it would overwrite the trained model)")
    if not task.exports():
        exported = [name for name in registry.names() if registry.get(name).exports()]
        raise ExportError(f"export: the {task.name!r} task has no ONNX export (tasks with one: "
                          f"{', '.join(exported)}); export its model with lstmkit.export.to_onnx and apply the "
                          "task's preprocessing around it")
    if isinstance(model, Ensemble):
        raise ExportError(f"export: the run's model is an ensemble of {len(model.members)} models, which has no ONNX "
                          "export; export a run trained with model.ensemble: 1")
    check(model, opset)
    g = Graph(opset)
    properties = task.export_graph(g, model, loaded.fitted)
    onnx_model = g.model(f"lstmkit-{task.name}")
    g.onnx.helper.set_model_props(onnx_model, {"task": task.name, "checkpoint": str(loaded.checkpoint), **properties})
    Path(path).write_bytes(onnx_model.SerializeToString())
    return onnx_model
