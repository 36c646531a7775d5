"""Shared conformance harness: every registered cell goes through the same checks.

A new cell registered with ``lstmkit.cells.register`` is picked up by ``CASES`` at once;
option sets that exercise a cell further go in ``EXTRA_OPTIONS``.
"""

from __future__ import annotations

import os

import torch
from torch.func import functional_call

import lstmkit
from lstmkit import cells

F64 = torch.float64
I, H, B, T = 3, 4, 3, 5

#: Both paths, unless the compiled engine is turned off (then its tests are not collected).
ENGINES = ["reference"] if os.environ.get("LSTMKIT_ENGINE", "").lower() == "reference" else ["reference", "fast"]
#: Equal to the reference: bit for bit on the reference path itself, to rounding through the engine.
TOL = {"reference": dict(rtol=0, atol=0), "fast": dict(rtol=1e-12, atol=1e-12), "auto": dict(rtol=1e-12, atol=1e-12)}


def step_tol(cell, engine: str) -> dict:
    """The tolerance between a layer and its cell's ``step``: a cell whose step is PyTorch's fused op
    (``_torch_rnn``) computes the same maths in another order of rounding."""
    return TOL["fast"] if "_torch_rnn" in type(cell).__dict__ else TOL[engine]

#: More option sets per cell, beyond the defaults.
EXTRA_OPTIONS: dict[str, list[dict]] = {
    "elman": [{"activation": "relu"}, {"activation": "logistic"}, {"bias": False}],
    "lstm": [{"bias": False}, {"gate_bias": {"f": 1.0}}],
    "lstm1997": [
        {"cell_size": 2},
        {"cell_size": 2, "forget_gate": True, "recurrent": "cells", "bias": "gates"},
        {"output_gate": False, "recurrent": "none", "g": "logistic", "h": "identity", "bias": False},
        {"gate_bias": {"i": [-1.0, -2.0, -3.0, -4.0], "o": -2.0}},
        {"g": "tanh", "h": "tanh", "cell_size": 2, "forget_gate": True},
        {"g": "identity", "recurrent": "cells"},
    ],
    "gru": [{"bias": False}],
    "gru_cho": [{"bias": False}],
    "peephole": [{"gate_bias": {"f": 1.0}}],
    "mingru": [{"bias": False}, {"gate_bias": {"z": -2.0}}],
    "minlstm": [{"gate_bias": {"f": 3.0, "i": -3.0}}],
    "slstm": [{"heads": 2, "forget": "exp"}, {"bias": False, "gate_bias": None}],
    "mlstm": [{"heads": 2, "chunk_size": 2}, {"gate_bias": {"f": 2.0, "i": -1.0}}],
}


def usable(cell, engine: str) -> str:
    """The layer engine to test ``cell`` with: "fast" means "auto" for a cell with no fast form
    (the sLSTM runs its step loop), as such a layer refuses engine="fast"."""
    try:
        lstmkit.Recurrent(cell, engine=engine)
    except (ValueError, RuntimeError):
        return "auto"
    return engine


def cases() -> list[tuple[str, dict]]:
    out = []
    for name in cells.names():
        out.append((name, {}))
        out.extend((name, opts) for opts in EXTRA_OPTIONS.get(name, []))
    return out


CASES = cases()
CASE_IDS = [f"{n}-{i}" for i, (n, _) in enumerate(CASES)]


def build(name: str, options: dict, *, seed: int = 0, input_size: int = I, hidden_size: int = H):
    torch.manual_seed(seed)
    return cells.make(name, input_size, hidden_size, **options).to(F64)


def random_state(cell, batch: int, *, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return tuple(0.5 * torch.randn(batch, *s, generator=g, dtype=F64) for s in cell.state_shapes())


def run_layer(layer, params: dict, x, state, lengths):
    """Flat outputs of ``layer`` with ``params`` substituted: for gradcheck."""
    y, final = functional_call(layer, params, (x, state), {"lengths": lengths})
    return (y, *flatten(final))


def flatten(state):
    if state is None:
        return []
    if isinstance(state, torch.Tensor):
        return [state]
    return [t for s in state for t in flatten(s)]


def gradcheck_layer(layer, x, state, lengths) -> bool:
    """gradcheck ``layer`` w.r.t. the input, the initial state and every parameter."""
    names = [n for n, _ in layer.named_parameters()]
    params = [p.detach().clone().requires_grad_() for _, p in layer.named_parameters()]
    leaves = flatten(state)
    n_x, n_s = 1, len(leaves)

    def fn(*tensors):
        xx = tensors[0]
        st = rebuild(state, list(tensors[n_x:n_x + n_s]))
        return run_layer(layer, dict(zip(names, tensors[n_x + n_s:])), xx, st, lengths)

    inputs = (x.detach().clone().requires_grad_(), *[t.detach().clone().requires_grad_() for t in leaves], *params)
    return torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-6, rtol=1e-5)


def rebuild(template, leaves: list):
    """Put ``leaves`` back into the nesting of ``template`` (tuples/lists of tensors, or None)."""
    if template is None:
        return None
    if isinstance(template, torch.Tensor):
        return leaves.pop(0)
    return type(template)(rebuild(t, leaves) for t in template) if isinstance(template, tuple) else \
        [rebuild(t, leaves) for t in template]


def run_alone(layer: lstmkit.Recurrent, x, state, lengths):
    """Each sequence on its own, unpadded: the ground truth for variable lengths."""
    ys, finals = [], []
    for b in range(x.shape[0]):
        L = int(lengths[b])
        st = None if state is None else tuple(s[b:b + 1] for s in state)
        y, f = layer(x[b:b + 1, :L], st)
        ys.append(y[0])
        finals.append(f)
    return ys, finals


def outputs_and_grads(layer, x, state, lengths, seed=0):
    """Outputs, final state and the gradients of a fixed random projection of both."""
    x = x.detach().clone().requires_grad_()
    state = None if state is None else tuple(s.detach().clone().requires_grad_() for s in state)
    y, final = layer(x, state, lengths=lengths)
    g = torch.Generator().manual_seed(seed)
    flat = [y, *final]
    loss = sum((t * torch.randn(t.shape, generator=g, dtype=t.dtype)).sum() for t in flat)
    wrt = [x, *(state or ()), *layer.parameters()]
    grads = torch.autograd.grad(loss, wrt, allow_unused=True)
    grads = [torch.zeros_like(w) if gr is None else gr for gr, w in zip(grads, wrt)]
    return flat, grads


def assert_engine_equals_reference(cell, x, lengths_options, *, tol=1e-10):
    """Outputs, final states and every gradient of the engine's layer equal the reference loop's,
    both directions, for each lengths option (None: all steps), from a random initial state."""
    for reverse in (False, True):
        for lengths in lengths_options:
            fast = lstmkit.Recurrent(cell, reverse=reverse, engine="fast")
            ref = lstmkit.Recurrent(cell, reverse=reverse, engine="reference")
            assert fast.uses_engine() and not ref.uses_engine()
            state = random_state(cell, x.shape[0])
            out_f, grad_f = outputs_and_grads(fast, x, state, lengths)
            out_r, grad_r = outputs_and_grads(ref, x, state, lengths)
            assert_same(out_f, out_r, tol)
            assert_same(grad_f, grad_r, tol)


def assert_same(a, b, tol=1e-10):
    for u, v in zip(a, b):
        torch.testing.assert_close(u, v, rtol=tol, atol=tol)
