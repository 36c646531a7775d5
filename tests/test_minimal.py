"""The minimal RNNs (minGRU, minLSTM): both forms of their scan, the engine's compiled linear
recurrence and the log-space parallel scan, against the step loop (the conformance tests do
outputs and gradients for every cell through the layers), here the paper's own log-space
formulas, float32 over long sequences, chunk boundaries, torch.compile and stacks."""

import pytest
import torch
import torch.nn.functional as F

import lstmkit
from lstmkit import cells
from lstmkit.cells.minimal import CHUNK, g, log_g, softplus

F64 = torch.float64


def _paper_scan(log_coeffs, log_values):
    """Feng et al.'s parallel_scan_log (their appendix), from a zero state: h_t =
    exp(a*_t + logcumsumexp(log_values - a*)_t), a* the cumulated log-coefficients."""
    a_star = log_coeffs.cumsum(1)
    return (a_star + torch.logcumsumexp(log_values - a_star, 1)).exp()


@pytest.mark.parametrize("name", ["mingru", "minlstm"])
def test_the_scan_equals_the_papers_log_space_formulas(name):
    torch.manual_seed(0)
    cell = cells.make(name, 3, 5).double()
    x = torch.randn(2, 40, 3, dtype=F64)
    projected = F.linear(x, cell.weight_ih, cell.bias)
    if name == "mingru":
        k, v = projected.chunk(2, -1)
        log_coeffs, log_values = -softplus(k), -softplus(-k) + log_g(v)
    else:
        k_f, k_i, v = projected.chunk(3, -1)
        diff = softplus(-k_f) - softplus(-k_i)
        log_coeffs, log_values = -softplus(diff), -softplus(-diff) + log_g(v)
    y, _ = cell.scan(x, cell.init_state(2))                                 # the log-space form
    torch.testing.assert_close(y, _paper_scan(log_coeffs, log_values), rtol=1e-12, atol=1e-12)


def test_g_is_positive_continuous_and_its_log_is_exact():
    v = torch.linspace(-30, 30, 2001, dtype=F64)
    assert (g(v) > 0).all()
    torch.testing.assert_close(log_g(v), g(v).log(), rtol=1e-12, atol=1e-12)
    assert abs(float(g(torch.tensor(0.0, dtype=F64))) - float(torch.sigmoid(torch.tensor(0.0)))) < 1e-12


FORMS = ["log-space", "compiled"]


def _scan(cell, form):
    """``cell.scan`` in one form: the log-space scan, or the engine's compiled linear scan."""
    if form == "compiled":
        if lstmkit._engine.load() is None:
            pytest.skip(f"no compiled engine here: {lstmkit._engine.load_error()}")
        return lambda x, state, valid=None: cell.scan(x, state, valid, recurrence=lstmkit._engine.linear_scan)
    return cell.scan


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("name", ["mingru", "minlstm"])
@pytest.mark.parametrize("T", [CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK + 5])
def test_both_scans_equal_the_step_loop_across_chunks_with_lengths_and_gradients(name, T, form):
    torch.manual_seed(1)
    cell = cells.make(name, 2, 4).double()
    x = torch.randn(3, T, 2, dtype=F64, requires_grad=True)
    lengths = torch.tensor([T, T // 2, 1])
    valid = torch.arange(T)[None] < lengths[:, None]
    h0 = torch.randn(3, 4, dtype=F64, requires_grad=True)
    y, (h,) = _scan(cell, form)(x, (h0,), valid)
    y = y.masked_fill(~valid[..., None], 0.0)
    y_ref, (h_ref,) = lstmkit.Recurrent(cell, engine="reference")(x, (h0,), lengths=lengths)
    torch.testing.assert_close(y, y_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(h, h_ref, rtol=1e-12, atol=1e-12)
    inputs = [x, h0, *cell.parameters()]
    grads = torch.autograd.grad((y ** 2).sum() + h.sum(), inputs)
    grads_ref = torch.autograd.grad((y_ref ** 2).sum() + h_ref.sum(), inputs)
    for a, b in zip(grads, grads_ref):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("name", ["mingru", "minlstm"])
def test_float32_stays_close_over_long_sequences(name, form):
    """A 5,000-step float32 scan stays within 1e-4 of the float64 loop: the compiled scan runs the
    recurrence itself; the log-space one keeps its cumulated log-coefficients small by chunks."""
    torch.manual_seed(2)
    cell = cells.make(name, 4, 8)
    x = torch.randn(2, 5000, 4)
    with torch.no_grad():
        y32, _ = _scan(cell, form)(x, cell.init_state(2))
        y64, _ = lstmkit.Recurrent(cell.double(), engine="reference")(x.double())
    assert (y32.double() - y64).abs().max() < 1e-4


def test_the_compiled_scan_compiles_without_graph_breaks():
    if lstmkit._engine.load() is None:
        pytest.skip(f"no compiled engine here: {lstmkit._engine.load_error()}")
    torch.manual_seed(4)
    layer = lstmkit.Recurrent(cells.make("mingru", 3, 5))
    x = torch.randn(2, 7, 3)
    compiled = torch.compile(layer, fullgraph=True, backend="eager")
    torch.testing.assert_close(compiled(x)[0], layer(x)[0])


def test_minimal_cells_stack_and_run_both_ways_in_a_task_model_builder():
    torch.manual_seed(3)
    rnn = lstmkit.build_rnn("minlstm", 3, 6, num_layers=2, bidirectional=True)
    y, _ = rnn(torch.randn(4, 9, 3), lengths=torch.tensor([9, 5, 2, 1]))
    assert y.shape == (4, 9, 12) and y[3, 1:].abs().sum() == 0


def test_a_bidirectional_minimal_rnn_asked_to_stream_says_why_it_cannot():
    layer = lstmkit.build_rnn("mingru", 3, 4, bidirectional=True)
    with pytest.raises(ValueError, match="Bidirectional.step: argument 'self' expected a forward layer to stream .*"
                                         "bidirectional=False.*got a bidirectional MinGRU layer"):
        layer.step(torch.randn(2, 3))
    with pytest.raises(ValueError, match=r"Stack.step: .*got layers\[0\] Bidirectional"):
        lstmkit.build_rnn("minlstm", 3, 4, num_layers=2, bidirectional=True).step(torch.randn(2, 3))
