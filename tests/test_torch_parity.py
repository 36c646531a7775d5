"""lstm, gru and elman equal torch.nn.LSTM/GRU/RNN after from_torch: outputs, states, gradients."""

import itertools

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import lstmkit
from harness import ENGINES, F64

TOL = dict(rtol=1e-10, atol=1e-10)
KINDS = {"lstm": (nn.LSTM, {}), "gru": (nn.GRU, {}), "elman": (nn.RNN, {}), "elman-relu": (nn.RNN, {"nonlinearity": "relu"})}


def torch_layers(net):
    return list(net.layers) if isinstance(net, lstmkit.Stack) else [net]


def to_torch_states(net, finals, bidirectional):
    """Our per-layer (per-direction) final states stacked as torch's (h_n[, c_n])."""
    per_layer = finals if isinstance(net, lstmkit.Stack) else [finals]
    flat = [s for f in per_layer for s in (f if bidirectional else (f,))]   # L*D states
    return tuple(torch.stack([s[k] for s in flat]) for k in range(len(flat[0])))


@pytest.mark.parametrize("kind,num_layers,bidirectional,batch_first",
                         [(k, n, b, bf) for k, n, b in itertools.product(KINDS, (1, 2, 3), (False, True))
                          for bf in ((True, False) if n == 2 else (True,))])
@pytest.mark.parametrize("engine", ENGINES)
def test_outputs_states_and_gradients_equal_torch(kind, num_layers, bidirectional, batch_first, engine):
    M, extra = KINDS[kind]
    torch.manual_seed(0)
    m = M(3, 5, num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first, **extra).to(F64)
    net = lstmkit.from_torch(m, engine=engine)
    B, T, D = 4, 6, 2 if bidirectional else 1
    x = torch.randn(B, T, 3, dtype=F64)
    lengths = torch.tensor([6, 2, 5, 1])
    h0 = torch.randn(num_layers * D, B, 5, dtype=F64)
    c0 = torch.randn(num_layers * D, B, 5, dtype=F64)
    x_t = x if batch_first else x.transpose(0, 1).contiguous()

    # torch: packed variable-length batch
    x_ref = x_t.clone().requires_grad_()
    h0_ref, c0_ref = h0.clone().requires_grad_(), c0.clone().requires_grad_()
    packed = pack_padded_sequence(x_ref, lengths, batch_first=batch_first, enforce_sorted=False)
    out, hn = m(packed, (h0_ref, c0_ref) if M is nn.LSTM else h0_ref)
    y_ref, _ = pad_packed_sequence(out, batch_first=batch_first, total_length=T)
    hn_ref = hn if isinstance(hn, tuple) else (hn,)

    # lstmkit: the same batch, padded, with lengths
    x_ours = x_t.clone().requires_grad_()
    h0_ours, c0_ours = h0.clone().requires_grad_(), c0.clone().requires_grad_()
    states, k = [], 0
    for layer in torch_layers(net):
        per_dir = []
        for _ in range(D):
            per_dir.append((h0_ours[k], c0_ours[k]) if M is nn.LSTM else (h0_ours[k],))
            k += 1
        states.append(tuple(per_dir) if bidirectional else per_dir[0])
    y, finals = net(x_ours, states if num_layers > 1 else states[0], lengths=lengths)
    hn_ours = to_torch_states(net, finals, bidirectional)

    torch.testing.assert_close(y, y_ref, **TOL)
    for a, b in zip(hn_ours, hn_ref):
        torch.testing.assert_close(a, b, **TOL)

    g = torch.Generator().manual_seed(1)
    weights = [torch.randn(t.shape, generator=g, dtype=F64) for t in (y, *hn_ref)]
    loss_ref = sum((w * t).sum() for w, t in zip(weights, (y_ref, *hn_ref)))
    loss_ours = sum((w * t).sum() for w, t in zip(weights, (y, *hn_ours)))
    loss_ref.backward()
    loss_ours.backward()
    torch.testing.assert_close(x_ours.grad, x_ref.grad, **TOL)
    torch.testing.assert_close(h0_ours.grad, h0_ref.grad, **TOL)
    if M is nn.LSTM:
        torch.testing.assert_close(c0_ours.grad, c0_ref.grad, **TOL)
    for l, layer in enumerate(torch_layers(net)):
        directions = [(layer.forward_layer.cell, ""), (layer.backward_layer.cell, "_reverse")] if bidirectional \
            else [(layer.cell, "")]
        for cell, suffix in directions:
            torch.testing.assert_close(cell.weight_ih.grad, getattr(m, f"weight_ih_l{l}{suffix}").grad, **TOL)
            torch.testing.assert_close(cell.weight_hh.grad, getattr(m, f"weight_hh_l{l}{suffix}").grad, **TOL)
            if M is nn.GRU:
                torch.testing.assert_close(cell.bias_ih.grad, getattr(m, f"bias_ih_l{l}{suffix}").grad, **TOL)
                torch.testing.assert_close(cell.bias_hh.grad, getattr(m, f"bias_hh_l{l}{suffix}").grad, **TOL)
            else:  # one bias here, the sum of torch's two (which get equal gradients)
                torch.testing.assert_close(cell.bias.grad, getattr(m, f"bias_ih_l{l}{suffix}").grad, **TOL)


