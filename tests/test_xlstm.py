"""The xLSTM's cells against the paper's equations without the stabiliser (float64: the
stabiliser must change nothing), written out per head and per step."""

import math

import pytest
import torch

import lstmkit
from lstmkit import cells

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


@pytest.mark.parametrize("options", [{}, {"heads": 2}, {"heads": 4, "forget": "exp"}, {"bias": False}])
def test_slstm_equals_the_unstabilised_equations(options):
    torch.manual_seed(0)
    cell = cells.make("slstm", 3, 8, **options).double()
    x = torch.randn(2, 12, 3, dtype=F64)
    y, _ = lstmkit.Recurrent(cell)(x)
    torch.testing.assert_close(y, _unstabilised_slstm(cell, x), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("options", [{}, {"heads": 2}, {"heads": 4, "gate_bias": {"f": 3.0, "i": -1.0}}])
def test_mlstm_equals_the_unstabilised_equations(options):
    torch.manual_seed(0)
    cell = cells.make("mlstm", 3, 8, **options).double()
    x = torch.randn(2, 12, 3, dtype=F64)
    y, _ = lstmkit.Recurrent(cell)(x)
    torch.testing.assert_close(y, _unstabilised_mlstm(cell, x), rtol=1e-10, atol=1e-12)


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
