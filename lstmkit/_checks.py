"""Validation helpers for the public boundary.

Every message names the class and the argument, what was expected and what was received.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["fail", "check_tensor", "check_lengths", "check_state", "check_positive_int", "check_probability",
           "check_std", "check_seed", "parameter_like", "SEED_MAX"]

#: The largest seed a random generator takes (PyTorch's generators hold 64 bits).
SEED_MAX = 2**64 - 1


def fail(owner: str, argument: str, expected: str, got: object, *, kind: type[Exception] = ValueError):
    """Raise ``kind`` with the project's message format."""
    raise kind(f"{owner}: argument '{argument}' expected {expected}, got {got}")


def check_positive_int(owner: str, argument: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, torch.SymInt)):     # SymInt: a traced size
        fail(owner, argument, "an int", f"{type(value).__name__} {value!r}", kind=TypeError)
    if value < 1:
        fail(owner, argument, "a positive int", value)
    return value


def check_seed(owner: str, argument: str, value: object) -> int:
    """A seed: an int from 0 to :data:`SEED_MAX`."""
    if isinstance(value, bool) or not isinstance(value, int):
        fail(owner, argument, "an int", f"{type(value).__name__} {value!r}", kind=TypeError)
    if not 0 <= value <= SEED_MAX:
        fail(owner, argument, "an int from 0 to 2**64 - 1", value)
    return value


def check_probability(owner: str, argument: str, value: object) -> float:
    """A dropout-like rate in [0, 1)."""
    if not (isinstance(value, (int, float)) and not isinstance(value, bool) and 0.0 <= value < 1.0):
        fail(owner, argument, "a probability in [0, 1)", repr(value))
    return float(value)


def check_std(owner: str, argument: str, value: object) -> float:
    """A standard deviation: a float >= 0."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        fail(owner, argument, "a float", repr(value), kind=TypeError)
    if not value >= 0.0:
        fail(owner, argument, "a standard deviation >= 0", repr(value))
    return float(value)


def parameter_like(module: torch.nn.Module) -> Tensor | None:
    """The first parameter of ``module``: it gives the dtype and device the module computes in."""
    return next(iter(module.parameters()), None)


def check_tensor(owner: str, argument: str, x: object, *, dim: int, layout: str,
                 size: int | None = None, like: Tensor | None = None) -> Tensor:
    """Check a floating input of rank ``dim`` whose last axis has ``size`` features.

    ``layout`` spells the expected axes, e.g. ``"(batch, time, features)"``; ``like`` is a tensor
    (usually a parameter) whose dtype and device ``x`` must share.
    """
    if not isinstance(x, Tensor):
        fail(owner, argument, "a torch.Tensor", type(x).__name__, kind=TypeError)
    if not x.is_floating_point():
        fail(owner, argument, "a floating-point tensor", f"dtype {x.dtype}", kind=TypeError)
    if x.dim() != dim:
        fail(owner, argument, f"a {dim}-D tensor {layout}", f"shape {tuple(x.shape)}")
    if size is not None and x.shape[-1] != size:
        fail(owner, argument, f"{size} features in the last axis of {layout}", f"shape {tuple(x.shape)}")
    if like is not None:
        if x.dtype != like.dtype:
            fail(owner, argument, f"dtype {like.dtype} (the parameters' dtype)", f"dtype {x.dtype}",
                 kind=TypeError)
        if x.device != like.device:
            fail(owner, argument, f"device {like.device} (the parameters' device)", f"device {x.device}")
    return x


def check_lengths(owner: str, lengths: object, *, batch: int, time: int, device: torch.device) -> Tensor | None:
    """Return ``lengths`` as a (B,) int64 tensor on ``device`` with 0 <= lengths <= T, or None."""
    if lengths is None:
        return None
    if isinstance(lengths, Sequence) and not isinstance(lengths, (str, bytes)):
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in lengths):
            fail(owner, "lengths", "a sequence of ints", repr(list(lengths)), kind=TypeError)
        lengths = torch.tensor(list(lengths), dtype=torch.int64)
    if not isinstance(lengths, Tensor):
        fail(owner, "lengths", "a 1-D integer tensor or a list of ints", type(lengths).__name__, kind=TypeError)
    if lengths.is_floating_point() or lengths.is_complex() or lengths.dtype == torch.bool:
        fail(owner, "lengths", "an integer tensor", f"dtype {lengths.dtype}", kind=TypeError)
    if lengths.shape != (batch,):
        fail(owner, "lengths", f"shape ({batch},), one length per sequence", f"shape {tuple(lengths.shape)}")
    # the values are data: a compiled or exported graph (torch.compile, torch.export) cannot branch
    # on them, so there the range is the caller's to keep (the eager call checks it)
    if batch and not torch.compiler.is_compiling() and (int(lengths.min()) < 0 or int(lengths.max()) > time):
        fail(owner, "lengths", f"values in [0, {time}] (the time axis has {time} steps)",
             f"values in [{int(lengths.min())}, {int(lengths.max())}]")
    return lengths.to(device=device, dtype=torch.int64)


def check_state(owner: str, argument: str, state: object, *, shapes: Sequence[tuple[int, ...]],
                like: Tensor) -> tuple[Tensor, ...]:
    """Check a recurrent state: a tuple of tensors of the given full shapes, dtype and device."""
    if isinstance(state, Tensor) and len(shapes) == 1:
        state = (state,)
    if isinstance(state, tuple) and len(state) == len(shapes):
        # The streaming step's hot path: one pass of cheap comparisons; any mismatch falls through
        # to the checks below, which name it.
        dtype, device = like.dtype, like.device
        for s, shape in zip(state, shapes):
            if not (isinstance(s, Tensor) and s.shape == shape and s.dtype is dtype and s.device == device):
                break
        else:
            return state
    if not isinstance(state, (tuple, list)) or not all(isinstance(s, Tensor) for s in state):
        fail(owner, argument, f"a tuple of {len(shapes)} tensor(s)", type(state).__name__, kind=TypeError)
    if len(state) != len(shapes):
        fail(owner, argument, f"a tuple of {len(shapes)} tensor(s) with shapes {list(shapes)}",
             f"{len(state)} tensor(s)")
    for k, (s, shape) in enumerate(zip(state, shapes)):
        if tuple(s.shape) != tuple(shape):
            fail(owner, f"{argument}[{k}]", f"shape {tuple(shape)}", f"shape {tuple(s.shape)}")
        if s.dtype != like.dtype:
            fail(owner, f"{argument}[{k}]", f"dtype {like.dtype} (the parameters' dtype)", f"dtype {s.dtype}",
                 kind=TypeError)
        if s.device != like.device:
            fail(owner, f"{argument}[{k}]", f"device {like.device} (the parameters' device)", f"device {s.device}")
    return tuple(state)
