"""The fast engine: every cell's recurrence compiled, forward and backward.

Layers call :func:`run` where :func:`supports` says yes; it returns what the reference loop
returns (tested equal to it in float64). The compiled part (``csrc/``: one file per
kernel family, and the matrix products, memory and threading they share) runs the sequential
recurrence with a hand-written backward, and projects the input there too, step by step, so
that no (B, T, gates) projection is written and read back. The extension is compiled when
lstmkit is installed (``setup.py``); an install without it (or whose sources changed since)
builds it on first use with ``torch.utils.cpp_extension`` (a C++ compiler and ninja needed),
cached per install (:mod:`.build`: a lock no dead process holds, a time limit); if it cannot be
built or loaded in time, one warning says so and the layers keep the reference loops.
``LSTMKIT_ENGINE=reference`` turns it off; ``LSTMKIT_ENGINE=jit`` ignores the binary built at
install and uses the first-use build. Autograd, ``torch.compile`` and ``torch.export`` see
the recurrence as one custom op (:mod:`.ops`).
"""

from __future__ import annotations

import os
import warnings

import torch
from torch import Tensor

from ..cells import Cell
from ..cells.user import UserCell
from . import build, ops, programs, scan
from .kernels import KERNELS, Kernel, empty
from .scan import linear_scan

__all__ = ["load", "available", "supports", "kernel_of", "accepts", "run", "step", "load_error", "empty_cache",
           "cache_info", "DTYPES",
           "linear_scan"]

#: The dtypes the kernels are compiled for; the engine runs on the CPU.
DTYPES = (torch.float32, torch.float64, torch.bfloat16)

_state: dict = {"tried": False, "ext": None, "error": None}


def load(*, verbose: bool = False, strict: bool = False):
    """The compiled extension: the one built at install, else built on first call; None (after
    one warning) if it cannot be had.

    The first-use build is cached per install and never hangs (see :mod:`.build`). ``strict=True`` raises
    the build error instead of warning; ``verbose=True`` shows the compiler's output.
    """
    if _state["tried"]:
        if strict and _state["ext"] is None:
            raise RuntimeError(f"lstmkit engine unavailable: {_state['error']}")
        return _state["ext"]
    _state["tried"] = True
    mode = os.environ.get("LSTMKIT_ENGINE", "").lower()
    if mode == "reference":
        _state["error"] = "turned off by LSTMKIT_ENGINE=reference"
        return None
    try:
        ext = (None if mode == "jit" else build.installed()) or build.find_or_build(verbose=verbose)
        programs.check_ops(ext)
        _state["ext"] = ext
    except Exception as err:  # noqa: BLE001 - any failure means: fall back, once, loudly
        _state["error"] = f"{type(err).__name__}: {str(err).strip().splitlines()[-1] if str(err).strip() else ''}"
        if strict:
            raise
        warnings.warn(f"lstmkit: the fast engine could not be built or loaded ({_state['error']}); layers use the "
                      "reference loops (same results, slower). `python -m lstmkit._engine` shows the build log.",
                      RuntimeWarning, stacklevel=2)
    return _state["ext"]


ops.bind(load)
scan.bind(load)


def load_error() -> str | None:
    """Why the engine is unavailable (None if it loaded or was not tried yet)."""
    return _state["error"]


@torch.compiler.assume_constant_result      # torch.compile runs it once, eagerly, and keeps the answer
def available() -> bool:
    """Whether the engine could be built and loaded (it is built on the first call)."""
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


def kernel_of(cell: Cell) -> Kernel | None:
    """The engine's adapter for ``cell``: its class's kernel (exactly; a subclass may change the
    maths), or for a :class:`~lstmkit.cells.UserCell` the programs of its step (None, after one
    warning, where the step cannot be lowered), else None."""
    kernel = KERNELS.get(type(cell))
    if kernel is None and isinstance(cell, UserCell):
        kernel = programs.kernel_of(cell)
    return kernel


def supports(cell: Cell) -> bool:
    """Whether the engine can run this cell (see :func:`kernel_of`)."""
    return kernel_of(cell) is not None


def accepts(x: Tensor) -> str | None:
    """None if the engine can take input like ``x`` (on the CPU, one of :data:`DTYPES`), else what
    it got instead: ``"device cuda:0"`` or ``"dtype torch.float16"``."""
    if x.device.type != "cpu":
        return f"device {x.device}"
    if x.dtype not in DTYPES:
        return f"dtype {x.dtype}"
    return None


def run(cell: Cell, x: Tensor, state: tuple, lengths: Tensor | None) -> tuple[Tensor, tuple]:
    """The recurrence of ``cell`` over batch-first ``x`` (B, T, I): ``(Y, final_state)``.

    ``Y`` (B, T, O) holds the output after every step; for a row past its length it holds the
    carried state (the caller zeroes those). ``lengths`` is already checked. It runs through the
    custom op ``torch.ops.lstmkit.recurrence`` (see :mod:`.ops`), which autograd, ``torch.compile``
    and ``torch.export`` see as one node; an eager call that records no graph runs the op's body
    directly.
    """
    kernel = kernel_of(cell)
    x = x.contiguous()
    params = [p if p is not None else empty(x) for p in kernel.params(cell)]
    engine_state = [s.contiguous() for s in kernel.to_engine_state(cell, state)]
    save = torch.is_grad_enabled() and (x.requires_grad or any(t.requires_grad for t in params + engine_state))
    lengths_arg = lengths.contiguous() if lengths is not None else empty(x).long()
    if save or torch.compiler.is_compiling():
        outputs = ops.recurrence(kernel.name, kernel.spec(cell), x, params, engine_state, lengths_arg, save)
        Y, finals = outputs[0], outputs[1:1 + len(engine_state)]
    else:                           # inference, eager: the op's own body, without its dispatch (~50 µs a call)
        Y, finals, _ = kernel.forward(load(), kernel.spec(cell), x, params, engine_state, lengths_arg, False)
    return kernel.outputs(cell, Y), tuple(kernel.from_engine_state(cell, *finals))


def step(cell: Cell, x_t: Tensor, state: tuple) -> tuple[Tensor, tuple]:
    """One step of ``cell`` from ``state``: ``x_t`` (B, I) -> ``(y_t, new_state)``, as
    :func:`run` over a sequence of one step, without an autograd node (for steps that need no
    gradient: streaming and generation). Arguments are already checked."""
    return kernel_of(cell).step(load(), cell, x_t, state)
