"""Vanilla (peephole) LSTM of Greff et al. and their eight variants."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import fail
from ._base import Cell, State
from ._registry import register

__all__ = ["PeepholeLSTM", "GREFF_VARIANTS"]


class PeepholeLSTM(Cell):
    r"""Vanilla LSTM of Greff et al. (2017): forget gate and peephole connections, full BPTT.

    .. math::
        g_t &= \tanh(W_g x_t + R_g y_{t-1} + b_g) && \text{block input} \\
        i_t &= \sigma(W_i x_t + R_i y_{t-1} + p_i \odot c_{t-1} + b_i) \\
        f_t &= \sigma(W_f x_t + R_f y_{t-1} + p_f \odot c_{t-1} + b_f) \\
        c_t &= g_t \odot i_t + c_{t-1} \odot f_t \\
        o_t &= \sigma(W_o x_t + R_o y_{t-1} + p_o \odot c_t + b_o) && \text{peeks at the new } c_t \\
        y_t &= \tanh(c_t) \odot o_t

    Each option removes or changes one component, giving the variants of "LSTM: A Search Space
    Odyssey" (the names registered in brackets): ``input_gate=False`` sets i ≡ 1 [nig],
    ``forget_gate=False`` f ≡ 1 [nfg], ``output_gate=False`` o ≡ 1 [nog], ``input_activation=False``
    makes g the identity [niaf], ``output_activation=False`` replaces tanh(c) by c [noaf],
    ``peepholes=False`` drops p [np], ``coupled=True`` sets f = 1 − i with no forget parameters
    [cifg], ``gate_recurrence=True`` adds :math:`R_{\cdot i} i_{t-1} + R_{\cdot f} f_{t-1} +
    R_{\cdot o} o_{t-1}` to every gate (nine H×H matrices in ``weight_gg``) [fgr]. Options combine.

    Gate order in ``weight_ih`` (G·H, I), ``weight_hh`` (G·H, H) and ``bias`` (G·H): the present
    gates out of (i, f, g, o), in that order (``self.gates``). Peephole vectors ``peephole_i``,
    ``peephole_f``, ``peephole_o`` (H each) exist for the present i, f, o gates. ``weight_gg``
    (K·H, K·H) maps the previous activations of the K present gates among (i, f, o) to their
    pre-activations, in the same order. State: ``(y, c)``, plus the previous gate activations
    (B, K·H) with ``gate_recurrence``.
    """

    def __init__(self, input_size: int, hidden_size: int, *, input_gate: bool = True, forget_gate: bool = True,
                 output_gate: bool = True, input_activation: bool = True, output_activation: bool = True,
                 peepholes: bool = True, coupled: bool = False, gate_recurrence: bool = False, bias: bool = True,
                 gate_bias: Mapping[str, float | Sequence[float]] | None = None, init_range: float | None = None):
        super().__init__(input_size, hidden_size)
        if coupled and not input_gate:
            fail("PeepholeLSTM", "coupled", "input_gate=True (the forget gate is 1 - i)", "input_gate=False")
        if coupled and not forget_gate:
            fail("PeepholeLSTM", "forget_gate", "True with coupled=True (f = 1 - i)", "forget_gate=False")
        I, H = input_size, hidden_size
        self.input_gate, self.forget_gate, self.output_gate = bool(input_gate), bool(forget_gate), bool(output_gate)
        self.input_activation, self.output_activation = bool(input_activation), bool(output_activation)
        self.peepholes, self.coupled, self.gate_recurrence = bool(peepholes), bool(coupled), bool(gate_recurrence)
        present = {"i": self.input_gate, "f": self.forget_gate and not self.coupled, "g": True,
                   "o": self.output_gate}
        self.gates = tuple(g for g in ("i", "f", "g", "o") if present[g])
        self.recurrent_gates = tuple(g for g in self.gates if g != "g")  # gates with parameters of their own
        G, K = len(self.gates), len(self.recurrent_gates)
        self.weight_ih = nn.Parameter(torch.empty(G * H, I))
        self.weight_hh = nn.Parameter(torch.empty(G * H, H))
        self.bias = nn.Parameter(torch.empty(G * H)) if bias else None
        for g in self.recurrent_gates:
            self.register_parameter(f"peephole_{g}", nn.Parameter(torch.empty(H)) if self.peepholes else None)
        self.weight_gg = nn.Parameter(torch.empty(K * H, K * H)) if self.gate_recurrence and K else None
        self._init_uniform(init_range)
        self._apply_gate_bias(gate_bias)

    def state_shapes(self):
        H = self.hidden_size
        extra = ((len(self.recurrent_gates) * H,),) if self.weight_gg is not None else ()
        return ((H,), (H,)) + extra

    def _peep(self, gate: str, c: Tensor) -> Tensor | float:
        p = getattr(self, f"peephole_{gate}", None)
        return 0.0 if p is None else p * c

    def forward(self, x_t: Tensor, state: State) -> tuple[Tensor, State]:
        y, c = state[0], state[1]                                          # (B, H) each
        H = self.hidden_size
        z = F.linear(x_t, self.weight_ih, self.bias) + F.linear(y, self.weight_hh)  # (B, G*H)
        pre = dict(zip(self.gates, z.split(H, dim=1)))                     # gate -> (B, H)
        if self.weight_gg is not None:
            rec = F.linear(state[2], self.weight_gg).split(H, dim=1)       # K x (B, H)
            for g, r in zip(self.recurrent_gates, rec):
                pre[g] = pre[g] + r
        i = torch.sigmoid(pre["i"] + self._peep("i", c)) if self.input_gate else None
        if self.coupled:
            f = 1 - i
        else:
            f = torch.sigmoid(pre["f"] + self._peep("f", c)) if self.forget_gate else None
        g = torch.tanh(pre["g"]) if self.input_activation else pre["g"]
        c = (g if i is None else g * i) + (c if f is None else c * f)
        o = torch.sigmoid(pre["o"] + self._peep("o", c)) if self.output_gate else None
        y = torch.tanh(c) if self.output_activation else c
        if o is not None:
            y = y * o
        if self.weight_gg is None:
            return y, (y, c)
        acts = {"i": i, "f": f, "o": o}
        return y, (y, c, torch.cat([acts[g] for g in self.recurrent_gates], dim=1))

    def _torch_rnn(self):
        """``nn.LSTM``'s form where the options leave plain LSTM maths (``np``: no peepholes;
        :meth:`Cell.torch_rnn`), else None."""
        if self.peepholes or self.coupled or self.weight_gg is not None or self.gates != ("i", "f", "g", "o") \
                or not (self.input_activation and self.output_activation):
            return None
        return "lstm", self.weight_ih, self.weight_hh, self.bias, None

    def extra_repr(self) -> str:
        flags = ["input_gate", "forget_gate", "output_gate", "input_activation", "output_activation", "peepholes"]
        off = [f"{k}=False" for k in flags if not getattr(self, k)]
        on = [f"{k}=True" for k in ("coupled", "gate_recurrence") if getattr(self, k)]
        return ", ".join([f"{self.input_size}, {self.hidden_size}", *off, *on, f"bias={self.bias is not None}"])


#: The eight variants of Greff et al., as options of :class:`PeepholeLSTM`.
GREFF_VARIANTS: dict[str, dict[str, bool]] = {
    "nig": {"input_gate": False},
    "nfg": {"forget_gate": False},
    "nog": {"output_gate": False},
    "niaf": {"input_activation": False},
    "noaf": {"output_activation": False},
    "np": {"peepholes": False},
    "cifg": {"coupled": True},
    "fgr": {"gate_recurrence": True},
}


@register("peephole")
def peephole(input_size: int, hidden_size: int, *, bias: bool = True,
             gate_bias: Mapping[str, float | Sequence[float]] | None = None,
             init_range: float | None = None) -> PeepholeLSTM:
    """Vanilla LSTM of Greff et al.: forget gate and peepholes."""
    return PeepholeLSTM(input_size, hidden_size, bias=bias, gate_bias=gate_bias, init_range=init_range)


def _register_variant(code: str, options: dict[str, bool]) -> None:
    def build(input_size: int, hidden_size: int, *, bias: bool = True,
              gate_bias: Mapping[str, float | Sequence[float]] | None = None,
              init_range: float | None = None) -> PeepholeLSTM:
        return PeepholeLSTM(input_size, hidden_size, bias=bias, gate_bias=gate_bias, init_range=init_range,
                            **options)

    build.__name__ = code
    build.__doc__ = f"Greff et al. variant {code.upper()}: PeepholeLSTM({', '.join(f'{k}={v}' for k, v in options.items())})."
    register(code)(build)


for _code, _options in GREFF_VARIANTS.items():
    _register_variant(_code, _options)
