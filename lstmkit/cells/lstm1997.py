"""The original LSTM of Hochreiter & Schmidhuber (1997): memory-cell blocks and the CEC."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_positive_int, fail
from ._base import Cell, State
from ._registry import register

__all__ = ["LSTM1997"]


def _scaled_g(x: Tensor) -> Tensor:
    return 4 * torch.sigmoid(x) - 2          # in [-2, 2]


def _scaled_h(x: Tensor) -> Tensor:
    return 2 * torch.sigmoid(x) - 1          # in [-1, 1]


_G = {"scaled": _scaled_g, "logistic": torch.sigmoid, "tanh": torch.tanh, "identity": lambda x: x}
_H = {"scaled": _scaled_h, "tanh": torch.tanh, "identity": lambda x: x}
_RECURRENT = ("all", "cells", "none")
_BIAS = ("all", "gates", "none")


class LSTM1997(Cell):
    r"""The 1997 memory cell: input and output gates, no forget gate, constant error carousel.

    ``hidden_size`` cells are grouped in N = hidden_size / ``cell_size`` blocks of S = ``cell_size``
    cells; the S cells of block j (units j·S … j·S+S−1) share one input gate and one output gate:

    .. math::
        u_{t-1} &= [y^c_{t-1}, y^{in}_{t-1}, y^{out}_{t-1}] \quad\text{(the recurrent source)} \\
        y^{in}_j &= \sigma(W_{in,j} [x_t, u_{t-1}] + b_{in,j}), \qquad
        y^{out}_j = \sigma(W_{out,j} [x_t, u_{t-1}] + b_{out,j}) \\
        s_{jv}(t) &= s_{jv}(t-1) + y^{in}_j \, g(W_{c,jv} [x_t, u_{t-1}] + b_{c,jv}) \quad\text{(CEC, self-weight 1)} \\
        y^c_{jv}(t) &= y^{out}_j \, h(s_{jv}(t))

    with g(x) = 4σ(x) − 2 ∈ [−2, 2] and h(x) = 2σ(x) − 1 ∈ [−1, 1] ("scaled", the paper's).

    Options: ``truncate=True`` gives the paper's truncated gradient: the recurrent source enters
    every net input detached, so errors flow back only through the CECs, where
    ∂s(T)/∂s(t) = 1 exactly; ``False`` is full BPTT. ``recurrent`` chooses the source u:
    "all" (cells and gates: the paper's fully recurrent hidden layer), "cells" (cell outputs only)
    or "none". ``bias``: "all" hidden units, "gates" only, or "none" (True/False mean all/none).
    ``g`` ∈ {scaled, logistic, tanh, identity}, ``h`` ∈ {scaled, tanh, identity}.
    ``output_gate=False`` removes the output gate (Exp. 2a); ``forget_gate=True`` adds the forget
    gate of Gers et al. (2000), s(t) = y^φ s(t−1) + y^in g, one per block.

    Row order in ``weight_ih`` (R, I), ``weight_hh`` (R, U) and ``bias``: i (N rows), f (N, if any),
    g (H), o (N, if any); R = H + (gates)·N. ``gate_bias`` takes per-block values for i, f, o
    (e.g. ``{"o": [-1, -2, -3, -4]}`` staggers output-gate biases) and per-cell values for g.
    State: ``(y_c, s)`` (B, H) each, plus the gate activations (B, gates·N) when ``recurrent="all"``.
    """

    def __init__(self, input_size: int, hidden_size: int, *, cell_size: int = 1, truncate: bool = False,
                 recurrent: str = "all", bias: bool | str = "all", g: str = "scaled", h: str = "scaled",
                 output_gate: bool = True, forget_gate: bool = False,
                 gate_bias: Mapping[str, float | Sequence[float]] | None = None, init_range: float | None = None):
        super().__init__(input_size, hidden_size)
        S = check_positive_int("LSTM1997", "cell_size", cell_size)
        if hidden_size % S:
            fail("LSTM1997", "cell_size", f"a divisor of hidden_size={hidden_size}", S)
        if recurrent not in _RECURRENT:
            fail("LSTM1997", "recurrent", f"one of {list(_RECURRENT)}", repr(recurrent))
        bias = {True: "all", False: "none"}.get(bias, bias) if isinstance(bias, bool) else bias
        if bias not in _BIAS:
            fail("LSTM1997", "bias", f"one of {list(_BIAS)} or a bool", repr(bias))
        if g not in _G:
            fail("LSTM1997", "g", f"one of {sorted(_G)}", repr(g))
        if h not in _H:
            fail("LSTM1997", "h", f"one of {sorted(_H)}", repr(h))
        I, H, N = input_size, hidden_size, hidden_size // S
        self.cell_size, self.blocks = S, N
        self.truncate, self.recurrent, self.bias_mode = bool(truncate), recurrent, bias
        self.g_name, self.h_name = g, h
        self.output_gate, self.forget_gate = bool(output_gate), bool(forget_gate)
        self.gates = tuple(k for k, on in (("i", True), ("f", self.forget_gate), ("g", True),
                                           ("o", self.output_gate)) if on)
        self._rows = {k: (H if k == "g" else N) for k in self.gates}      # rows of each block of W
        R = sum(self._rows.values())
        n_gate_rows = R - H
        U = {"all": R, "cells": H, "none": 0}[recurrent]                   # recurrent source size
        self.weight_ih = nn.Parameter(torch.empty(R, I))
        self.weight_hh = nn.Parameter(torch.empty(R, U)) if U else None
        self.bias = nn.Parameter(torch.empty({"all": R, "gates": n_gate_rows, "none": 0}[bias])) \
            if bias != "none" else None
        self._init_uniform(init_range)
        self._apply_gate_bias(gate_bias)

    def _gate_rows(self):
        if self.bias is None:
            return {}
        rows, start = {}, 0
        for k in self.gates:
            if k == "g" and self.bias_mode == "gates":
                continue
            rows[k] = ((self.bias,), slice(start, start + self._rows[k]))
            start += self._rows[k]
        return rows

    def _full_bias(self) -> Tensor | None:
        """The bias over all R rows (zeros for the cell inputs when only gates are biased)."""
        if self.bias_mode != "gates":
            return self.bias
        parts, start = [], 0
        for k in self.gates:
            n = self._rows[k]
            if k == "g":
                parts.append(self.bias.new_zeros(n))
            else:
                parts.append(self.bias[start:start + n])
                start += n
        return torch.cat(parts)

    def state_shapes(self):
        H = self.hidden_size
        gates = ((len(self.gates) - 1) * self.blocks,)
        return ((H,), (H,), gates) if self.recurrent == "all" else ((H,), (H,))

    def forward(self, x_t: Tensor, state: State) -> tuple[Tensor, State]:
        y_c, s = state[0], state[1]                                        # (B, H) each
        S = self.cell_size
        z = F.linear(x_t, self.weight_ih, self._full_bias())               # (B, R)
        if self.weight_hh is not None:
            u = torch.cat([y_c, state[2]], dim=1) if self.recurrent == "all" else y_c   # (B, U)
            z = z + F.linear(u.detach() if self.truncate else u, self.weight_hh)
        pre = dict(zip(self.gates, z.split([self._rows[k] for k in self.gates], dim=1)))
        y_in = torch.sigmoid(pre["i"])                                     # (B, N)
        y_phi = torch.sigmoid(pre["f"]) if self.forget_gate else None      # (B, N)
        y_out = torch.sigmoid(pre["o"]) if self.output_gate else None      # (B, N)
        update = y_in.repeat_interleave(S, dim=1) * _G[self.g_name](pre["g"])  # (B, H)
        s = (s if y_phi is None else y_phi.repeat_interleave(S, dim=1) * s) + update
        y_c = _H[self.h_name](s)
        if y_out is not None:
            y_c = y_out.repeat_interleave(S, dim=1) * y_c
        if self.recurrent != "all":
            return y_c, (y_c, s)
        gates = torch.cat([a for a in (y_in, y_phi, y_out) if a is not None], dim=1)  # (B, gates*N)
        return y_c, (y_c, s, gates)

    def extra_repr(self) -> str:
        return (f"{self.input_size}, {self.hidden_size}, cell_size={self.cell_size}, truncate={self.truncate}, "
                f"recurrent={self.recurrent!r}, bias={self.bias_mode!r}, g={self.g_name!r}, h={self.h_name!r}, "
                f"output_gate={self.output_gate}, forget_gate={self.forget_gate}")


@register("lstm1997")
def lstm1997(input_size: int, hidden_size: int, *, cell_size: int = 1, truncate: bool = False,
             recurrent: str = "all", bias: bool | str = "all", g: str = "scaled", h: str = "scaled",
             output_gate: bool = True, forget_gate: bool = False,
             gate_bias: Mapping[str, float | Sequence[float]] | None = None,
             init_range: float | None = None) -> LSTM1997:
    """The original LSTM (Hochreiter & Schmidhuber 1997): memory-cell blocks, CEC, no forget gate."""
    return LSTM1997(input_size, hidden_size, cell_size=cell_size, truncate=truncate, recurrent=recurrent,
                    bias=bias, g=g, h=h, output_gate=output_gate, forget_gate=forget_gate, gate_bias=gate_bias,
                    init_range=init_range)
