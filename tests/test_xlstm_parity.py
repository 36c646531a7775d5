"""lstmkit's sLSTM and mLSTM against NX-AI's ``xlstm`` package (PyPI ``xlstm``, Apache-2.0, a
test-only dependency) on the same weights, float32.

The weight mapping, which docs/cells.md documents:

- sLSTM: xlstm's ``sLSTMCell`` takes the input's projection ``x W_ih^T`` (B, T, 4H; gate, head,
  unit: lstmkit's row order) and holds the recurrent blocks and the bias. Its internal kernel
  ``_recurrent_kernel_`` (heads, 4·d, d) is ``weight_hh.permute(1, 0, 2, 3).reshape(K, 4 * d, d)``
  and its internal ``_bias_`` (4H) is lstmkit's ``bias`` as it is.
- mLSTM: xlstm's backends take per-head queries, keys, values (B, K, T, d) and the gates'
  pre-activations (B, K, T): lstmkit's projection split by :meth:`MLSTM._split` before keys are
  scaled (xlstm scales them itself). lstmkit's output is the read-out times ``sigmoid(o)``;
  xlstm's matrix memory is the transpose of lstmkit's (key rows, value columns) and holds
  unscaled keys (its chunkwise form scales the queries instead): ``C·sqrt(d)``. xlstm adds
  ``eps`` (1e-6) to the normaliser, which the paper has not: the comparison sets it to 0.
"""

import math

import pytest
import torch

import lstmkit
from lstmkit import cells

xlstm_slstm = pytest.importorskip("xlstm.blocks.slstm.cell", reason="xlstm (the test extra) is not installed")
backends = pytest.importorskip("xlstm.blocks.mlstm.backends")

TOL = dict(rtol=1e-5, atol=1e-5)


def _their_slstm(ours):
    H, K = ours.hidden_size, ours.heads
    d = H // K
    config = xlstm_slstm.sLSTMCellConfig(hidden_size=H, num_heads=K, backend="vanilla", dtype="float32",
                                         input_shape="BSGNH", output_shape="BSH",
                                         enable_automatic_mixed_precision=False)
    theirs = xlstm_slstm.sLSTMCell(config)
    with torch.no_grad():
        theirs._recurrent_kernel_.copy_(ours.weight_hh.permute(1, 0, 2, 3).reshape(K, 4 * d, d))
        theirs._bias_.copy_(ours.bias)
    return theirs


@pytest.mark.parametrize("engine", ["reference", "auto"])
@pytest.mark.parametrize("heads", [1, 4])
def test_slstm_equals_xlstms_vanilla_cell_outputs_and_gradients(heads, engine):
    torch.manual_seed(heads)
    B, T, I, H = 3, 25, 5, 16
    ours = cells.make("slstm", I, H, heads=heads, init_range=0.5)
    theirs = _their_slstm(ours)
    x = torch.randn(B, T, I)
    weights = torch.linspace(-1, 1, H)
    y, _ = lstmkit.Recurrent(ours, engine=engine)(x)
    y_theirs, _ = theirs(x @ ours.weight_ih.T)
    torch.testing.assert_close(y, y_theirs, **TOL)
    d = H // heads
    grads = torch.autograd.grad((y * weights).sum(), [ours.weight_ih, ours.weight_hh, ours.bias])
    grads_theirs = torch.autograd.grad((theirs(x @ ours.weight_ih.T)[0] * weights).sum(),
                                       [ours.weight_ih, theirs._recurrent_kernel_, theirs._bias_])
    torch.testing.assert_close(grads[0], grads_theirs[0], **TOL)
    torch.testing.assert_close(grads[1].permute(1, 0, 2, 3).reshape(heads, 4 * d, d), grads_theirs[1], **TOL)
    torch.testing.assert_close(grads[2], grads_theirs[2], **TOL)


def _their_inputs(cell, x):
    """xlstm's (q, k unscaled, v, i, f) per head from lstmkit's projection, and sigmoid(o)."""
    q, k, v, o, i, f = cell._split(torch.nn.functional.linear(x, cell.weight_ih, cell.bias))
    d = cell.hidden_size // cell.heads
    heads_first = [t.transpose(1, 2) for t in (q, k * math.sqrt(d), v)]       # (B, K, T, d)
    return (*heads_first, i.transpose(1, 2), f.transpose(1, 2)), torch.sigmoid(o).flatten(-2)


@pytest.mark.parametrize("engine", ["reference", "auto"])
@pytest.mark.parametrize("heads", [1, 2])
def test_mlstm_equals_xlstms_parallel_and_recurrent_backends(heads, engine):
    torch.manual_seed(heads)
    B, T, I, H = 2, 40, 5, 16
    cell = cells.make("mlstm", I, H, heads=heads, chunk_size=16, gate_bias={"f": 2.0})
    x = torch.randn(B, T, I)
    y, (C, n, m) = lstmkit.Recurrent(cell, engine=engine)(x)
    (q, k, v, i, f), gate = _their_inputs(cell, x)
    parallel = backends.parallel_stabilized_simple(q, k, v, i[..., None], f[..., None], eps=0.0)
    torch.testing.assert_close(y, gate * parallel.transpose(1, 2).reshape(gate.shape), **TOL)

    chunked, (C_t, n_t, m_t) = backends.chunkwise_simple(q, k, v, i, f, chunk_size=8, return_last_state=True, eps=0.0)
    torch.testing.assert_close(y, gate * chunked.reshape(B, heads, T, -1).transpose(1, 2).reshape(gate.shape), **TOL)
    d = H // heads                          # their memory holds unscaled keys
    torch.testing.assert_close(C * math.sqrt(d), C_t.transpose(-1, -2), **TOL)
    torch.testing.assert_close(n * math.sqrt(d), n_t, **TOL)
    torch.testing.assert_close(m, m_t.reshape(m.shape), **TOL)

    state = (torch.zeros(B, heads, d, d), torch.zeros(B, heads, d, 1), torch.zeros(B, heads, 1, 1))
    outputs = []
    for t in range(T):
        h, state = backends.recurrent_step_stabilized_simple(*state, q[:, :, t:t + 1], k[:, :, t:t + 1],
                                                             v[:, :, t:t + 1], i[:, :, t, None, None],
                                                             f[:, :, t, None, None], eps=0.0)
        outputs.append(h.reshape(B, -1))
    torch.testing.assert_close(y, gate * torch.stack(outputs, 1), **TOL)


def test_mlstm_gradients_equal_xlstms_parallel_backend():
    torch.manual_seed(3)
    cell = cells.make("mlstm", 4, 8, heads=2, chunk_size=8, gate_bias={"f": 2.0})
    x = torch.randn(2, 30, 4)
    weights = torch.linspace(-1, 1, 8)
    y, _ = lstmkit.Recurrent(cell)(x)
    grads = torch.autograd.grad((y * weights).sum(), [cell.weight_ih, cell.bias])
    (q, k, v, i, f), gate = _their_inputs(cell, x)
    theirs = gate * backends.parallel_stabilized_simple(q, k, v, i[..., None], f[..., None], eps=0.0
                                                        ).transpose(1, 2).reshape(gate.shape)
    grads_theirs = torch.autograd.grad((theirs * weights).sum(), [cell.weight_ih, cell.bias])
    for a, b in zip(grads, grads_theirs):
        torch.testing.assert_close(a, b, **TOL)
