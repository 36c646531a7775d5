"""Every registered cell (and option set in the harness) through the same checks."""

import pytest
import torch

import lstmkit
from lstmkit import cells
from harness import (CASE_IDS, CASES, ENGINES, F64, TOL, B, I, T, build, gradcheck_layer, random_state, run_alone,
                     step_tol, usable)

pytestmark = pytest.mark.parametrize("name,options", CASES, ids=CASE_IDS)


@pytest.fixture(params=ENGINES)
def engine(request):
    return request.param


def test_init_state_is_zeros_of_the_declared_shapes(name, options):
    cell = build(name, options)
    state = cell.init_state(B)
    assert [tuple(s.shape) for s in state] == [(B, *shape) for shape in cell.state_shapes()]
    assert all(s.dtype == F64 and not s.any() for s in state)
    assert cell.init_state(2, dtype=torch.float32)[0].dtype == torch.float32


def test_step_shapes_and_state_round_trip(name, options):
    cell = build(name, options)
    y, state = cell.step(torch.randn(B, I, dtype=F64))
    assert y.shape == (B, cell.output_size)
    assert [tuple(s.shape) for s in state] == [(B, *shape) for shape in cell.state_shapes()]
    y2, _ = cell.step(torch.randn(B, I, dtype=F64), state)
    assert torch.isfinite(y2).all()


def test_layer_equals_the_step_loop(name, options, engine):
    cell = build(name, options)
    x = torch.randn(B, T, I, dtype=F64)
    state0 = random_state(cell, B)
    y, final = lstmkit.Recurrent(cell, engine=usable(cell, engine))(x, state0)
    state, ys = state0, []
    for t in range(T):
        y_t, state = cell.step(x[:, t], state)
        ys.append(y_t)
    torch.testing.assert_close(y, torch.stack(ys, 1), **step_tol(cell, engine))
    for a, b in zip(final, state):
        torch.testing.assert_close(a, b, **step_tol(cell, engine))


def test_gradcheck_with_lengths_both_directions(name, options, engine):
    cell = build(name, options)
    x = torch.randn(B, T, I, dtype=F64)
    lengths = torch.tensor([T, 2, 4])
    for reverse in (False, True):
        layer = lstmkit.Recurrent(cell, reverse=reverse, engine=usable(cell, engine))
        assert gradcheck_layer(layer, x, random_state(cell, B), lengths)


def test_variable_lengths_equal_each_sequence_alone(name, options, engine):
    cell = build(name, options)
    x = torch.randn(B, T, I, dtype=F64)
    lengths = torch.tensor([2, T, 0])
    state0 = random_state(cell, B)
    for reverse in (False, True):
        layer = lstmkit.Recurrent(cell, reverse=reverse, engine=usable(cell, engine))
        y, final = layer(x, state0, lengths=lengths)
        ys, finals = run_alone(layer, x, state0, lengths)
        for b in range(B):
            L = int(lengths[b])
            torch.testing.assert_close(y[b, :L], ys[b], rtol=1e-12, atol=1e-12)
            assert not y[b, L:].any(), "outputs past the length must be zero"
            for s, s_alone in zip(final, finals[b]):
                torch.testing.assert_close(s[b:b + 1], s_alone, rtol=1e-12, atol=1e-12)


def test_chunked_streaming_equals_the_whole_sequence(name, options, engine):
    cell = build(name, options)
    layer = lstmkit.Recurrent(cell, engine=usable(cell, engine))
    x = torch.randn(B, 7, I, dtype=F64)
    y, final = layer(x)
    state, parts = None, []
    for chunk in (x[:, :3], x[:, 3:4], x[:, 4:]):
        y_c, state = layer(chunk, state)
        parts.append(y_c)
    torch.testing.assert_close(torch.cat(parts, 1), y, **TOL[engine])
    # and one step at a time
    state, steps = None, []
    for t in range(7):
        y_t, state = layer.step(x[:, t], state)
        steps.append(y_t)
    torch.testing.assert_close(torch.stack(steps, 1), y, **step_tol(cell, engine))


def test_a_step_without_a_graph_equals_the_whole_sequence(name, options, engine, monkeypatch):
    """Streaming and generation step without gradients: through the engine's single step where
    the cell has no fused PyTorch op and the engine is on."""
    cell = build(name, options)
    layer = lstmkit.Recurrent(cell, engine=usable(cell, engine))
    x = torch.randn(B, 4, I, dtype=F64)
    state0 = random_state(cell, B)
    y, final = layer(x, state0)
    calls = []
    engine_step = lstmkit._engine.step
    monkeypatch.setattr(lstmkit._engine, "step", lambda *a: calls.append(1) or engine_step(*a))
    with torch.no_grad():
        state, steps = state0, []
        for t in range(4):
            y_t, state = layer.step(x[:, t], state)
            steps.append(y_t)
    through_engine = engine == "fast" and cell.fused_step(x[:, 0], state0) is None and lstmkit._engine.supports(cell)
    assert len(calls) == (4 if through_engine else 0)
    torch.testing.assert_close(torch.stack(steps, 1), y.detach(), **step_tol(cell, engine))
    for a, b in zip(state, final):
        torch.testing.assert_close(a, b.detach(), **step_tol(cell, engine))


def test_same_seed_same_cell_and_float32_runs(name, options):
    a, b = build(name, options, seed=3), build(name, options, seed=3)
    for (na, pa), (nb, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert na == nb and torch.equal(pa, pb)
    c32 = build(name, options).float()
    y, _ = lstmkit.Recurrent(c32)(torch.randn(2, 3, I))
    assert y.dtype == torch.float32 and torch.isfinite(y).all()


def test_gate_bias_option_sets_each_named_gate(name, options):
    if "gate_bias" in options or not cells.builder(name).__kwdefaults__ or \
            "gate_bias" not in cells.builder(name).__kwdefaults__:
        pytest.skip("cell without the gate_bias option, or a case that sets it already")
    probe = build(name, options)
    rows = probe._gate_rows()
    if not rows:
        pytest.skip("no bias in this configuration")
    values = {g: 0.25 * (k + 1) for k, g in enumerate(rows)}
    cell = build(name, {**options, "gate_bias": values})
    for g, (params, where) in cell._gate_rows().items():
        assert torch.all(params[0][where] == values[g])
        for other in params[1:]:
            assert not other[where].any()
    with pytest.raises(ValueError, match="gate_bias"):
        build(name, {**options, "gate_bias": {"nonexistent": 1.0}})


def test_docstring_states_the_equations_and_gate_order(name, options):
    doc = type(build(name, options)).__doc__
    assert "math::" in doc and ("order" in doc.lower() or not build(name, options).gates)


def test_step_rejects_bad_input(name, options):
    cell = build(name, options)
    cls = type(cell).__name__
    with pytest.raises(ValueError, match=rf"{cls}: argument 'x_t' expected {I} features"):
        cell.step(torch.zeros(2, I + 1, dtype=F64))
    with pytest.raises(ValueError, match=rf"{cls}: argument 'state\[0\]' expected shape"):
        cell.step(torch.zeros(2, I, dtype=F64), tuple(torch.zeros(3, *s, dtype=F64) for s in cell.state_shapes()))
    with pytest.raises(TypeError, match="dtype torch.float64"):
        cell.step(torch.zeros(2, I))
