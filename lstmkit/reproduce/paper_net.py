"""The paper's networks (H&S97): one hidden layer of 1997 memory-cell blocks and logistic outputs.

A :class:`PaperNet` says how the network is wired (docs/classic_tasks.md §1.1 and each experiment's table) and
:class:`PaperWeights` holds one initialised copy, trained by the compiled truncated-gradient
learner in :mod:`._rtrl`. Weights are stored as full matrices with 0/1 connectivity masks:

- ``W`` (R, Z): rows = input gates (N), cell inputs (H = N·S), output gates (N, if any); columns
  = inputs (I), the recurrent source u = [cell outputs (H), input gates (N), output gates (N)]
  when the hidden layer is fully recurrent, and a bias column;
- ``Wo`` (O, H + I + 1): outputs ← cells, inputs (where the experiment says so) and a bias.

The number of weights is the number of connections the masks allow; it equals the paper's
"# weights" column for every experiment (tested).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..cells import make
from ..data.synthetic import Flat
from . import _rtrl

__all__ = ["PaperNet", "PaperWeights"]


@dataclass(frozen=True)
class PaperNet:
    """Wiring and initialisation of one paper network."""

    inputs: int
    blocks: int
    cell_size: int
    outputs: int
    recurrent: bool = True              # cells and gates <- cells and gates (False: <- inputs only)
    cell_bias: bool = True              # cell inputs have a bias
    gate_bias: bool = True              # gates have a bias
    output_gate: bool = True
    output_sees_inputs: bool = False    # outputs <- inputs as well as cells
    output_bias: bool = False
    g: str = "scaled"                   # cell-input squashing: scaled = 4σ−2 ∈ [−2, 2]
    h: str = "scaled"                   # cell-output squashing: scaled = 2σ−1 ∈ [−1, 1]
    init_range: float = 0.1             # all weights U[−r, r] ...
    input_gate_bias: tuple[float, ...] | None = None    # ... except these fixed gate biases
    output_gate_bias: tuple[float, ...] | None = None

    @property
    def hidden(self) -> int:
        return self.blocks * self.cell_size

    @property
    def rows(self) -> int:
        return self.hidden + self.blocks * (2 if self.output_gate else 1)

    @property
    def recurrent_size(self) -> int:
        return self.rows if self.recurrent else 0

    def masks(self) -> tuple[np.ndarray, np.ndarray]:
        """The 0/1 connectivity of ``W`` (R, Z) and ``Wo`` (O, H + I + 1)."""
        I, H, N = self.inputs, self.hidden, self.blocks
        Wm = np.ones((self.rows, I + self.recurrent_size + 1))
        Wm[:N, -1] = self.gate_bias
        Wm[N:N + H, -1] = self.cell_bias
        Wm[N + H:, -1] = self.gate_bias
        Wom = np.zeros((self.outputs, H + I + 1))
        Wom[:, :H] = 1.0
        Wom[:, H:H + I] = self.output_sees_inputs
        Wom[:, -1] = self.output_bias
        return Wm, Wom

    def weight_count(self) -> int:
        Wm, Wom = self.masks()
        return int(Wm.sum() + Wom.sum())

    def init(self, seed: int | Sequence[int]) -> PaperWeights:
        """Weights U[−init_range, init_range] (seeded), fixed gate biases where given, masked."""
        rng = np.random.default_rng(seed)
        Wm, Wom = self.masks()
        r = self.init_range
        W = rng.uniform(-r, r, Wm.shape) * Wm
        Wo = rng.uniform(-r, r, Wom.shape) * Wom
        N, H = self.blocks, self.hidden
        for values, first in ((self.input_gate_bias, 0), (self.output_gate_bias, N + H)):
            if values is not None:
                if len(values) != N:
                    raise ValueError(f"PaperNet: a gate bias per block expected ({N}), got {len(values)}")
                W[first:first + N, -1] = values
        return PaperWeights(self, W, Wm, Wo, Wom)


@dataclass
class PaperWeights:
    """One network's weights and the operations of the paper's learner on them."""

    net: PaperNet
    W: np.ndarray
    Wm: np.ndarray
    Wo: np.ndarray
    Wom: np.ndarray

    def run(self, data: Flat, *, lr: float = 0.0, train: bool = False, per_step: bool = False) -> np.ndarray:
        """Outputs (steps, O) on the sequences of ``data``; with ``train`` the weights learn online
        from each sequence in turn (gradient of ½·SSE at the steps ``data.mask`` marks)."""
        n = self.net
        if data.size != n.inputs or data.target.shape[1] != n.outputs:
            raise ValueError(f"PaperWeights.run: data with {n.inputs} inputs and {n.outputs} outputs expected, "
                             f"got {data.size} and {data.target.shape[1]}")
        steps = len(data.mask)
        onehot = data.symbols is not None
        x = np.zeros((1, 1)) if onehot else np.ascontiguousarray(data.inputs, dtype=np.float64)
        sym = data.symbols.astype(np.int64) if onehot else np.zeros(1, np.int64)
        y = np.zeros((steps, n.outputs))
        _rtrl.run_sequences(self.W, self.Wm, self.Wo, self.Wom, x, sym, onehot, data.offsets,
                            np.ascontiguousarray(data.target, dtype=np.float64), data.mask.astype(np.uint8),
                            n.blocks, n.cell_size, n.output_gate, n.recurrent, _rtrl.G_KINDS[n.g], _rtrl.G_KINDS[n.h],
                            train, per_step, float(lr), y)
        return y

    def final_states(self, data: Flat) -> np.ndarray:
        """Each sequence's internal cell states ``s`` after its last step, (sequences, H), float64
        (the forward pass of :meth:`to_torch`'s cell; nothing learns)."""
        from .. import Recurrent
        cell, _, _ = self.to_torch()
        batch = data.batch(torch.float64)
        with torch.no_grad():
            _, state = Recurrent(cell)(batch.x, lengths=batch.lengths)
        return state[1].numpy()

    def error_gain(self, s: np.ndarray) -> np.ndarray:
        """h′(s) / h′(0): the factor an error reaching a cell's output loses on entering its state
        (docs/classic_tasks.md §1.1). Near 0 once the state has drifted into h's flat tails; 1 for the identity."""
        s = np.asarray(s, dtype=np.float64)
        kind = self.net.h
        if kind == "identity":
            return np.ones_like(s)
        if kind == "tanh":
            return 1.0 - np.tanh(s) ** 2
        if kind == "scaled":                                                # 2σ(s) − 1 = tanh(s/2)
            return 1.0 - np.tanh(s / 2.0) ** 2
        sig = 1.0 / (1.0 + np.exp(-s))                                      # logistic
        return 4.0 * sig * (1.0 - sig)

    def to_torch(self) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
        """The same network as an ``lstm1997`` cell (``truncate=True``) plus the output layer's
        weight and bias, float64: the autograd reference the learner is tested against."""
        n = self.net
        bias = "all" if n.cell_bias and n.gate_bias else "gates" if n.gate_bias else "none"
        if n.cell_bias and not n.gate_bias:
            raise ValueError("PaperNet.to_torch: biased cells with unbiased gates have no lstm1997 form")
        cell = make("lstm1997", n.inputs, n.hidden, cell_size=n.cell_size, truncate=True,
                    recurrent="all" if n.recurrent else "none", bias=bias, g=n.g, h=n.h,
                    output_gate=n.output_gate).double()
        I, U = n.inputs, n.recurrent_size
        with torch.no_grad():
            W = torch.from_numpy(self.W)
            cell.weight_ih.copy_(W[:, :I])
            if U:
                cell.weight_hh.copy_(W[:, I:I + U])
            if cell.bias is not None:
                rows = torch.from_numpy(self.Wm[:, -1] > 0)
                cell.bias.copy_(W[rows, -1])
        return cell, torch.from_numpy(self.Wo.copy()), torch.from_numpy(self.Wom.copy())
