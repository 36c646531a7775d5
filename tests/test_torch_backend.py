"""The torch backend: layers of the cells with PyTorch's maths run PyTorch's fused recurrent
operators (cuDNN on a GPU) with the cells' own parameters, equal to the reference loop; "auto"
picks them where the engine does not run, and warns once where a cell has no fused form there."""

import warnings

import pytest
import torch

import lstmkit
from lstmkit import cells
from lstmkit.layers import torch_backend
from harness import assert_same, outputs_and_grads

F64 = torch.float64
TORCH_CELLS = [("lstm", {}), ("lstm", {"bias": False}), ("np", {}), ("np", {"bias": False}), ("gru", {}),
               ("gru", {"bias": False}), ("elman", {}), ("elman", {"activation": "relu"}),
               ("elman", {"bias": False})]


@pytest.mark.parametrize("name,options", TORCH_CELLS, ids=[f"{n}-{o}" for n, o in TORCH_CELLS])
def test_the_torch_backend_equals_the_reference_loop(name, options):
    torch.manual_seed(0)
    cell = cells.make(name, 3, 5, **options).double()
    x = torch.randn(4, 7, 3, dtype=F64)
    state = tuple(torch.randn(4, *shape, dtype=F64) for shape in cell.state_shapes())
    for reverse in (False, True):
        for lengths in (None, torch.tensor([7, 3, 0, 5])):
            fast, fast_grads = outputs_and_grads(lstmkit.Recurrent(cell, reverse=reverse, engine="torch"), x, state,
                                                 lengths)
            ref, ref_grads = outputs_and_grads(lstmkit.Recurrent(cell, reverse=reverse, engine="reference"), x, state,
                                               lengths)
            assert_same(fast + fast_grads, ref + ref_grads)


def test_only_cells_with_pytorchs_maths_take_the_torch_engine():
    assert [torch_backend.supports(cells.make(n, 2, 3, **o)) for n, o in
            [("lstm", {}), ("np", {}), ("gru", {}), ("elman", {"activation": "relu"}), ("gru_cho", {}),
             ("peephole", {}), ("elman", {"activation": "logistic"}), ("slstm", {})]] == [True] * 4 + [False] * 4
    with pytest.raises(ValueError, match="Recurrent: argument 'engine' expected .*engine='torch' takes lstm"):
        lstmkit.Recurrent(cells.make("peephole", 2, 3), engine="torch")


def test_auto_runs_pytorchs_operators_where_the_engine_does_not_and_warns_once_for_the_others(monkeypatch):
    calls = []
    original = torch_backend.run
    monkeypatch.setattr(torch_backend, "run", lambda *a: calls.append(type(a[0]).__name__) or original(*a))
    x = torch.randn(2, 5, 3, device="meta")                # a device the engine does not cover
    for name in ("lstm", "gru", "elman"):
        y, _ = lstmkit.Recurrent(cells.make(name, 3, 4)).to("meta")(x)
        assert y.shape == (2, 5, 4) and y.device.type == "meta"
    assert calls == ["LSTM", "GRU", "Elman"]
    layer = lstmkit.Recurrent(cells.make("cifg", 3, 4)).to("meta")
    with pytest.warns(RuntimeWarning, match="PeepholeLSTM has neither an engine kernel nor PyTorch's fused form on "
                                            "meta; its layers run the reference step loop"):
        layer(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        layer(x)                                           # once per cell class and device
    assert calls == ["LSTM", "GRU", "Elman"]
