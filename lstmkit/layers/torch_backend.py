"""PyTorch's own recurrent operators for the cells whose maths is theirs (``lstm``, ``np``,
``gru``, ``elman`` with tanh or relu: :meth:`lstmkit.cells.Cell.torch_rnn`).

On a device the engine does not cover (CUDA above all, where these are cuDNN's fused RNNs), a
layer of such a cell runs ``torch.lstm`` / ``torch.gru`` / ``torch.rnn_tanh`` / ``torch.rnn_relu``
over the whole sequence with the cell's own parameters instead of the step loop; lengths go
through a packed sequence, so a row's final state is its state after its own last step. Tested
equal to the reference loop on the CPU through the same operators (float64, outputs, final states
and every gradient).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from ..cells import Cell, State
from .lengths import valid_steps

__all__ = ["supports", "run"]

_OPS = {"lstm": torch.lstm, "gru": torch.gru, "rnn_tanh": torch.rnn_tanh, "rnn_relu": torch.rnn_relu}


def supports(cell: Cell) -> bool:
    """Whether ``cell`` has PyTorch's maths, so that its layers can run PyTorch's operators."""
    return cell.torch_rnn() is not None


def run(cell: Cell, x: Tensor, state: State, lengths: Tensor | None) -> tuple[Tensor, State]:
    """``cell`` over batch-first ``x`` (B, T, I) from ``state``: ``(y (B, T, H), final state)``,
    outputs past a row's length zero."""
    mode, w_ih, w_hh, b_ih, b_hh = cell.torch_rnn()
    has_biases = b_ih is not None or b_hh is not None
    params = [w_ih, w_hh]
    if has_biases:
        params += [b if b is not None else torch.zeros_like(other) for b, other in ((b_ih, b_hh), (b_hh, b_ih))]
    hx = tuple(s.unsqueeze(0) for s in state) if mode == "lstm" else state[0].unsqueeze(0)
    op, train = _OPS[mode], torch.is_grad_enabled()          # cuDNN keeps what a backward needs only in training
    if lengths is None:
        out = op(x, hx, params, has_biases, 1, 0.0, train, False, True)
        return out[0], tuple(f[0] for f in out[1:])
    B, T, _ = x.shape
    packed = pack_padded_sequence(x, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
    order = packed.sorted_indices
    hx_sorted = tuple(h[:, order] for h in hx) if mode == "lstm" else hx[:, order]
    out = op(packed.data, packed.batch_sizes, hx_sorted, params, has_biases, 1, 0.0, train, False)
    y, _ = pad_packed_sequence(PackedSequence(out[0], packed.batch_sizes, order, packed.unsorted_indices),
                               batch_first=True, total_length=T)
    finals = [f[0][packed.unsorted_indices] for f in out[1:]]
    empty = (lengths == 0).to(x.device)
    if bool(empty.any()):                                    # a row of no steps keeps its state, outputs nothing
        y = y.masked_fill(~valid_steps(lengths, T).to(x.device)[..., None], 0.0)
        finals = [torch.where(empty[:, None], s, f) for s, f in zip(state, finals)]
    return y, tuple(finals)
