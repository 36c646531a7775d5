"""User-written cells (``UserCell``) in the engine: the programs lowered from their step equal the
step (float64, outputs and every gradient), equal the built-in kernels where the maths is theirs,
fall back with a warning naming the reason, and are cached per step; the zoo equals torchrecurrent.

The registered zoo cells also go through the whole conformance harness (tests/test_engine.py and
the others parametrised over ``harness.CASES``)."""

import warnings

import numpy as np
import pytest
import torch
from torch import nn

import lstmkit
from lstmkit import _engine, cells
from lstmkit._engine import codegen, lowering, programs
from lstmkit.cells import UserCell
from lstmkit.cells.examples import WrittenGRU, WrittenLSTM, WrittenPeephole
from lstmkit.layers import Bidirectional, Stack
from harness import ENGINES, F64, assert_engine_equals_reference, assert_same, outputs_and_grads, random_state

pytestmark = pytest.mark.skipif("fast" not in ENGINES, reason="engine turned off by LSTMKIT_ENGINE=reference")


class Kitchen(UserCell):
    """Three states (one without a product), a scalar and a buffer, numbers and plain attributes, and
    the operations the lowering takes: slices, indexing, cat, where, clamp, relu, exp, division,
    powers, comparisons, reductions."""

    def __init__(self, input_size, hidden_size, scale=0.5):
        super().__init__(input_size, hidden_size)
        H = hidden_size
        self.scale = scale
        self.weight_ih = nn.Parameter(torch.empty(3 * H, input_size))
        self.weight_hh = nn.Parameter(torch.empty(2 * H, H))
        self.weight_m = nn.Parameter(torch.empty(H, H))
        self.gain = nn.Parameter(torch.empty(()))
        self.bias = nn.Parameter(torch.empty(3 * H))
        self.register_buffer("offset", torch.linspace(-0.5, 0.5, H))
        self._init_uniform(0.5)

    def state_shapes(self):
        return ((self.hidden_size,),) * 3

    def products(self):
        return self.weight_ih, (self.weight_hh, None, self.weight_m)

    def pointwise(self, zx, zs, state):
        h, c, m = state
        H = self.hidden_size
        z = zx + self.bias
        a, b = z[..., :H], z[..., H:2 * H]
        g = torch.cat([zs[0][..., H:], zs[0][..., :H]], dim=-1)
        gate = torch.sigmoid(a + g[..., :H] + self.offset)
        cand = torch.where(b > 0, torch.tanh(b), torch.exp(b) - 1) + self.gain * zs[2]
        c_new = gate * c + (1 - gate) * torch.clamp(cand, -0.9, 0.9)
        bump = torch.relu(z[..., 2 * H:]) / (1 + c_new ** 2) + (c_new > 0.1) * 0.01
        m_new = self.scale * m + bump * c_new.sum(-1, keepdim=True) / H
        return torch.tanh(c_new) * torch.sigmoid(g[..., H:]) + m_new, c_new, m_new


def _build(cls, seed=0, **kw):
    torch.manual_seed(seed)
    return cls(3, 5, **kw).to(F64)


@pytest.fixture(params=["compiled", "interpreted"])
def rows(request, monkeypatch):
    """Both ways the engine runs a user cell's programs: compiled row functions, the interpreter."""
    monkeypatch.setattr(programs, "compiled_rows", request.param == "compiled")
    return request.param


@pytest.mark.parametrize("cls", [WrittenLSTM, WrittenGRU, WrittenPeephole, Kitchen])
def test_user_cells_in_the_engine_equal_their_step_outputs_and_all_gradients(cls, rows):
    assert_engine_equals_reference(_build(cls), torch.randn(4, 7, 3, dtype=F64), (None, torch.tensor([7, 3, 0, 5])))


