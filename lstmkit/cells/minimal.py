r"""The minimal RNNs of Feng et al. 2024 ("Were RNNs All We Needed?"): minGRU and minLSTM.

Their gates read the input only, never the state, so a whole sequence is a linear recurrence
``h_t = a_t * h_{t-1} + b_t`` whose coefficients come from the input: :meth:`MinimalRNN.scan`
computes all the coefficients at once and runs the recurrence through the engine's compiled
linear scan (a few operations per element, no products), or, without the engine (another
device, bfloat16), in parallel over time in log space as the paper does, chunk by chunk (within
a chunk the cumulated log-coefficients stay small enough for float32; between chunks the state
is carried). Both give what the step loop gives (tested in float64, outputs and gradients).
The candidate goes through ``g(v) = v + 1/2`` for ``v >= 0`` and ``sigmoid(v)`` below, which
keeps it positive (the log-space form needs ``b_t > 0``); the step uses the same ``g``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._base import Cell, State
from ._registry import register

__all__ = ["MinimalRNN", "MinGRU", "MinLSTM", "g", "log_g", "softplus"]

CHUNK = 64          # time steps per chunk of the parallel scan


def softplus(v: Tensor) -> Tensor:
    """``log(1 + exp(v))`` exactly (``F.softplus`` returns ``v`` itself above 20, 2e-9 off)."""
    return torch.logaddexp(v, torch.zeros((), dtype=v.dtype, device=v.device))


def g(v: Tensor) -> Tensor:
    """The paper's positive activation of the candidate: ``v + 1/2`` for ``v >= 0``, ``sigmoid(v)`` below."""
    return torch.where(v >= 0, v + 0.5, torch.sigmoid(v))


def log_g(v: Tensor) -> Tensor:
    """``log(g(v))``, computed without forming ``g``."""
    return torch.where(v >= 0, torch.log(F.relu(v) + 0.5), -softplus(-v))


class MinimalRNN(Cell):
    """What the minimal RNNs share: one input projection ``weight_ih`` (G·H, I) with ``bias``
    (G·H), no recurrent weights, a state ``(h,)``, and the parallel form :meth:`scan`.
    Subclasses give :meth:`coefficients` (log a_t, log b_t from the gates' pre-activations),
    :meth:`linear_coefficients` (a_t, b_t) and the step reads them."""

    def __init__(self, input_size: int, hidden_size: int, *, bias: bool = True, init_range: float | None = None,
                 gate_bias=None):
        super().__init__(input_size, hidden_size)
        G, H, I = len(self.gates), hidden_size, input_size
        self.weight_ih = nn.Parameter(torch.empty(G * H, I))
        self.bias = nn.Parameter(torch.empty(G * H)) if bias else None
        self._init_uniform(init_range)
        self._apply_gate_bias(gate_bias)

    def state_shapes(self):
        return ((self.hidden_size,),)

    def coefficients(self, gates: tuple[Tensor, ...]) -> tuple[Tensor, Tensor]:  # pragma: no cover - interface
        """``(log a_t, log b_t)`` of the gates' pre-activations (one tensor per gate, in the order
        of ``gates``), for the log-space scan."""
        raise NotImplementedError

    def linear_coefficients(self, gates: tuple[Tensor, ...]) -> tuple[Tensor, Tensor]:  # pragma: no cover
        """``(a_t, b_t)`` of the gates' pre-activations: the step's own maths, ``h_t = a_t h_{t-1} + b_t``."""
        raise NotImplementedError

    def project(self, x: Tensor) -> tuple[Tensor, ...]:
        """Each gate's pre-activation ``x W_g^T + b_g``: one product per gate, so that the backward
        writes no (..., G·H) concatenation of their gradients (a fifth of a minLSTM training step)."""
        G = len(self.gates)
        biases = self.bias.chunk(G) if self.bias is not None else (None,) * G
        return tuple(F.linear(x, w, b) for w, b in zip(self.weight_ih.chunk(G), biases))

    def forward(self, x_t: Tensor, state: State) -> tuple[Tensor, State]:
        a, b = self.linear_coefficients(self.project(x_t))
        h = a * state[0] + b
        return h, (h,)

    def scan(self, x: Tensor, state: State, valid: Tensor | None = None, *, recurrence=None) -> tuple[Tensor, State]:
        """The whole sequence at once: ``x`` (B, T, I), ``state`` ``(h,)``, ``valid`` (B, T) or None
        (steps past a sequence's length leave its state as it was) -> ``(y (B, T, H), (h_T,))``.

        ``recurrence(a, b, h0) -> h``, where given (the engine's compiled linear scan), runs the
        recurrence on the coefficients; else it runs in parallel in log space, chunk by chunk."""
        gates = self.project(x)                                            # (B, T, H) each
        if recurrence is not None:
            a, b = self.linear_coefficients(gates)                         # (B, T, H) each
            if valid is not None:
                keep = valid[..., None]
                a, b = a.masked_fill(~keep, 1.0), b.masked_fill(~keep, 0.0)
            y = recurrence(a, b, state[0])
            return y, (y[:, -1],)
        log_a, log_b = self.coefficients(gates)                            # (B, T, H) each
        if valid is not None:
            keep = valid[..., None]
            log_a = log_a.masked_fill(~keep, 0.0)                              # a = 1: the state stays
            log_b = log_b.masked_fill(~keep, torch.finfo(log_b.dtype).min / 4)   # b = 0, finite for the gradient
        (h,) = state
        ys = []
        for start in range(0, x.shape[1], CHUNK):
            cumulated = log_a[:, start:start + CHUNK].cumsum(1)                 # log of a_1 ... a_t in the chunk
            summed = torch.logcumsumexp(log_b[:, start:start + CHUNK] - cumulated, 1)
            y = cumulated.exp() * h[:, None] + (cumulated + summed).exp()
            ys.append(y)
            h = y[:, -1]
        y = torch.cat(ys, 1) if ys else x.new_zeros(x.shape[0], 0, self.hidden_size)
        return y, (h,)


