"""The minimal RNNs (minGRU, minLSTM): their parallel scan against the step loop (the
conformance tests do outputs and gradients for every cell), here the paper's own log-space
formulas, float32 over long sequences, chunk boundaries and stacks."""

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
    y, _ = lstmkit.Recurrent(cell)(x)
    torch.testing.assert_close(y, _paper_scan(log_coeffs, log_values), rtol=1e-12, atol=1e-12)


def test_g_is_positive_continuous_and_its_log_is_exact():
    v = torch.linspace(-30, 30, 2001, dtype=F64)
    assert (g(v) > 0).all()
    torch.testing.assert_close(log_g(v), g(v).log(), rtol=1e-12, atol=1e-12)
    assert abs(float(g(torch.tensor(0.0, dtype=F64))) - float(torch.sigmoid(torch.tensor(0.0)))) < 1e-12


@pytest.mark.parametrize("name", ["mingru", "minlstm"])
@pytest.mark.parametrize("T", [CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK + 5])
def test_chunk_boundaries_carry_the_state_exactly(name, T):
    torch.manual_seed(1)
    cell = cells.make(name, 2, 4).double()
    x = torch.randn(3, T, 2, dtype=F64)
    lengths = torch.tensor([T, T // 2, 1])
    state = (torch.randn(3, 4, dtype=F64),)
    fast, loop = lstmkit.Recurrent(cell), lstmkit.Recurrent(cell, engine="reference")
    for a, b in zip(fast(x, state, lengths=lengths), loop(x, state, lengths=lengths)):
        torch.testing.assert_close(a if isinstance(a, torch.Tensor) else a[0], b if isinstance(b, torch.Tensor) else b[0],
                                   rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["mingru", "minlstm"])
def test_float32_stays_close_over_long_sequences(name):
    """Chunking keeps the cumulated log-coefficients small: a 5,000-step float32 scan stays
    within 1e-4 of the float64 loop (one scan over all steps drifts by far more)."""
    torch.manual_seed(2)
    cell = cells.make(name, 4, 8)
    x = torch.randn(2, 5000, 4)
    with torch.no_grad():
        y32, _ = lstmkit.Recurrent(cell)(x)
        y64, _ = lstmkit.Recurrent(cell.double(), engine="reference")(x.double())
    assert (y32.double() - y64).abs().max() < 1e-4


def test_minimal_cells_stack_and_run_both_ways_in_a_task_model_builder():
    torch.manual_seed(3)
    rnn = lstmkit.build_rnn("minlstm", 3, 6, num_layers=2, bidirectional=True)
    y, _ = rnn(torch.randn(4, 9, 3), lengths=torch.tensor([9, 5, 2, 1]))
    assert y.shape == (4, 9, 12) and y[3, 1:].abs().sum() == 0
