"""The engine as PyTorch custom ops: ``torch.ops.lstmkit.recurrence`` and its backward.

Registered with ``torch.library`` with fake (shape-only) implementations and autograd, so
``torch.compile(fullgraph=True)`` compiles a model with lstmkit layers without graph breaks and
``torch.export`` captures it with dynamic batch and time dimensions. One op serves every kernel
family: ``family`` names the adapter (:data:`.kernels.FAMILIES`) and ``spec`` carries the cell's
options as numbers, since a custom op takes tensors and plain values only.

``recurrence`` returns ``[Y, *final_state, *saved]``: the saved tensors (what the backward needs,
Y excepted: it is output 0) only when ``save``; ``recurrence_backward`` returns
``[dx, *dparams, *dstate]``, an empty tensor for each absent one.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .kernels import FAMILIES

__all__ = ["recurrence", "recurrence_backward"]


_loader = None       # the package's ``load``, handed over by :func:`bind` (this module is imported by it)


def bind(loader) -> None:
    """Use ``loader(strict=True)`` to get the compiled extension."""
    global _loader
    _loader = loader


def _ext():
    return _loader(strict=True)


def _present(tensors, like: Tensor) -> list[Tensor]:
    """Absent results as empty tensors, and views as copies (a custom op's outputs own their memory)."""
    return [like.new_empty(0) if t is None else (t.clone() if t._is_view() else t) for t in tensors]


@torch.library.custom_op("lstmkit::recurrence", mutates_args=())
def recurrence(family: str, spec: list[float], x: Tensor, params: list[Tensor], state: list[Tensor], lengths: Tensor,
               save: bool) -> list[Tensor]:
    Y, finals, saved = FAMILIES[family].forward(_ext(), spec, x, params, tuple(state), lengths, save)
    return _present([Y, *finals, *(saved[1:] if save else [])], x)


@recurrence.register_fake
def _(family, spec, x, params, state, lengths, save):
    Y, finals, saved = FAMILIES[family].fake(spec, x, params, tuple(state), save)
    return [Y, *finals, *(saved[1:] if save else [])]


@torch.library.custom_op("lstmkit::recurrence_backward", mutates_args=())
def recurrence_backward(family: str, spec: list[float], dY: Tensor, dfinals: list[Tensor], x: Tensor,
                        params: list[Tensor], state: list[Tensor], saved: list[Tensor], lengths: Tensor,
                        need_dx: bool) -> list[Tensor]:
    dx, dparams, dstate = FAMILIES[family].backward(_ext(), spec, dY, dfinals, params, tuple(state), saved, lengths,
                                                    x, need_dx)
    return _present([dx, *dparams, *dstate], x)


@recurrence_backward.register_fake
def _(family, spec, dY, dfinals, x, params, state, saved, lengths, need_dx):
    return [torch.empty_like(x) if need_dx else x.new_empty(0), *(torch.empty_like(p) for p in params),
            *(torch.empty_like(s) for s in state)]


def _setup_context(ctx, inputs, output):
    family, spec, x, params, state, lengths, save = inputs
    n_state = len(state)
    ctx.family, ctx.spec, ctx.n_params, ctx.n_state = family, spec, len(params), n_state
    ctx.save_for_backward(x, lengths, *params, *state, output[0], *output[1 + n_state:])


def _backward(ctx, grads):
    if torch.is_grad_enabled():   # create_graph=True: the hand-written backward has no derivative
        raise RuntimeError("lstmkit engine: second derivatives (create_graph=True) are not supported by the "
                           "compiled engine; build the layer with engine='reference' for them")
    x, lengths, *rest = ctx.saved_tensors
    params, state = rest[:ctx.n_params], rest[ctx.n_params:ctx.n_params + ctx.n_state]
    saved = rest[ctx.n_params + ctx.n_state:]
    absent = x.new_empty(0)
    dY = grads[0].contiguous() if grads[0] is not None else absent
    dfinals = [g.contiguous() if g is not None else absent for g in grads[1:1 + ctx.n_state]]
    need_dx = ctx.needs_input_grad[2]
    out = recurrence_backward(ctx.family, ctx.spec, dY, dfinals, x, list(params), list(state), list(saved), lengths,
                              need_dx)
    dx, dparams, dstate = out[0], out[1:1 + ctx.n_params], out[1 + ctx.n_params:]
    return None, None, dx if need_dx else None, list(dparams), list(dstate), None, None


recurrence.register_autograd(_backward, setup_context=_setup_context)