class MinGRU(MinimalRNN):
    r"""minGRU (Feng et al. 2024).

    .. math::
        z_t = \sigma(W_z x_t + b_z),\quad \tilde h_t = g(W_h x_t + b_h),\quad
        h_t = (1 - z_t) \odot h_{t-1} + z_t \odot \tilde h_t

    Parameters: ``weight_ih`` (2H, I), gate order (z, h); ``bias`` (2H). State: ``(h,)``. Log-space
    coefficients: ``log a = -softplus(k_z)``, ``log b = -softplus(-k_z) + log g(k_h)``.
    """

    gates = ("z", "h")

    def linear_coefficients(self, gates: tuple[Tensor, ...]) -> tuple[Tensor, Tensor]:
        k_z, k_h = gates
        z = torch.sigmoid(k_z)
        return 1 - z, z * g(k_h)

    def coefficients(self, gates: tuple[Tensor, ...]) -> tuple[Tensor, Tensor]:
        k_z, k_h = gates
        return -softplus(k_z), -softplus(-k_z) + log_g(k_h)


class MinLSTM(MinimalRNN):
    r"""minLSTM (Feng et al. 2024), with its normalised gates.

    .. math::
        f_t = \sigma(W_f x_t + b_f),\quad i_t = \sigma(W_i x_t + b_i),\quad
        f'_t = \frac{f_t}{f_t + i_t},\quad i'_t = \frac{i_t}{f_t + i_t},\quad
        h_t = f'_t \odot h_{t-1} + i'_t \odot g(W_h x_t + b_h)

    Parameters: ``weight_ih`` (3H, I), gate order (f, i, h); ``bias`` (3H). State: ``(h,)``. Log-space
    coefficients, with ``d = softplus(-k_f) - softplus(-k_i)``: ``log f' = -softplus(d)``,
    ``log i' = -softplus(-d)``.
    """

    gates = ("f", "i", "h")

    def linear_coefficients(self, gates: tuple[Tensor, ...]) -> tuple[Tensor, Tensor]:
        k_f, k_i, k_h = gates
        keep = torch.sigmoid(F.logsigmoid(k_f) - F.logsigmoid(k_i))       # f / (f + i), in fewer, cheaper ops
        return keep, (1 - keep) * g(k_h)

    def coefficients(self, gates: tuple[Tensor, ...]) -> tuple[Tensor, Tensor]:
        k_f, k_i, k_h = gates
        d = softplus(-k_f) - softplus(-k_i)
        return -softplus(d), -softplus(-d) + log_g(k_h)


@register("mingru")
def mingru(input_size: int, hidden_size: int, *, bias: bool = True, init_range: float | None = None,
           gate_bias=None) -> MinGRU:
    """minGRU: gates from the input only, trained by a parallel scan (Feng et al. 2024)."""
    return MinGRU(input_size, hidden_size, bias=bias, init_range=init_range, gate_bias=gate_bias)


@register("minlstm")
def minlstm(input_size: int, hidden_size: int, *, bias: bool = True, init_range: float | None = None,
            gate_bias=None) -> MinLSTM:
    """minLSTM: normalised input and forget gates from the input only, a parallel scan (Feng et al. 2024)."""
    return MinLSTM(input_size, hidden_size, bias=bias, init_range=init_range, gate_bias=gate_bias)