@pytest.mark.parametrize("cls,name", [(WrittenLSTM, "lstm"), (WrittenGRU, "gru"), (WrittenPeephole, "peephole")])
def test_user_rewrites_of_built_in_cells_equal_the_built_in_kernels(cls, name, rows):
    mine = _build(cls)
    builtin = cells.make(name, 3, 5).to(F64)
    builtin.load_state_dict(mine.state_dict())
    x = torch.randn(4, 9, 3, dtype=F64)
    lengths = torch.tensor([9, 4, 1, 6])
    state = random_state(mine, 4)
    out_u, grad_u = outputs_and_grads(lstmkit.Recurrent(mine, engine="fast"), x, state, lengths)
    out_b, grad_b = outputs_and_grads(lstmkit.Recurrent(builtin, engine="fast"), x, state, lengths)
    assert_same(out_u, out_b, tol=1e-10)
    assert_same(grad_u, grad_b, tol=1e-10)


def test_user_cells_stream_stack_and_run_in_float32_and_bfloat16(rows):
    cell = _build(Kitchen).float()
    layer = lstmkit.Recurrent(cell)
    x = torch.randn(3, 8, 3)
    y, final = layer(x)
    y_ref, final_ref = lstmkit.Recurrent(cell, engine="reference")(x)
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
    state = None                                                 # streaming: one step at a time
    for t in range(8):
        y_t, state = layer.step(x[:, t], state)
        torch.testing.assert_close(y_t, y[:, t], rtol=1e-5, atol=1e-5)
    y_bf, _ = lstmkit.Recurrent(cell.bfloat16())(x.bfloat16())
    assert (y_bf.float() - y_ref).abs().max() < 0.1
    stack = Stack([Bidirectional(WrittenGRU(3, 5), WrittenGRU(3, 5)),
                   Bidirectional(WrittenGRU(10, 5), WrittenGRU(10, 5))])
    x = torch.randn(2, 4, 3)
    assert stack(x, lengths=torch.tensor([4, 2]))[0].shape == (2, 4, 10)


def test_user_cells_compile_without_graph_breaks():
    cell = _build(WrittenGRU)
    layer = lstmkit.Recurrent(cell)
    x = torch.randn(2, 5, 3, dtype=F64)
    compiled = torch.compile(layer, fullgraph=True, backend="eager")
    torch.testing.assert_close(compiled(x)[0], layer(x)[0])


def test_the_zoo_equals_torchrecurrent_on_the_same_weights(rows):
    tr = pytest.importorskip("torchrecurrent")
    pairs = {"indrnn": (tr.IndRNNCell, {"nonlinearity": "relu"}), "janet": (tr.JANETCell, {}),
             "ligru": (tr.LiGRUCell, {}), "cornn": (tr.coRNNCell, {"dt": 0.2, "gamma": 0.5, "epsilon": 0.3}),
             "unicornn": (tr.UnICORNNCell, {"alpha": 0.4}), "br": (tr.BRCell, {}), "nbr": (tr.NBRCell, {}),
             "fastrnn": (tr.FastRNNCell, {}), "fastgrnn": (tr.FastGRNNCell, {"nonlinearity": "sigmoid"}),
             "star": (tr.STARCell, {}), "cfn": (tr.CFNCell, {}), "ugrnn": (tr.UGRNNCell, {}),
             "antisymmetric_rnn": (tr.AntisymmetricRNNCell, {"gamma": 0.1, "epsilon": 0.5}),
             "gated_antisymmetric_rnn": (tr.GatedAntisymmetricRNNCell, {"gamma": 0.1, "epsilon": 0.5})}
    for name, (cls, options) in pairs.items():
        torch.manual_seed(0)
        theirs = cls(3, 5, **options).to(F64)
        with torch.no_grad():
            for p in theirs.parameters():
                p.normal_(0, 0.5)
        mine = cells.make(name, 3, 5, **options).to(F64)
        mine.load_state_dict(theirs.state_dict())
        x = torch.randn(4, 6, 3, dtype=F64, requires_grad=True)
        state, outs = None, []
        for t in range(6):
            state = theirs(x[:, t], state)
            outs.append(state[0] if isinstance(state, tuple) else state)
        y_theirs = torch.stack(outs, 1)
        y_mine, _ = lstmkit.Recurrent(mine, engine="fast")(x)
        assert_same([y_mine], [y_theirs], tol=1e-12)
        g = torch.randn_like(y_mine)
        grads_theirs = torch.autograd.grad((y_theirs * g).sum(), [x, *theirs.parameters()])
        grads_mine = dict(zip(["x", *dict(mine.named_parameters())],
                              torch.autograd.grad((y_mine * g).sum(), [x, *mine.parameters()])))
        names = ["x", *dict(theirs.named_parameters())]
        assert_same([grads_mine[n] for n in names], list(grads_theirs), tol=1e-10)


