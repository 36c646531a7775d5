"""The fast engine: every cell's recurrence compiled, forward and backward.

Layers call :func:`run` where :func:`supports` says yes; it returns what the reference loop
returns (tested equal to it in float64). The compiled part (``engine.cpp``) runs the sequential
recurrence with a hand-written backward, and projects the input there too, step by step, so
that no (B, T, gates) projection is written and read back. The extension is built on first use
with ``torch.utils.cpp_extension`` (a C++ compiler and ninja needed) and cached; if it cannot be
built or loaded, one warning says so and the layers keep the reference loops.
``LSTMKIT_ENGINE=reference`` turns it off.
"""

from __future__ import annotations

import os
import pathlib
import warnings

import torch
from torch import Tensor

from ..cells import GRU, LSTM, LSTM1997, Cell, Elman, LayerNormLSTM, PeepholeLSTM

__all__ = ["load", "available", "supports", "accepts", "run", "load_error", "empty_cache", "cache_info", "DTYPES"]

#: The dtypes the kernels are compiled for; the engine runs on the CPU.
DTYPES = (torch.float32, torch.float64, torch.bfloat16)

_SOURCE = pathlib.Path(__file__).with_name("engine.cpp")
_CFLAGS = ["-O3", "-march=native", "-fno-math-errno", "-fno-trapping-math"]
# at::parallel_for runs its blocks on torch's OpenMP threads only in code compiled with OpenMP;
# without it every block runs one after another on the calling thread
_OPENMP = ["-fopenmp"] if torch.backends.openmp.is_available() else []
_state: dict = {"tried": False, "ext": None, "error": None}


def load(*, verbose: bool = False, strict: bool = False):
    """The compiled extension, building it on first call; None (after one warning) if it cannot be had.

    ``strict=True`` raises the build error instead of warning.
    """
    if _state["tried"]:
        if strict and _state["ext"] is None:
            raise RuntimeError(f"lstmkit engine unavailable: {_state['error']}")
        return _state["ext"]
    _state["tried"] = True
    if os.environ.get("LSTMKIT_ENGINE", "").lower() == "reference":
        _state["error"] = "turned off by LSTMKIT_ENGINE=reference"
        return None
    try:
        from torch.utils.cpp_extension import load as build
        _state["ext"] = build(name="lstmkit_engine", sources=[str(_SOURCE)], extra_cflags=_CFLAGS + _OPENMP,
                              extra_ldflags=_OPENMP, verbose=verbose)
    except Exception as err:  # noqa: BLE001 - any failure means: fall back, once, loudly
        _state["error"] = f"{type(err).__name__}: {str(err).strip().splitlines()[-1] if str(err).strip() else ''}"
        if strict:
            raise
        warnings.warn(f"lstmkit: the fast engine could not be built or loaded ({_state['error']}); layers use the "
                      "reference loops (same results, slower). `python -m lstmkit._engine` shows the build log.",
                      RuntimeWarning, stacklevel=2)
    return _state["ext"]


def load_error() -> str | None:
    """Why the engine is unavailable (None if it loaded or was not tried yet)."""
    return _state["error"]


def available() -> bool:
    return load() is not None


def empty_cache() -> int:
    """Hand the engine's cached buffers back to the system; returns the bytes released.

    The engine keeps the whole-sequence buffers of a call (saved activations, gate gradients:
    those of 4 MiB or more) for the next call when they are freed, up to
    ``LSTMKIT_ENGINE_CACHE_MB`` MiB (default 1024; 0 turns the cache off), as PyTorch's CUDA
    allocator does: a fresh buffer costs page faults, zeroing and cold caches at every step.
    """
    ext = load()
    return ext.empty_cache() if ext is not None else 0


def cache_info() -> dict:
    """The engine's buffer cache: ``{"buffers": n, "bytes": b, "capacity": c}`` (zeros without the engine)."""
    ext = load()
    n, b, c = ext.cache_info() if ext is not None else (0, 0, 0)
    return {"buffers": n, "bytes": b, "capacity": c}


def _empty(like: Tensor) -> Tensor:
    """The "absent" marker for an optional tensor argument of the extension."""
    return like.new_empty(0)


# -- kernels: one per family; each maps the cell to the extension's arguments ------------------

