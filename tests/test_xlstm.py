"""The xLSTM's cells against the paper's equations without the stabiliser (float64: the
stabiliser must change nothing), written out per head and per step."""

import math

import pytest
import torch

import lstmkit
from lstmkit import cells
from harness import assert_same, outputs_and_grads

F64 = torch.float64


def _unstabilised_slstm(cell, x):
    """Equations 8-15 of the xLSTM paper as written: i = exp(i~), f = sigmoid(f~) or exp(f~)."""
    B, T, _ = x.shape
    H, K = cell.hidden_size, cell.heads
    d = H // K
    h, c, n = (torch.zeros(B, H, dtype=F64) for _ in range(3))
    ys = []
    for t in range(T):
        pre = x[:, t] @ cell.weight_ih.T + (cell.bias if cell.bias is not None else 0)
        gates = []
        for g in range(4):
            rec = torch.cat([h[:, k * d:(k + 1) * d] @ cell.weight_hh[g, k].T for k in range(K)], 1)
            gates.append(pre[:, g * H:(g + 1) * H] + rec)
        i_, f_, z_, o_ = gates
        i = torch.exp(i_)
        f = torch.sigmoid(f_) if cell.forget == "sigmoid" else torch.exp(f_)
        c = f * c + i * torch.tanh(z_)
        n = f * n + i
        h = torch.sigmoid(o_) * c / n
        ys.append(h)
    return torch.stack(ys, 1)


def _unstabilised_mlstm(cell, x):
    """Equations 19-27: C = f C + i v k^T, n = f n + i k, h = o * C q / max(|n^T q|, 1)."""
    B, T, _ = x.shape
    H, K = cell.hidden_size, cell.heads
    d = H // K
    C = torch.zeros(B, K, d, d, dtype=F64)
    n = torch.zeros(B, K, d, dtype=F64)
    ys = []
    for t in range(T):
        p = x[:, t] @ cell.weight_ih.T + (cell.bias if cell.bias is not None else 0)
        out = []
        for k in range(K):
            q, key, v, o = (p[:, j * H + k * d:j * H + (k + 1) * d] for j in range(4))
            key = key / math.sqrt(d)
            i, f = torch.exp(p[:, 4 * H + k]), torch.sigmoid(p[:, 4 * H + K + k])
            C[:, k] = f[:, None, None] * C[:, k] + i[:, None, None] * v[:, :, None] * key[:, None, :]
            n[:, k] = f[:, None] * n[:, k] + i[:, None] * key
            num = (C[:, k] @ q[..., None])[..., 0]
            den = torch.clamp((n[:, k] * q).sum(-1).abs(), min=1.0)[:, None]
            out.append(torch.sigmoid(o) * num / den)
        ys.append(torch.cat(out, 1))
    return torch.stack(ys, 1)


UNSTABILISED = {"slstm": _unstabilised_slstm, "mlstm": _unstabilised_mlstm}


@pytest.mark.parametrize("name,options", [("slstm", {}), ("slstm", {"heads": 2}),
                                          ("slstm", {"heads": 4, "forget": "exp"}), ("slstm", {"bias": False}),
                                          ("mlstm", {}), ("mlstm", {"heads": 2}),
                                          ("mlstm", {"heads": 4, "gate_bias": {"f": 3.0, "i": -1.0}})])
def test_the_xlstm_cells_equal_the_unstabilised_equations(name, options):
    torch.manual_seed(0)
    cell = cells.make(name, 3, 8, **options).double()
    x = torch.randn(2, 12, 3, dtype=F64)
    y, _ = lstmkit.Recurrent(cell)(x)
    torch.testing.assert_close(y, UNSTABILISED[name](cell, x), rtol=1e-10, atol=1e-12)


def test_the_stabiliser_keeps_large_gates_finite():
    """exp(60) overflows float32's gates unstabilised; the stabilised state stays finite."""
    cell = cells.make("slstm", 2, 4, gate_bias={"i": 60.0, "f": 60.0}, forget="exp")
    y, state = lstmkit.Recurrent(cell)(torch.randn(1, 50, 2))
    assert torch.isfinite(y).all() and all(torch.isfinite(s).all() for s in state)