class Branchy(WrittenGRU):
    def pointwise(self, zx, zs, state):
        if (zx > 0).any():                      # control flow on the values: not one program
            return (torch.tanh(zx[..., :self.hidden_size]),)
        return super().pointwise(zx, zs, state)


class Cumulative(WrittenGRU):
    def pointwise(self, zx, zs, state):
        return (torch.cumsum(super().pointwise(zx, zs, state)[0], -1),)


class ReadsMatrix(WrittenGRU):
    def pointwise(self, zx, zs, state):
        return (torch.tanh(state[0] @ self.weight_hh[:self.hidden_size]),)


@pytest.mark.parametrize("cls,reason", [
    (Branchy, r"Branchy's step.*could not be traced.*test_user_cells.py:\d+: if \(zx > 0\).any\(\)"),
    (Cumulative, r"Cumulative's step.*cumsum has no engine form.*test_user_cells.py"),
    (ReadsMatrix, r"ReadsMatrix's step.*reads weight_hh, a tensor of shape \(15, 5\).*declared products only.*"
                  r"test_user_cells.py:\d+: return \(torch.tanh\(state\[0\] @ self.weight_hh"),
])
def test_a_step_the_engine_cannot_take_warns_once_naming_it_and_runs_the_reference_loop(cls, reason):
    cell = _build(cls)
    x = torch.randn(2, 4, 3, dtype=F64)
    with pytest.warns(RuntimeWarning, match=reason):
        layer = lstmkit.Recurrent(cell)
        assert not layer.uses_engine()
    with warnings.catch_warnings():
        warnings.simplefilter("error")                            # once per class and reason
        y, _ = layer(x)
        assert not lstmkit.Recurrent(_build(cls)).uses_engine()
    assert_same([y], [lstmkit.Recurrent(cell, engine="reference")(x)[0]])
    with pytest.raises(ValueError, match="engine"):
        lstmkit.Recurrent(cell, engine="fast")


def test_declared_products_that_do_not_fit_are_named():
    class WrongInput(WrittenGRU):
        def products(self):
            return self.weight_hh, (self.weight_hh,)

    class WrongCount(WrittenGRU):
        def products(self):
            return self.weight_ih, (self.weight_hh, None)

    class WrongState(WrittenGRU):
        def products(self):
            return self.weight_ih, (self.weight_ih,)

    x = torch.randn(2, 3, dtype=F64)
    with pytest.raises(ValueError, match=r"WrongInput: argument 'products\(\)\[0\]' expected a matrix \(N, 3\)"):
        _build(WrongInput).step(x)
    with pytest.raises(ValueError, match=r"WrongCount: argument 'products\(\)\[1\]' expected one matrix or None per "
                                         r"state \(1\), got 2 entries"):
        _build(WrongCount).step(x)
    with pytest.raises(ValueError, match=r"WrongState: argument 'products\(\)\[1\]\[0\]' expected None or a matrix "
                                         r"\(n, 5\)"):
        lstmkit.Recurrent(_build(WrongState))(x[:, None])


def test_programs_are_cached_per_step_and_a_changed_step_or_number_gets_its_own():
    a, b = _build(Kitchen), _build(Kitchen, seed=1)
    assert _engine.kernel_of(a) is _engine.kernel_of(b)           # same step, other weights: one program
    c = _build(Kitchen, scale=0.25)
    assert _engine.kernel_of(c) is not _engine.kernel_of(a)       # the number it reads differs

    class Changed(WrittenGRU):
        pass

    cell = _build(Changed)
    before = _engine.kernel_of(cell)
    x = torch.randn(2, 3, 3, dtype=F64)
    Changed.pointwise = lambda self, zx, zs, state: (torch.tanh(zx[..., :5] + zs[0][..., :5]),)
    after = _engine.kernel_of(cell)
    assert after is not before
    assert_same([lstmkit.Recurrent(cell)(x)[0]], [lstmkit.Recurrent(cell, engine="reference")(x)[0]])