class _Gated:
    """lstm, peephole and the Greff variants: batch-first; the kernel does the input projection
    (each step's x_t W_ih^T goes into the same buffer as h W_hh^T) and adds the bias."""

    @staticmethod
    def config(cell: Cell) -> list[int]:
        if isinstance(cell, LSTM):
            return [1, 1, 0, 1, 0, 0, 0, 0]
        return [int(cell.input_gate), int(cell.forget_gate), int(cell.coupled), int(cell.output_gate),
                int(not cell.input_activation), int(not cell.output_activation), int(cell.peepholes),
                int(cell.weight_gg is not None)]

    @staticmethod
    def params(cell):
        def get(name):
            return getattr(cell, name, None)
        return [cell.weight_ih, cell.weight_hh, get("peephole_i"), get("peephole_f"), get("peephole_o"),
                get("weight_gg"), cell.bias]

    @staticmethod
    def forward(ext, cell, x, params, state, lengths, save):
        h0, c0 = state[0], state[1]
        a0 = state[2] if len(state) > 2 else _empty(h0)
        Y, C, A, G = ext.gated_forward(x, *params, h0, c0, a0, lengths, _Gated.config(cell), save)
        finals = (Y[:, -1].clone(), C[:, -1].clone()) + ((A[:, -1].clone(),) if len(state) > 2 else ())
        return Y, finals, [Y, C, A if A is not None else _empty(Y), G]

    @staticmethod
    def backward(ext, cell, dY, dfinals, params, state, saved, lengths, x, need_dx):
        h0, c0 = state[0], state[1]
        a0 = state[2] if len(state) > 2 else _empty(h0)
        dh, dc = dfinals[0], dfinals[1]
        da = dfinals[2] if len(state) > 2 else _empty(h0)
        dx, dwi, dw, dpi, dpf, dpo, dwg, db, dh0, dc0, da0 = ext.gated_backward(
            dY, dh, dc, da, x, *params, h0, c0, a0, *saved, lengths, _Gated.config(cell), need_dx)
        return dx, [dwi, dw, dpi, dpf, dpo, dwg, db], [dh0, dc0] + ([da0] if len(state) > 2 else [])


class _LayerNorm:
    """Batch-first; the kernel projects the input step by step and normalises each projection on
    its own (LN(x_t W_ih^T) and LN(h W_hh^T) in two small buffers)."""

    @staticmethod
    def params(cell):
        return [cell.weight_ih, cell.weight_hh, cell.bias, cell.gamma_ih, cell.gamma_hh, cell.gamma_c, cell.beta_c]

    @staticmethod
    def forward(ext, cell, x, params, state, lengths, save):
        Y, C, *saved = ext.layernorm_forward(x, *params, *state, lengths, cell.eps, save)
        return Y, (Y[:, -1].clone(), C[:, -1].clone()), [Y, C, *saved]

    @staticmethod
    def backward(ext, cell, dY, dfinals, params, state, saved, lengths, x, need_dx):
        dx, *dparams, dh0, dc0 = ext.layernorm_backward(dY, *dfinals, x, *params, *state, *saved, lengths, need_dx)
        return dx, dparams, [dh0, dc0]


class _GRU:
    """Both reset placements: batch-first; the kernel does the input projection step by step and
    adds the input-side bias (bias_ih, or Cho's bias)."""

    @staticmethod
    def params(cell):
        return [cell.weight_ih, cell.weight_hh, cell.bias_ih if cell.reset_after else cell.bias, cell.bias_hh]

    @staticmethod
    def forward(ext, cell, x, params, state, lengths, save):
        Y, G, Aux = ext.gru_forward(x, *params, state[0], lengths, cell.reset_after, save)
        return Y, (Y[:, -1].clone(),), [Y, G, Aux]

    @staticmethod
    def backward(ext, cell, dY, dfinals, params, state, saved, lengths, x, need_dx):
        dx, dwi, dw, dbx, dbh, dh0 = ext.gru_backward(dY, dfinals[0], x, *params, state[0], *saved, lengths,
                                                      cell.reset_after, need_dx)
        return dx, [dwi, dw, dbx, dbh], [dh0]


_ELMAN_ACT = {"tanh": 0, "relu": 1, "logistic": 2}


class _Elman:
    """Batch-first; the kernel projects the input step by step and adds the bias."""

    @staticmethod
    def params(cell):
        return [cell.weight_ih, cell.weight_hh, cell.bias]

    @staticmethod
    def forward(ext, cell, x, params, state, lengths, save):
        (Y,) = ext.elman_forward(x, *params, state[0], lengths, _ELMAN_ACT[cell.activation], save)
        return Y, (Y[:, -1].clone(),), [Y]

    @staticmethod
    def backward(ext, cell, dY, dfinals, params, state, saved, lengths, x, need_dx):
        dx, dwi, dw, db, dh0 = ext.elman_backward(dY, dfinals[0], x, *params, state[0], saved[0], lengths,
                                                  _ELMAN_ACT[cell.activation], need_dx)
        return dx, [dwi, dw, db], [dh0]


_G1997 = {"scaled": 0, "logistic": 1, "tanh": 2, "identity": 3}
_H1997 = {"scaled": 0, "tanh": 1, "identity": 2}
_R1997 = {"all": 0, "cells": 1, "none": 2}


