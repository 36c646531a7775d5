"""Bidirectional, Stack, builders: maths, gradients with lengths, errors."""

import pytest
import torch

import lstmkit
from lstmkit import Bidirectional, Recurrent, Stack, cells
from harness import ENGINES, F64, TOL, gradcheck_layer, random_state, run_alone


def make(name="lstm", I=3, H=4, **options):
    return cells.make(name, I, H, **options).to(F64)


def test_reverse_padded_reverses_within_each_length_and_is_an_involution():
    x = torch.arange(10.0).view(2, 5, 1)
    lengths = torch.tensor([3, 5])
    r = lstmkit.reverse_padded(x, lengths)
    assert r[0, :, 0].tolist() == [2, 1, 0, 3, 4] and r[1, :, 0].tolist() == [9, 8, 7, 6, 5]
    assert torch.equal(lstmkit.reverse_padded(r, lengths), x)


@pytest.mark.parametrize("merge", ["concat", "sum", "mul", "ave", None, lambda a, b: a - b])
def test_bidirectional_merges(merge):
    torch.manual_seed(0)
    bi = Bidirectional(make(), make(), merge=merge)
    x = torch.randn(2, 5, 3, dtype=F64)
    lengths = torch.tensor([5, 3])
    y, (sf, sb) = bi(x, lengths=lengths)
    yf, _ = bi.forward_layer(x, lengths=lengths)
    yb, _ = bi.backward_layer(x, lengths=lengths)
    expected = {"concat": torch.cat([yf, yb], -1), "sum": yf + yb, "mul": yf * yb, "ave": (yf + yb) / 2}
    if merge is None:
        assert torch.equal(y[0], yf) and torch.equal(y[1], yb)
    elif callable(merge):
        assert torch.equal(y, yf - yb)
    else:
        assert torch.equal(y, expected[merge])
        assert bi.output_size == y.shape[-1]