def test_the_programs_operations_are_the_extensions():
    assert tuple(_engine.load().program_ops()) == lowering.OPS
    program = programs.kernel_of(_build(WrittenLSTM)).lowered.forward
    ops = {lowering.OPS[int(op)] for op in program.code[:, 0]}
    assert {"sigmoid", "tanh", "mul", "add"} <= ops and "copy" not in ops     # chunks are offsets, not copies


def test_cells_that_fit_one_loop_over_the_units_are_compiled_and_cached_on_disk(tmp_path, monkeypatch):
    if codegen.compiler() is None:
        pytest.skip("no C++ compiler here")
    for name in ["indrnn", "janet", "fastgrnn", "cornn", "unicornn", "antisymmetric_rnn"]:
        assert programs.kernel_of(cells.make(name, 3, 5)).rows, name
    assert programs.kernel_of(_build(WrittenPeephole)).rows
    assert not programs.kernel_of(_build(Kitchen)).rows         # it reads a sum over the row: interpreted
    monkeypatch.setenv("LSTMKIT_ENGINE_DIR", str(tmp_path))
    text = codegen.source(programs.kernel_of(_build(WrittenGRU)).lowered, 5, [15, 15, 5, 15, 15], [15, 15])
    first = codegen.row_functions(text + "// a new library\n")
    assert len(list((tmp_path / "cells").glob("cell_*.so"))) == 1
    calls = []
    monkeypatch.setattr(codegen.subprocess, "run", lambda *a, **k: calls.append(a))
    codegen._libraries.clear()
    assert set(codegen.row_functions(text + "// a new library\n")) == set(first) and not calls


def test_a_step_that_does_not_compile_is_interpreted_after_one_warning(monkeypatch):
    if codegen.compiler() is None:
        pytest.skip("no C++ compiler here")
    monkeypatch.setattr(codegen, "_FLAGS", [*codegen._FLAGS, "-fno-such-flag"])

    class Uncompiled(WrittenGRU):
        pass

    cell = _build(Uncompiled)
    with pytest.warns(RuntimeWarning, match="Uncompiled's step could not be compiled, so the engine interprets it"):
        assert not programs.kernel_of(cell).rows
    x = torch.randn(2, 4, 3, dtype=F64)
    assert_same([lstmkit.Recurrent(cell)(x)[0]], [lstmkit.Recurrent(cell, engine="reference")(x)[0]])


@pytest.mark.parametrize("name", ["indrnn", "janet", "cornn", "unicornn", "fastgrnn", "antisymmetric_rnn", "br", "cfn"])
def test_user_cells_export_to_onnx_as_a_scan_of_their_program(name):
    ort = pytest.importorskip("onnxruntime")
    from lstmkit.export import to_onnx
    from lstmkit.layers import Bidirectional
    torch.manual_seed(0)
    cell = cells.make(name, 3, 5)
    for layer in (lstmkit.Recurrent(cell).eval(), Bidirectional(cell, cells.make(name, 3, 5)).eval()):
        session = ort.InferenceSession(to_onnx(layer).SerializeToString(), providers=["CPUExecutionProvider"])
        x, lengths = torch.randn(3, 6, 3), torch.tensor([6, 2, 4])
        got = session.run(None, {"x": x.numpy(), "lengths": lengths.numpy()})[0]
        with torch.no_grad():
            want = layer(x, lengths=lengths)[0]
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-5, atol=1e-5)


def test_a_user_cell_with_slices_sums_and_cat_exports_to_onnx():
    ort = pytest.importorskip("onnxruntime")
    from lstmkit.export import to_onnx
    torch.manual_seed(0)
    layer = lstmkit.Recurrent(Kitchen(3, 5)).eval()
    session = ort.InferenceSession(to_onnx(layer).SerializeToString(), providers=["CPUExecutionProvider"])
    x, lengths = torch.randn(2, 7, 3), torch.tensor([7, 4])
    got = session.run(None, {"x": x.numpy(), "lengths": lengths.numpy()})[0]
    with torch.no_grad():
        want = layer(x, lengths=lengths)[0]
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-5, atol=1e-5)