class _LSTM1997:
    """Batch-first; the kernel projects the input step by step and adds the bias over all R rows.
    The engine's state is u = [y_c, gate activations] (or y_c) and s; the cell's is (y_c, s[, gates])."""

    @staticmethod
    def config(cell):
        return [cell.cell_size, int(cell.forget_gate), int(cell.output_gate), _G1997[cell.g_name],
                _H1997[cell.h_name], _R1997[cell.recurrent], int(cell.truncate)]

    @staticmethod
    def params(cell):
        return [cell.weight_ih, cell.weight_hh, cell._full_bias()]

    @staticmethod
    def to_engine_state(cell, state):
        u = torch.cat([state[0], state[2]], dim=-1) if cell.recurrent == "all" else state[0]
        return (u, state[1])

    @staticmethod
    def from_engine_state(cell, u, s):
        H = cell.hidden_size
        return (u[..., :H], s, u[..., H:]) if cell.recurrent == "all" else (u, s)

    @staticmethod
    def forward(ext, cell, x, params, state, lengths, save):
        Us, Ss, G = ext.lstm1997_forward(x, *params, state[0], state[1], lengths, _LSTM1997.config(cell), save)
        return Us, (Us[:, -1].clone(), Ss[:, -1].clone()), [Us, Ss, G]

    @staticmethod
    def backward(ext, cell, dY, dfinals, params, state, saved, lengths, x, need_dx):
        dx, dwi, dw, db, du0, ds0 = ext.lstm1997_backward(dY, dfinals[0], dfinals[1], x, *params, state[0], state[1],
                                                          *saved, lengths, _LSTM1997.config(cell), need_dx)
        return dx, [dwi, dw, db], [du0, ds0]


_KERNELS = {LSTM: _Gated, PeepholeLSTM: _Gated, LayerNormLSTM: _LayerNorm, GRU: _GRU, Elman: _Elman,
            LSTM1997: _LSTM1997}


def supports(cell: Cell) -> bool:
    """Whether the engine has a kernel for this cell's class (exactly; subclasses may change the maths)."""
    return type(cell) in _KERNELS


def accepts(x: Tensor) -> str | None:
    """None if the engine can take input like ``x``, else why not (device or dtype)."""
    if x.device.type != "cpu":
        return f"the compiled engine runs on the CPU, got device {x.device}"
    if x.dtype not in DTYPES:
        return f"the compiled engine takes {', '.join(str(d) for d in DTYPES)}, got {x.dtype}"
    return None


class _Recurrence(torch.autograd.Function):
    """The compiled recurrence as one autograd node: (x, params, state0) -> (Y, final state)."""

    @staticmethod
    def forward(ctx, kernel, cell, ext, lengths, n_params, save, x, *tensors):
        params, state = list(tensors[:n_params]), tuple(tensors[n_params:])
        raw = [p if p is not None else _empty(x) for p in params]
        Y, finals, saved = kernel.forward(ext, cell, x, raw, state, lengths, save)
        ctx.kernel, ctx.cell, ctx.ext, ctx.lengths = kernel, cell, ext, lengths
        ctx.n_params, ctx.n_state, ctx.absent = n_params, len(state), [p is None for p in params]
        if save:   # the backward needs the input itself too (for the input weights' gradient)
            ctx.save_for_backward(*raw, *state, *saved, x)
        return (Y, *finals)

    @staticmethod
    def backward(ctx, dY, *dfinals):
        if torch.is_grad_enabled():   # create_graph=True: the hand-written backward has no derivative
            raise RuntimeError("lstmkit engine: second derivatives (create_graph=True) are not supported by the "
                               "compiled engine; build the layer with engine='reference' for them")
        tensors = list(ctx.saved_tensors)
        x = tensors.pop()
        n_p, n_s = ctx.n_params, ctx.n_state
        params, state, saved = list(tensors[:n_p]), tuple(tensors[n_p:n_p + n_s]), list(tensors[n_p + n_s:])
        empty = _empty(saved[0])
        dY = dY.contiguous() if dY is not None else empty
        dfinals = [d.contiguous() if d is not None else empty for d in dfinals]
        dx, dparams, dstate = ctx.kernel.backward(ctx.ext, ctx.cell, dY, dfinals, params, state, saved, ctx.lengths,
                                                  x, ctx.needs_input_grad[6])
        dparams = [None if absent else d for d, absent in zip(dparams, ctx.absent)]
        return (None, None, None, None, None, None, dx, *dparams, *dstate)


def run(cell: Cell, x: Tensor, state: tuple, lengths: Tensor | None) -> tuple[Tensor, tuple]:
    """The recurrence of ``cell`` over batch-first ``x`` (B, T, I): ``(Y, final_state)``.

    ``Y`` (B, T, O) holds the output after every step; for a row past its length it holds the
    carried state (the caller zeroes those). ``lengths`` is already checked.
    """
    ext = load()
    kernel = _KERNELS[type(cell)]
    x = x.contiguous()
    params = kernel.params(cell)
    engine_state = kernel.to_engine_state(cell, state) if hasattr(kernel, "to_engine_state") else state
    engine_state = tuple(s.contiguous() for s in engine_state)
    tensors = [p for p in params] + list(engine_state)
    save = torch.is_grad_enabled() and (x.requires_grad or any(t is not None and t.requires_grad for t in tensors))
    lengths_arg = lengths.contiguous() if lengths is not None else _empty(x).long()
    Y, *finals = _Recurrence.apply(kernel, cell, ext, lengths_arg, len(params), save, x, *tensors)
    if hasattr(kernel, "from_engine_state"):
        finals = kernel.from_engine_state(cell, *finals)
        Y = Y[..., :cell.hidden_size]
    return Y, tuple(finals)
