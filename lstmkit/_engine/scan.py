"""The engine's linear recurrence ``h_t = a_t h_{t-1} + b_t`` over (B, T, H) as a custom op with
its backward (``torch.ops.lstmkit.linear_scan``): the whole sequence of the minimal RNNs, whose
coefficients come from the input alone (:meth:`lstmkit.cells.MinimalRNN.linear_coefficients`).
Registered like :mod:`.ops`, so ``torch.compile`` and ``torch.export`` see one op."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["linear_scan", "DTYPES"]

DTYPES = (torch.float32, torch.float64)       # the scan is compiled for these

_loader = None


def bind(loader) -> None:
    global _loader
    _loader = loader


@torch.library.custom_op("lstmkit::linear_scan", mutates_args=())
def linear_scan(a: Tensor, b: Tensor, h0: Tensor) -> Tensor:
    """``h`` (B, T, H) with ``h_t = a_t * h_{t-1} + b_t`` from ``h0`` (B, H)."""
    return _loader(strict=True).linear_scan_forward(a, b, h0)


@linear_scan.register_fake
def _(a, b, h0):
    return torch.empty_like(a)


@torch.library.custom_op("lstmkit::linear_scan_backward", mutates_args=())
def linear_scan_backward(a: Tensor, h0: Tensor, h: Tensor, dh: Tensor) -> list[Tensor]:
    return list(_loader(strict=True).linear_scan_backward(a, h0, h, dh, dh.new_empty(0)))


@linear_scan_backward.register_fake
def _(a, h0, h, dh):
    return [torch.empty_like(a), torch.empty_like(a), torch.empty_like(h0)]


def _setup_context(ctx, inputs, output):
    a, _, h0 = inputs
    ctx.save_for_backward(a, h0, output)


def _backward(ctx, dh):
    a, h0, h = ctx.saved_tensors
    da, db, dh0 = linear_scan_backward(a, h0, h, dh.contiguous())
    return da, db, dh0


linear_scan.register_autograd(_backward, setup_context=_setup_context)