@pytest.mark.parametrize("kind", list(KINDS))
def test_round_trip_through_torch_keeps_the_function(kind):
    M, extra = KINDS[kind]
    torch.manual_seed(0)
    m = M(3, 4, num_layers=2, bidirectional=True, batch_first=True, dropout=0.25, **extra).to(F64).eval()
    net = lstmkit.from_torch(m)
    assert isinstance(net, lstmkit.Stack) and net.dropout == 0.25
    back = lstmkit.to_torch(net).eval()
    assert type(back) is M and back.num_layers == 2 and back.bidirectional and back.dropout == 0.25
    x = torch.randn(2, 5, 3, dtype=F64)
    torch.testing.assert_close(back(x)[0], m(x)[0], **TOL)
    torch.testing.assert_close(net.eval()(x)[0], m(x)[0], **TOL)


@pytest.mark.parametrize("kind", list(KINDS))
def test_no_bias_and_torch_cells(kind):
    M, extra = KINDS[kind]
    torch.manual_seed(0)
    m = M(3, 4, bias=False, **extra).to(F64)
    net = lstmkit.from_torch(m)
    x = torch.randn(2, 5, 3, dtype=F64)
    assert net.batch_first is False                      # torch's default layout: (T, B, I)
    torch.testing.assert_close(net(x.transpose(0, 1))[0], m(x.transpose(0, 1))[0], **TOL)
    tcell = {nn.LSTM: nn.LSTMCell, nn.GRU: nn.GRUCell, nn.RNN: nn.RNNCell}[M](3, 4, **extra).to(F64)
    cell = lstmkit.from_torch(tcell)
    h = torch.randn(2, 4, dtype=F64)
    state = (h, torch.randn(2, 4, dtype=F64)) if M is nn.LSTM else (h,)
    y, _ = cell.step(x[:, 0], state)
    ref = tcell(x[:, 0], state if M is nn.LSTM else h)
    torch.testing.assert_close(y, ref[0] if M is nn.LSTM else ref, **TOL)
    back = lstmkit.to_torch(cell)
    assert type(back) is type(tcell)
    ref2 = back(x[:, 0], state if M is nn.LSTM else h)
    torch.testing.assert_close(ref2[0] if M is nn.LSTM else ref2, y, **TOL)


def test_gru_reset_after_matches_torch_to_1e6_in_float32():
    torch.manual_seed(0)
    m = nn.GRU(3, 8, batch_first=True)
    x = torch.randn(4, 20, 3)
    torch.testing.assert_close(lstmkit.from_torch(m)(x)[0], m(x)[0], rtol=0, atol=1e-6)


def test_to_torch_explains_what_it_cannot_convert():
    with pytest.raises(ValueError, match="reset gate after the recurrent product"):
        lstmkit.to_torch(lstmkit.Recurrent(lstmkit.cells.make("gru_cho", 3, 4)))
    with pytest.raises(ValueError, match="torch.nn has no such cell"):
        lstmkit.to_torch(lstmkit.Recurrent(lstmkit.cells.make("peephole", 3, 4)))
    with pytest.raises(ValueError, match="only tanh and relu"):
        lstmkit.to_torch(lstmkit.Recurrent(lstmkit.cells.make("elman", 3, 4, activation="logistic")))
    with pytest.raises(ValueError, match="merge='concat'"):
        lstmkit.to_torch(lstmkit.build_rnn("lstm", 3, 4, bidirectional=True, merge="sum"))
    with pytest.raises(ValueError, match="reverse-only"):
        lstmkit.to_torch(lstmkit.Recurrent(lstmkit.cells.make("lstm", 3, 4), reverse=True))
    with pytest.raises(ValueError, match="residual"):
        lstmkit.to_torch(lstmkit.build_rnn("lstm", 4, 4, num_layers=2, residual=True))
    mixed = lstmkit.Stack([lstmkit.cells.make("lstm", 3, 4), lstmkit.cells.make("gru", 4, 4)])
    with pytest.raises(ValueError, match="same cell kind"):
        lstmkit.to_torch(mixed)
    with pytest.raises(ValueError, match="proj_size=0"):
        lstmkit.from_torch(nn.LSTM(3, 4, proj_size=2))
    with pytest.raises(TypeError, match="from_torch: argument 'module'"):
        lstmkit.from_torch(nn.Linear(3, 4))
