"""The engine as PyTorch custom ops: ``torch.library.opcheck`` on every kernel family, models
compiled with ``torch.compile(fullgraph=True)`` (no graph breaks) equal to eager in outputs and
gradients, and ``torch.export`` with dynamic batch and time."""

from __future__ import annotations

import pytest
import torch
from torch.export import Dim

import lstmkit
from lstmkit import _engine, cells
from lstmkit._engine.kernels import KERNELS, empty
from lstmkit.models import Forecaster, SequenceClassifier

pytestmark = pytest.mark.skipif(not _engine.available(), reason="the compiled engine is unavailable")

F64 = torch.float64
# one cell (and option set) per kernel family and state layout
FAMILIES = [("lstm", {}), ("peephole", {}), ("fgr", {}), ("layernorm_lstm", {}), ("gru", {}), ("gru_cho", {}),
            ("elman", {"activation": "relu"}), ("lstm1997", {}), ("lstm1997", {"recurrent": "cells"}),
            ("slstm", {"heads": 2})]
IDS = [f"{name}-{k}" for k, (name, _) in enumerate(FAMILIES)]


@pytest.fixture(autouse=True)
def _fresh_compiler():
    """Each test compiles its own model: compiled code of earlier tests' models (other cells in the
    same layer classes) would count towards Dynamo's recompile limit."""
    torch.compiler.reset()
    yield
    torch.compiler.reset()


@pytest.mark.parametrize("name,options", FAMILIES, ids=IDS)
def test_opcheck_the_custom_op_of_every_family(name, options):
    torch.manual_seed(0)
    cell = cells.make(name, 3, 4, **options).double()
    kernel = KERNELS[type(cell)]
    x = torch.randn(2, 5, 3, dtype=F64, requires_grad=True)
    params = [p if p is not None else empty(x) for p in kernel.params(cell)]
    state = [s.clone().requires_grad_() for s in kernel.to_engine_state(cell, cell.init_state(2))]
    # full lengths: past a shorter one the saved gate buffers hold whatever the memory held (the
    # backward never reads them), which opcheck's comparisons of every output would flag
    lengths = torch.tensor([5, 5])
    args = (kernel.name, kernel.spec(cell), x, params, state, lengths, True)
    torch.library.opcheck(torch.ops.lstmkit.recurrence.default, args)


def _grads(module, x, lengths):
    y, _ = module(x, lengths=lengths)
    weights = torch.linspace(-1, 1, y.numel(), dtype=y.dtype).view_as(y)
    return y.detach(), torch.autograd.grad((y * weights).sum(), [x, *module.parameters()])


@pytest.mark.parametrize("name,options", FAMILIES, ids=IDS)
def test_a_compiled_stack_equals_eager_without_graph_breaks(name, options):
    torch.manual_seed(1)
    net = lstmkit.build_rnn(name, 3, 4, num_layers=2, bidirectional=True, **options).double()
    compiled = torch.compile(net, fullgraph=True, dynamic=True, backend="aot_eager")
    for B, T in ((3, 6), (2, 9)):                  # a second shape: no recompilation per shape needed
        x = torch.randn(B, T, 3, dtype=F64, requires_grad=True)
        lengths = torch.tensor([T, 2, T - 1][:B])
        y, grads = _grads(net, x, lengths)
        y_c, grads_c = _grads(compiled, x, lengths)
        torch.testing.assert_close(y_c, y, rtol=1e-12, atol=1e-12)
        for a, b in zip(grads_c, grads):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_inductor_compiles_a_classifier_equal_to_eager():
    torch.manual_seed(2)
    model = SequenceClassifier("lstm", 3, 8, 4, pooling="mean", bidirectional=True)
    compiled = torch.compile(model, fullgraph=True)
    x, lengths = torch.randn(4, 7, 3, requires_grad=True), torch.tensor([7, 2, 5, 1])
    logits, _ = model(x, lengths=lengths)
    logits_c, _ = compiled(x, lengths=lengths)
    torch.testing.assert_close(logits_c, logits, rtol=1e-5, atol=1e-6)
    grads = torch.autograd.grad(logits.square().sum(), [x, *model.parameters()])
    grads_c = torch.autograd.grad(logits_c.square().sum(), [x, *model.parameters()])
    for a, b in zip(grads_c, grads):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


class _Logits(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x, lengths):
        return self.model(x, lengths=lengths)[0]


def test_torch_export_captures_a_classifier_with_dynamic_batch_and_time():
    torch.manual_seed(3)
    model = _Logits(SequenceClassifier("peephole", 3, 8, 4, pooling="last", bidirectional=True, num_layers=2).eval())
    batch, time = Dim("batch", min=1), Dim("time", min=2)
    program = torch.export.export(model, (torch.randn(4, 6, 3), torch.tensor([6, 3, 5, 1])),
                                  dynamic_shapes={"x": {0: batch, 1: time}, "lengths": {0: batch}})
    assert "lstmkit.recurrence" in program.graph_module.code
    for B, T in ((1, 2), (5, 13)):
        x, lengths = torch.randn(B, T, 3), torch.randint(1, T + 1, (B,))
        torch.testing.assert_close(program.module()(x, lengths), model(x, lengths), rtol=1e-6, atol=1e-6)


def test_torch_export_captures_a_forecaster():
    torch.manual_seed(4)
    model = Forecaster("gru", 2, 6, horizon=3).eval()
    program = torch.export.export(model, (torch.randn(3, 12, 2),), dynamic_shapes={"x": {0: Dim("batch"),
                                                                                         1: Dim("window", min=2)}})
    x = torch.randn(2, 20, 2)
    torch.testing.assert_close(program.module()(x)[0], model(x)[0], rtol=1e-6, atol=1e-6)