def test_bad_options_are_named():
    with pytest.raises(ValueError, match="SLSTM: argument 'heads' expected a divisor of hidden_size 6, got 4"):
        cells.make("slstm", 3, 6, heads=4)
    with pytest.raises(ValueError, match="SLSTM: argument 'forget' expected 'sigmoid' or 'exp', got 'tanh'"):
        cells.make("slstm", 3, 6, forget="tanh")
    with pytest.raises(ValueError, match="MLSTM: argument 'heads' expected a divisor of hidden_size 6, got 5"):
        cells.make("mlstm", 3, 6, heads=5)


@pytest.mark.parametrize("T,chunk", [(1, 4), (4, 4), (13, 4), (13, 5), (40, 64), (130, 64)])
@pytest.mark.parametrize("reverse", [False, True])
def test_the_chunkwise_mlstm_equals_its_step_loop(T, chunk, reverse):
    """Outputs, final states and every gradient, with lengths (one of them zero), a random initial
    state (m included), both directions, chunks that do and do not divide the length."""
    torch.manual_seed(T + chunk)
    cell = cells.make("mlstm", 3, 8, heads=2, chunk_size=chunk, gate_bias={"f": 2.0}).double()
    x = torch.randn(4, T, 3, dtype=F64, requires_grad=True)
    lengths = torch.tensor([T, max(T - 3, 1), 1, 0])
    state = tuple(torch.randn(4, *shape, dtype=F64, requires_grad=True) for shape in cell.state_shapes())
    fast, fast_grads = outputs_and_grads(lstmkit.Recurrent(cell, reverse=reverse, engine="fast"), x, state, lengths)
    ref, ref_grads = outputs_and_grads(lstmkit.Recurrent(cell, reverse=reverse, engine="reference"), x, state, lengths)
    assert_same(fast + fast_grads, ref + ref_grads)


def test_the_chunkwise_mlstm_streams_in_pieces_and_stacks_both_ways():
    torch.manual_seed(5)
    layer = lstmkit.Recurrent(cells.make("mlstm", 3, 8, heads=4, chunk_size=8).double())
    x = torch.randn(2, 50, 3, dtype=F64)
    y, final = layer(x)
    y1, state = layer(x[:, :17])
    y2, state = layer(x[:, 17:], state)
    torch.testing.assert_close(torch.cat([y1, y2], 1), y, rtol=1e-10, atol=1e-10)
    for a, b in zip(state, final):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
    steps = []
    state = layer.cell.init_state(2, dtype=F64)
    for t in range(50):
        y_t, state = layer.step(x[:, t], state)
        steps.append(y_t)
    torch.testing.assert_close(torch.stack(steps, 1), y, rtol=1e-10, atol=1e-10)
    rnn = lstmkit.build_rnn("mlstm", 3, 8, num_layers=2, bidirectional=True, heads=2)
    out, _ = rnn(torch.randn(3, 20, 3), lengths=torch.tensor([20, 7, 1]))
    assert out.shape == (3, 20, 16) and out[2, 1:].abs().sum() == 0


def test_the_chunkwise_mlstm_keeps_float32_close_over_long_sequences():
    """4,096 float32 steps within 1e-4 of the float64 step loop: the stabiliser is carried between chunks."""
    torch.manual_seed(6)
    cell = cells.make("mlstm", 4, 8, heads=2, gate_bias={"f": 3.0})
    x = torch.randn(2, 4096, 4)
    with torch.no_grad():
        y32, _ = lstmkit.Recurrent(cell)(x)
        y64, _ = lstmkit.Recurrent(cell.double(), engine="reference")(x.double())
    assert (y32.double() - y64).abs().max() < 1e-4


def test_a_chunk_size_that_is_not_positive_is_named():
    with pytest.raises(ValueError, match="MLSTM: argument 'chunk_size' expected a positive int, got 0"):
        cells.make("mlstm", 3, 8, chunk_size=0)


def test_the_chunkwise_mlstm_compiles_whole_and_exports():
    """torch.compile(fullgraph=True) and torch.export see the chunkwise form as plain tensor operations."""
    torch.manual_seed(7)
    layer = lstmkit.Recurrent(cells.make("mlstm", 3, 8, heads=2, chunk_size=4))
    x = torch.randn(2, 10, 3)
    expected, _ = layer(x)
    compiled = torch.compile(layer, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(x)[0], expected, rtol=1e-5, atol=1e-6)
    exported = torch.export.export(layer, (x,))
    torch.testing.assert_close(exported.module()(x)[0], expected, rtol=1e-5, atol=1e-6)