def test_backward_direction_with_lengths_equals_each_sequence_alone():
    torch.manual_seed(0)
    bi = Bidirectional(make("peephole"), make("peephole"), merge=None)
    x = torch.randn(3, 6, 3, dtype=F64)
    lengths = torch.tensor([6, 2, 4])
    (_, yb), (_, sb) = bi(x, lengths=lengths)
    alone, finals = run_alone(bi.backward_layer, x, None, lengths)
    for b in range(3):
        L = int(lengths[b])
        torch.testing.assert_close(yb[b, :L], alone[b], rtol=1e-12, atol=1e-12)
        # running the flipped sequence forward gives the same thing, flipped
        fwd, _ = Recurrent(bi.backward_layer.cell)(x[b:b + 1, :L].flip(1))
        torch.testing.assert_close(yb[b, :L], fwd[0].flip(0), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(sb[0][b], finals[b][0][0], rtol=1e-12, atol=1e-12)


def test_gradcheck_bidirectional_and_stack_with_lengths():
    torch.manual_seed(0)
    x = torch.randn(3, 5, 3, dtype=F64)
    lengths = torch.tensor([5, 1, 3])
    bi = Bidirectional(make("gru", H=3), make("lstm", H=2), merge="concat")
    state = (random_state(bi.forward_layer.cell, 3), random_state(bi.backward_layer.cell, 3, seed=2))
    assert gradcheck_layer(bi, x, state, lengths)
    stack = Stack([Bidirectional(make("lstm", H=2), make("lstm", H=2), merge="concat"),
                   make("peephole", I=4, H=4), make("cifg", I=4, H=4)], residual=[False, False, True])
    assert gradcheck_layer(stack, x, None, lengths)
    states = [state_of(layer) for layer in stack.layers]
    assert gradcheck_layer(stack, x, states, lengths)


def state_of(layer):
    if isinstance(layer, Bidirectional):
        return (random_state(layer.forward_layer.cell, 3), random_state(layer.backward_layer.cell, 3, seed=5))
    return random_state(layer.cell, 3, seed=7)


def test_stack_residual_and_dropout():
    torch.manual_seed(0)
    a, b = make("lstm", 3, 4), make("lstm", 4, 4)
    stack = Stack([a, b], residual=True, dropout=0.5)
    x = torch.randn(2, 5, 3, dtype=F64)
    stack.eval()
    y, states = stack(x)
    y1, s1 = Recurrent(a)(x)
    y2, s2 = Recurrent(b)(y1)
    torch.testing.assert_close(y, y2 + y1, rtol=0, atol=0)
    assert len(states) == 2 and torch.equal(states[1][0], s2[0])
    stack.train()
    torch.manual_seed(1)
    y_a, _ = stack(x)
    torch.manual_seed(1)
    y_b, _ = stack(x)
    assert torch.equal(y_a, y_b), "the same seed gives the same dropout"
    assert not torch.allclose(y_a, y)


def test_residual_first_layer_keeps_padding_zero():
    torch.manual_seed(0)
    stack = Stack([make("lstm", 3, 3), make("gru", 3, 3)], residual=[True, True])
    x = torch.randn(2, 5, 3, dtype=F64)                  # nonzero values in the padding too
    y, _ = stack(x, lengths=torch.tensor([5, 2]))
    assert not y[1, 2:].any()
    x_tm = x.transpose(0, 1)
    stack_tm = Stack([Recurrent(make("lstm", 3, 3), batch_first=False)], residual=[True])
    y_tm, _ = stack_tm(x_tm, lengths=torch.tensor([5, 2]))
    assert not y_tm[2:, 1].any()


@pytest.mark.parametrize("engine", ENGINES)
def test_stack_of_forward_layers_streams(engine):
    torch.manual_seed(0)
    stack = lstmkit.build_rnn("gru", 3, 4, num_layers=3, residual=True, engine=engine).to(F64).eval()
    x = torch.randn(2, 9, 3, dtype=F64)
    y, _ = stack(x)
    state, parts = None, []
    for chunk in x.split([4, 1, 4], dim=1):
        out, state = stack(chunk, state)
        parts.append(out)
    torch.testing.assert_close(torch.cat(parts, 1), y, **TOL[engine])


def test_padding_stays_zero_through_a_stack():
    torch.manual_seed(0)
    stack = lstmkit.build_rnn("lstm", 3, 4, num_layers=2, bidirectional=True, merge="sum", dropout=0.3)
    stack = stack.to(F64)
    x = torch.randn(2, 6, 3, dtype=F64)
    y, _ = stack(x, lengths=torch.tensor([6, 2]))
    assert not y[1, 2:].any()


def test_build_rnn_shapes_and_time_major():
    net = lstmkit.build_rnn("lstm1997", 5, 6, num_layers=2, bidirectional=True, batch_first=False, cell_size=3)
    assert isinstance(net, Stack) and net.output_size == 12 and not net.batch_first
    y, states = net(torch.randn(7, 2, 5))
    assert y.shape == (7, 2, 12) and len(states) == 2 and len(states[0]) == 2
    one = lstmkit.build_rnn("elman", 5, 6)
    assert isinstance(one, Recurrent)


def test_layer_errors_name_class_argument_expected_and_got():
    layer = Recurrent(make())
    x = torch.randn(2, 5, 3, dtype=F64)
    cases = [
        (lambda: layer(torch.randn(2, 3, dtype=F64)), ValueError,
         r"Recurrent: argument 'x' expected a 3-D tensor \(batch, time, features\), got shape \(2, 3\)"),
        (lambda: layer(torch.randn(2, 5, 4, dtype=F64)), ValueError,
         r"argument 'x' expected 3 features in the last axis .*got shape \(2, 5, 4\)"),
        (lambda: layer(x.float()), TypeError, r"argument 'x' expected dtype torch.float64 .*got dtype torch.float32"),
        (lambda: layer(x.long()), TypeError, "expected a floating-point tensor"),
        (lambda: layer([[1.0]]), TypeError, "argument 'x' expected a torch.Tensor, got list"),
        (lambda: layer(x, lengths=torch.tensor([5, 6])), ValueError,
         r"argument 'lengths' expected values in \[0, 5\] .*got values in \[5, 6\]"),
        (lambda: layer(x, lengths=torch.tensor([5])), ValueError,
         r"argument 'lengths' expected shape \(2,\), one length per sequence, got shape \(1,\)"),
        (lambda: layer(x, lengths=torch.tensor([5.0, 3.0])), TypeError, "expected an integer tensor"),
        (lambda: layer(x, lengths=[5, -1]), ValueError, r"got values in \[-1, 5\]"),
        (lambda: layer(x, (torch.zeros(2, 4, dtype=F64),)), ValueError, "expected a tuple of 2 tensor"),
        (lambda: layer(x, (torch.zeros(2, 4, dtype=F64), torch.zeros(3, 4, dtype=F64))), ValueError,
         r"argument 'state\[1\]' expected shape \(2, 4\), got shape \(3, 4\)"),
        (lambda: layer(x, (torch.zeros(2, 4), torch.zeros(2, 4))), TypeError,
         r"argument 'state\[0\]' expected dtype torch.float64"),
        (lambda: Recurrent(torch.nn.LSTM(3, 4)), TypeError, "Recurrent: argument 'cell' expected an lstmkit.cells.Cell"),
        (lambda: Recurrent(make(), reverse=True).step(x[:, 0]), ValueError, "a reverse layer needs the whole"),
        (lambda: Bidirectional(make(), make(), merge="max"), ValueError,
         r"Bidirectional: argument 'merge' expected one of \['concat', 'sum', 'mul', 'ave', None\]"),
        (lambda: Bidirectional(make(H=4), make(H=5), merge="sum"), ValueError, "sizes differ"),
        (lambda: Bidirectional(Recurrent(make()), Recurrent(make())), ValueError,
         "argument 'backward' expected a Recurrent with reverse=True"),
        (lambda: Bidirectional(make(), make(I=4)), ValueError, "input_size=3 like the forward layer"),
        (lambda: Bidirectional(make(), make())(x, state=torch.zeros(1)), TypeError, "argument 'state' expected a pair"),
        (lambda: Stack([make(I=3, H=4), make(I=5, H=4)]), ValueError,
         r"Stack: argument 'layers\[1\]' expected input_size=4 .*got input_size=5"),
        (lambda: Stack([make(I=3, H=4), make(I=4, H=5)], residual=True), ValueError,
         r"layers\[1\] maps 4 features to 5.*residual\[1\]=True"),
        (lambda: Stack([make()], dropout=1.5), ValueError, r"argument 'dropout' expected a probability in \[0, 1\)"),
        (lambda: Stack([]), TypeError, "argument 'layers' expected a non-empty list"),
        (lambda: Stack([Bidirectional(make(), make(), merge=None), make(I=8)]), ValueError, "merge=None"),
        (lambda: Stack([make(), make(I=4)])(x, state=[None]), TypeError, "expected a list of 2 layer states"),
        (lambda: lstmkit.build_rnn("lstm", 3, 4, num_layers=0), ValueError, "num_layers' expected a positive int"),
    ]
    for call, kind, pattern in cases:
        with pytest.raises(kind, match=pattern):
            call()


def test_device_mismatch_is_reported():
    if not torch.backends.mps.is_available() and not torch.cuda.is_available():
        from lstmkit._checks import check_tensor
        like = torch.empty(1, device="meta")
        with pytest.raises(ValueError, match="expected device meta"):
            check_tensor("Recurrent", "x", torch.zeros(1, 1, 1), dim=3, layout="(b, t, f)", like=like.float())


def test_empty_sequence_and_zero_lengths():
    layer = Recurrent(make())
    y, state = layer(torch.zeros(2, 0, 3, dtype=F64))
    assert y.shape == (2, 0, 4) and not state[0].any()
    h0 = (torch.ones(2, 4, dtype=F64), torch.ones(2, 4, dtype=F64))
    y, state = layer(torch.randn(2, 3, 3, dtype=F64), h0, lengths=torch.tensor([0, 3]))
    assert not y[0].any() and torch.equal(state[0][0], h0[0][0]), "length 0 keeps the initial state"


@pytest.mark.parametrize("residual", [False, True])
def test_a_stack_steps_as_it_runs_the_whole_sequence(residual):
    torch.manual_seed(0)
    stack = lstmkit.Stack([lstmkit.Recurrent(cells.make(name, 4, 4)) for name in ("lstm", "peephole", "gru")],
                          dropout=0.3, residual=residual).double().eval()
    x = torch.randn(2, 6, 4, dtype=torch.float64)
    y, finals = stack(x)
    state, steps = None, []
    for t in range(6):
        y_t, state = stack.step(x[:, t], state)
        steps.append(y_t)
    torch.testing.assert_close(torch.stack(steps, 1), y, rtol=0, atol=1e-12)
    for a, b in zip(finals, state):
        for u, v in zip(a, b):
            torch.testing.assert_close(u, v, rtol=0, atol=1e-12)
    both = lstmkit.Stack([lstmkit.Bidirectional(lstmkit.Recurrent(cells.make("gru", 4, 2)),
                                                lstmkit.Recurrent(cells.make("gru", 4, 2), reverse=True))])
    with pytest.raises(ValueError, match="forward layers only"):
        both.step(torch.randn(2, 4))
