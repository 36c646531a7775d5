"""The output layer and its cross-entropy in one autograd node, for training over large vocabularies.

``F.cross_entropy(F.linear(x, W, b), y)`` keeps the logits, writes the log-softmax, and in
backward writes a one-hot gradient and the log-softmax's gradient: four (N, V) tensors and as
many passes over memory, beside the three matrix products. :func:`linear_cross_entropy` writes
the logits once, turns them in place into ``softmax - onehot`` (the gradient of the summed loss
with respect to the logits) and keeps only that buffer for backward. Over PTB's 10,000 words this
part is two thirds of a language model's training step.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .._checks import fail

__all__ = ["linear_cross_entropy"]


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None, targets: Tensor) -> Tensor:
        logits = x @ weight.t() if bias is None else torch.addmm(bias, x, weight.t())     # (N, V)
        lse = torch.logsumexp(logits, 1)                                                # (N,)
        loss = (lse - logits.gather(1, targets[:, None])[:, 0]).mean()
        if any(ctx.needs_input_grad[:3]):
            grad = logits.sub_(lse[:, None]).exp_()                                     # softmax, in place
            grad[torch.arange(targets.numel(), device=targets.device), targets] -= 1.0
            ctx.save_for_backward(x, weight, grad)
            ctx.has_bias = bias is not None
        return loss

    @staticmethod
    def backward(ctx, grad_loss: Tensor):
        x, weight, grad = ctx.saved_tensors
        scale = grad_loss / grad.shape[0]                                               # the mean over N
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = (grad @ weight).mul_(scale)
        if ctx.needs_input_grad[1]:
            grad_w = (grad.t() @ x).mul_(scale)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad.sum(0).mul_(scale)
        return grad_x, grad_w, grad_b, None


def linear_cross_entropy(x: Tensor, weight: Tensor, bias: Tensor | None, targets: Tensor) -> Tensor:
    """``F.cross_entropy(F.linear(x, weight, bias), targets)`` (the mean over the N rows), with
    the same value and gradients, computed in one node: x (N, H), weight (V, H), bias (V,) or
    None, targets (N,) int64 in [0, V)."""
    if not (isinstance(x, Tensor) and x.dim() == 2 and isinstance(weight, Tensor) and weight.dim() == 2
            and x.shape[1] == weight.shape[1]):
        fail("linear_cross_entropy", "x", "(N, H) beside a weight (V, H)",
             f"{tuple(getattr(x, 'shape', ()))} and {tuple(getattr(weight, 'shape', ()))}")
    if not (isinstance(targets, Tensor) and targets.dtype == torch.long and targets.shape == x.shape[:1]):
        got = f"{targets.dtype} {tuple(targets.shape)}" if isinstance(targets, Tensor) else type(targets).__name__
        fail("linear_cross_entropy", "targets", f"an int64 tensor ({x.shape[0]},)", got, kind=TypeError)
    if x.shape[0] == 0:
        fail("linear_cross_entropy", "x", "at least one row", "none")
    V = weight.shape[0]
    if not (0 <= int(targets.min()) and int(targets.max()) < V):
        fail("linear_cross_entropy", "targets", f"ids in [0, {V})",
             f"ids from {int(targets.min())} to {int(targets.max())}")
    return _LinearCrossEntropy.apply(x, weight, bias, targets)
