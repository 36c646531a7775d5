"""A linear-chain CRF's decoding in ONNX: Viterbi (a ``Scan`` forward keeping back-pointers, a
reverse ``Scan`` following them) and the forward-backward marginals, over time-major emissions
with lengths, as :class:`lstmkit.layers.CRF` computes them. Forbidden transitions score -inf.

Every ``Scan`` runs over all T steps, the first step told by a flag, since ONNX Runtime refuses a
``Scan`` over zero steps (which the steps after the first are when T = 1)."""

from __future__ import annotations

import numpy as np

from ..layers import CRF
from .graph import Graph
from .lengths import valid_steps

__all__ = ["viterbi", "marginals"]

_BIG = 2 ** 62


def _scores(g: Graph, crf: CRF) -> tuple[str, str, str]:
    return tuple(g.const(t.detach().cpu().numpy(), hint) for t, hint in zip(crf._scores(), ("trans", "start", "end")))


def _after_first(g: Graph, x: str) -> str:
    """Steps 1.. of time-major ``x``."""
    return g.op("Slice", [x, g.const([1], "start", np.int64), g.const([_BIG], "end", np.int64),
                          g.const([0], "axis", np.int64)])


def _first_step(g: Graph, x: str) -> str:
    """(T, 1, 1) float: 1 at the first step of time-major ``x``, else 0."""
    T = g.op("Gather", [g.op("Shape", [x]), g.const(0, "zero", np.int64)], axis=0)
    steps = g.op("Range", [g.const(0, "zero", np.int64), T, g.const(1, "one", np.int64)])
    first = g.op("Cast", [g.op("Equal", [steps, g.const(0, "zero", np.int64)])], to=g.onnx.TensorProto.FLOAT)
    return g.op("Unsqueeze", [first, g.const([1, 2], "axes", np.int64)])


def _batch_of(g: Graph, x: str) -> str:
    """(B, K) shape of the steps of time-major ``x`` (T, B, K)."""
    return g.op("Slice", [g.op("Shape", [x]), g.const([1], "start", np.int64), g.const([3], "end", np.int64)])


def _logsumexp(g: Graph, x: str, axis: int) -> str:
    """log Σ exp over ``axis`` (dropped), exact where every term is -inf (gives -inf, not NaN)."""
    top = g.reduce("ReduceMax", x, axis, keepdims=1)
    top = g.op("Where", [g.op("IsInf", [top]), g.const(0.0, "zero"), top])
    total = g.op("Log", [g.reduce("ReduceSum", g.op("Exp", [g.op("Sub", [x, top])]), axis, keepdims=1)])
    return g.op("Squeeze", [g.op("Add", [total, top]), g.const([axis], "axis", np.int64)])


def _held(g: Graph, valid: str, new: str, old: str) -> str:
    """``new`` where the step is valid, else ``old`` (a row past its length keeps its value)."""
    return g.op("Where", [g.op("Cast", [valid], to=g.onnx.TensorProto.BOOL), new, old])


def viterbi(g: Graph, crf: CRF, emissions: str, lens: str) -> tuple[str, str]:
    """The best tags (T, B) int64 (-1 past each length) and their scores (B,), for emissions
    (T, B, K) and int32 lengths (B,) >= 1."""
    K = crf.num_tags
    trans, start, end = _scores(g, crf)
    mask = valid_steps(g, emissions, lens)                                                   # (T, B, 1)
    delta0 = g.op("Expand", [start, _batch_of(g, emissions)])                            # (B, K), unread

    body = g.subgraph()
    delta = body.input(body.fresh("delta"), "FLOAT", ["batch", K])
    e_t = body.input(body.fresh("e_t"), "FLOAT", ["batch", K])
    m_t = body.input(body.fresh("valid_t"), "FLOAT", ["batch", 1])
    first = body.input(body.fresh("first_t"), "FLOAT", [1, 1])
    candidates = body.op("Add", [body.op("Unsqueeze", [delta, body.const([2], "axis", np.int64)]), trans])  # [b, from, to]
    best = body.op("Add", [_held(body, first, start, body.reduce("ReduceMax", candidates, 1)), e_t])
    stay = body.const(np.arange(K), "stay", np.int64)                     # the first step and padding: no move
    pointer = _held(body, first, stay, body.op("ArgMax", [candidates], axis=1, keepdims=0))  # (B, K)
    body.output(_held(body, m_t, best, delta), body.fresh("delta_out"), "FLOAT", ["batch", K])
    body.output(_held(body, m_t, pointer, stay), body.fresh("back"), "INT64", ["batch", K])
    last_delta, back = g.op("Scan", [delta0, emissions, mask, _first_step(g, emissions)], outputs=2,
                            body=body.graph("viterbi_step"), num_scan_inputs=3, hint="viterbi")
    final = g.op("Add", [last_delta, end])                                                  # (B, K)
    score = g.reduce("ReduceMax", final, 1)
    last = g.op("ArgMax", [final], axis=1, keepdims=0)                                     # (B,)

    trace = g.subgraph()                                   # from the last step back: tag_t, then tag_{t-1}
    tag = trace.input(trace.fresh("tag"), "INT64", ["batch"])
    back_t = trace.input(trace.fresh("back_t"), "INT64", ["batch", K])
    axis = trace.const([1], "axis", np.int64)
    previous = trace.op("Squeeze", [trace.op("GatherElements", [back_t, trace.op("Unsqueeze", [tag, axis])], axis=1),
                                    axis])
    trace.output(previous, trace.fresh("tag_out"), "INT64", ["batch"])
    trace.output(trace.op("Identity", [tag]), trace.fresh("tag_t"), "INT64", ["batch"])
    _, tags = g.op("Scan", [last, back], outputs=2, body=trace.graph("backtrack"), num_scan_inputs=1,
                   scan_input_directions=[1], scan_output_directions=[1], hint="backtrack")      # (T, B)
    valid = g.op("Cast", [g.op("Squeeze", [mask, g.const([2], "axis", np.int64)])], to=g.onnx.TensorProto.BOOL)
    return g.op("Where", [valid, tags, g.const(-1, "padding", np.int64)]), score


