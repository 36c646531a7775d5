"""The bidirectional surrogate task (docs/classic_tasks.md §2.10): targets that need past *and* future inputs."""

from __future__ import annotations

import torch
from torch import Tensor

from ..._checks import check_positive_int, fail
from ...layers import valid_steps

__all__ = ["brnn_surrogate"]


def brnn_surrogate(batch: int, length: int = 50, *, target: str = "regression", d_p: int = 0, d_f: int = 5,
                   w: int = 2, min_length: int | None = None, seed: int = 0,
                   dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor, Tensor]:
    r"""A batch of the BRNN surrogate task: ``(x, y, lengths)``.

    ``x`` (B, T, 1) is U[−1, 1] noise; each sequence has a length drawn uniformly from
    [``min_length``, ``length``] (all ``length`` if None), and is zero past it.
    Targets (B, T, 1), with zero padding beyond each sequence's own ends:

    - ``"regression"``: :math:`y_t = (x_{t-d_p} + x_{t+d_f}) / 2`;
    - ``"classification"``: :math:`y_t = 1[\sum_{\tau=t-w}^{t+w} x_\tau > 0]`.

    A forward RNN cannot see :math:`x_{t+d_f}`, so it fails once ``d_f`` > 0; a bidirectional
    one can solve every setting. The same ``seed`` gives the same batch.
    """
    check_positive_int("brnn_surrogate", "batch", batch)
    T = check_positive_int("brnn_surrogate", "length", length)
    if target not in ("regression", "classification"):
        fail("brnn_surrogate", "target", "'regression' or 'classification'", repr(target))
    for name, value in (("d_p", d_p), ("d_f", d_f), ("w", w)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            fail("brnn_surrogate", name, "a non-negative int", repr(value))
    lo = T if min_length is None else min_length
    if isinstance(lo, bool) or not isinstance(lo, int) or not 1 <= lo <= T:
        fail("brnn_surrogate", "min_length", f"an int in [1, {T}]", repr(min_length))
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(lo, T + 1, (batch,), generator=g)
    valid = valid_steps(lengths, T)                                         # (B, T)
    x = (torch.rand(batch, T, generator=g, dtype=torch.float64) * 2 - 1) * valid   # (B, T)
    # zero padding on both sides makes every shifted read well defined
    pad = max(d_p, d_f, w)
    xp = torch.nn.functional.pad(x, (pad, pad))                             # (B, T + 2 pad)
    shifted = lambda k: xp[:, pad + k: pad + k + T]  # noqa: E731  x_{t+k}, zero outside
    if target == "regression":
        y = (shifted(-d_p) + shifted(d_f)) / 2
    else:
        y = (sum(shifted(k) for k in range(-w, w + 1)) > 0).to(torch.float64)
    y = y * valid
    return x[..., None].to(dtype), y[..., None].to(dtype), lengths