def marginals(g: Graph, crf: CRF, emissions: str, lens: str) -> str:
    """p(tag of step t = k | sentence), (T, B, K), zero past each length: the forward and the
    backward algorithm in log space."""
    K = crf.num_tags
    trans, start, end = _scores(g, crf)
    mask = valid_steps(g, emissions, lens)                                                   # (T, B, 1)
    starts = g.op("Expand", [start, _batch_of(g, emissions)])                            # (B, K)

    forward = g.subgraph()
    alpha = forward.input(forward.fresh("alpha"), "FLOAT", ["batch", K])
    e_t = forward.input(forward.fresh("e_t"), "FLOAT", ["batch", K])
    m_t = forward.input(forward.fresh("valid_t"), "FLOAT", ["batch", 1])
    first = forward.input(forward.fresh("first_t"), "FLOAT", [1, 1])
    paths = forward.op("Add", [forward.op("Unsqueeze", [alpha, forward.const([2], "axis", np.int64)]), trans])
    into = _held(forward, first, start, _logsumexp(forward, paths, 1))
    alpha_t = _held(forward, m_t, forward.op("Add", [into, e_t]), alpha)
    forward.output(alpha_t, forward.fresh("alpha_out"), "FLOAT", ["batch", K])
    forward.output(alpha_t, forward.fresh("alpha_t"), "FLOAT", ["batch", K])
    last_alpha, alphas = g.op("Scan", [starts, emissions, mask, _first_step(g, emissions)], outputs=2,
                              body=forward.graph("forward_step"), num_scan_inputs=3, hint="forward")
    log_z = _logsumexp(g, g.op("Add", [last_alpha, end]), 1)                               # (B,)

    # beta_t = end at each sentence's last step, else log Σ_j exp(trans[:, j] + e_{t+1}[j] + beta_{t+1}[j])
    zero_step = g.op("Mul", [g.op("Slice", [emissions, g.const([0], "start", np.int64), g.const([1], "end", np.int64),
                                            g.const([0], "axis", np.int64)]), g.const(0.0, "zero")])  # (1, B, K)
    next_emissions = g.op("Concat", [_after_first(g, emissions), zero_step], axis=0)
    inner = g.op("Concat", [_after_first(g, mask), g.reduce("ReduceMax", zero_step, 2, keepdims=1)], axis=0)
    backward = g.subgraph()
    beta = backward.input(backward.fresh("beta"), "FLOAT", ["batch", K])
    e_next = backward.input(backward.fresh("e_next"), "FLOAT", ["batch", K])
    inner_t = backward.input(backward.fresh("inner_t"), "FLOAT", ["batch", 1])
    ahead = backward.op("Unsqueeze", [backward.op("Add", [e_next, beta]), backward.const([1], "axis", np.int64)])
    beta_t = _held(backward, inner_t, _logsumexp(backward, backward.op("Add", [trans, ahead]), 2),
                   backward.op("Expand", [end, backward.op("Shape", [beta])]))
    backward.output(beta_t, backward.fresh("beta_out"), "FLOAT", ["batch", K])
    backward.output(beta_t, backward.fresh("beta_t"), "FLOAT", ["batch", K])
    beta_end = g.op("Expand", [end, _batch_of(g, emissions)])
    _, betas = g.op("Scan", [beta_end, next_emissions, inner], outputs=2, body=backward.graph("backward_step"),
                    num_scan_inputs=2, scan_input_directions=[1, 1], scan_output_directions=[1], hint="backward")
    log_p = g.op("Sub", [g.op("Add", [alphas, betas]), g.op("Unsqueeze", [log_z, g.const([0, 2], "axes", np.int64)])])
    p = g.op("Clip", [g.op("Exp", [log_p]), g.const(0.0, "zero"), g.const(1.0, "one")])
    return g.op("Mul", [p, mask])
