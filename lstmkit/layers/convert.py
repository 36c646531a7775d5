"""Conversion both ways between lstmkit layers and ``torch.nn.LSTM`` / ``GRU`` / ``RNN``."""

from __future__ import annotations

import torch
from torch import nn

from .._checks import fail
from ..cells import GRU, LSTM, Cell, Elman
from .bidirectional import Bidirectional
from .build import build_rnn
from .recurrent import Recurrent
from .stack import Stack

__all__ = ["from_torch", "to_torch"]

_RNN_TYPES = (nn.LSTM, nn.GRU, nn.RNN)
_CELL_TYPES = (nn.LSTMCell, nn.GRUCell, nn.RNNCell)


def _cell_name_and_options(module: nn.Module) -> tuple[str, dict]:
    if isinstance(module, (nn.LSTM, nn.LSTMCell)):
        return "lstm", {}
    if isinstance(module, (nn.GRU, nn.GRUCell)):
        return "gru", {}
    return "elman", {"activation": module.nonlinearity}


def _copy_into(cell: Cell, module: nn.Module, suffix: str) -> None:
    """Copy torch's weights with ``suffix`` (e.g. "_l1_reverse"; "" for a torch cell) into ``cell``."""
    get = lambda name: getattr(module, name + suffix)  # noqa: E731
    with torch.no_grad():
        cell.weight_ih.copy_(get("weight_ih"))
        cell.weight_hh.copy_(get("weight_hh"))
        if not module.bias:
            return
        if isinstance(cell, GRU):      # r multiplies the recurrent bias of n: keep both vectors
            cell.bias_ih.copy_(get("bias_ih"))
            cell.bias_hh.copy_(get("bias_hh"))
        else:
            cell.bias.copy_(get("bias_ih") + get("bias_hh"))


def _cells_of(layer: Recurrent | Bidirectional) -> list[tuple[Cell, str]]:
    if isinstance(layer, Bidirectional):
        return [(layer.forward_layer.cell, ""), (layer.backward_layer.cell, "_reverse")]
    return [(layer.cell, "")]


def from_torch(module: nn.Module, *, engine: str = "auto") -> Recurrent | Bidirectional | Stack | Cell:
    """An lstmkit layer equal to ``module`` (``torch.nn.LSTM``, ``GRU`` or ``RNN``), same weights.

    Any ``num_layers`` (a :class:`Stack` with the same dropout), ``bidirectional`` (merge
    "concat", as torch), ``batch_first`` and ``bias``; the result has the module's dtype and
    device; ``engine`` is the layers' (see :class:`Recurrent`).
    ``torch.nn.LSTMCell``/``GRUCell``/``RNNCell`` give the equivalent cell.
    Final states come per layer (and per direction) instead of torch's stacked ``h_n``/``c_n``.
    """
    if not isinstance(module, _RNN_TYPES + _CELL_TYPES):
        fail("from_torch", "module", "a torch.nn.LSTM, GRU, RNN, LSTMCell, GRUCell or RNNCell",
             type(module).__name__, kind=TypeError)
    name, options = _cell_name_and_options(module)
    like = next(module.parameters())
    if isinstance(module, _CELL_TYPES):
        from ..cells import make
        cell = make(name, module.input_size, module.hidden_size, bias=module.bias, **options)
        cell = cell.to(dtype=like.dtype, device=like.device)
        _copy_into(cell, module, "")
        return cell
    if isinstance(module, nn.LSTM) and module.proj_size:
        fail("from_torch", "module", "an nn.LSTM without projections (proj_size=0)",
             f"proj_size={module.proj_size}")
    net = build_rnn(name, module.input_size, module.hidden_size, num_layers=module.num_layers,
                    bidirectional=module.bidirectional, dropout=float(module.dropout), batch_first=module.batch_first,
                    engine=engine, bias=module.bias, **options)
    net = net.to(dtype=like.dtype, device=like.device)
    layers = net.layers if isinstance(net, Stack) else [net]
    for k, layer in enumerate(layers):
        for cell, direction in _cells_of(layer):
            _copy_into(cell, module, f"_l{k}{direction}")
    return net


def _torch_kind(cell: Cell) -> tuple[type[nn.Module], dict]:
    """The torch module class a cell maps to, or a ValueError saying why there is none."""
    if type(cell) is LSTM:
        return nn.LSTM, {}
    if type(cell) is GRU and cell.reset_after:
        return nn.GRU, {}
    if type(cell) is Elman and cell.activation in ("tanh", "relu"):
        return nn.RNN, {"nonlinearity": cell.activation}
    why = {GRU: "torch.nn.GRU applies the reset gate after the recurrent product; gru_cho applies it before",
           Elman: "torch.nn.RNN has only tanh and relu activations"}.get(type(cell), "torch.nn has no such cell")
    fail("to_torch", "layer", "cells 'lstm', 'gru' or 'elman' (tanh/relu), which torch.nn has",
         f"{type(cell).__name__} ({why})")


def to_torch(layer: Recurrent | Bidirectional | Stack | Cell) -> nn.Module:
    """The ``torch.nn.LSTM``/``GRU``/``RNN`` (or ``*Cell``) equal to ``layer``, where the maths allows.

    Where it does not (a cell torch lacks, a lone reverse layer, a merge other than "concat",
    residual connections, layers of different sizes or kinds), a ValueError says why.
    """
    if isinstance(layer, Cell):
        kind, extra = _torch_kind(layer)
        cell_kind = {nn.LSTM: nn.LSTMCell, nn.GRU: nn.GRUCell, nn.RNN: nn.RNNCell}[kind]
        module = cell_kind(layer.input_size, layer.hidden_size, bias=_has_bias(layer), **extra)
        _copy_out(layer, module, "")
        return module.to(next(layer.parameters()))
    if isinstance(layer, Stack):
        if any(layer.residual):
            fail("to_torch", "layer", "a Stack without residual connections (torch.nn has none)",
                 f"residual={layer.residual}")
        layers, dropout = list(layer.layers), layer.dropout
    elif isinstance(layer, (Recurrent, Bidirectional)):
        layers, dropout = [layer], 0.0
    else:
        fail("to_torch", "layer", "a Recurrent, Bidirectional, Stack or Cell", type(layer).__name__, kind=TypeError)
    bidirectional = isinstance(layers[0], Bidirectional)
    for k, sub in enumerate(layers):
        if isinstance(sub, Bidirectional) != bidirectional:
            fail("to_torch", "layer", "layers all bidirectional or all one-direction", f"a mix at layers[{k}]")
        if isinstance(sub, Bidirectional) and sub.merge != "concat":
            fail("to_torch", "layer", "Bidirectional layers with merge='concat' (torch concatenates)",
                 f"merge={sub.merge!r} at layers[{k}]")
        if isinstance(sub, Recurrent) and sub.reverse:
            fail("to_torch", "layer", "forward layers (torch.nn has no reverse-only RNN)", f"reverse=True at layers[{k}]")
    cells = [cell for sub in layers for cell, _ in _cells_of(sub)]
    kinds = [_torch_kind(cell) for cell in cells]
    first = cells[0]
    for cell, kind in zip(cells, kinds):
        same = (kind == kinds[0] and cell.hidden_size == first.hidden_size and _has_bias(cell) == _has_bias(first))
        if not same:
            fail("to_torch", "layer", "the same cell kind, hidden size and bias in every layer and direction "
                 f"(as {type(first).__name__}({first.hidden_size}))", f"{type(cell).__name__}({cell.hidden_size})")
    kind, extra = kinds[0]
    module = kind(first.input_size, first.hidden_size, num_layers=len(layers), bias=_has_bias(first),
                  batch_first=layers[0].batch_first, dropout=dropout, bidirectional=bidirectional, **extra)
    for k, sub in enumerate(layers):
        for cell, direction in _cells_of(sub):
            _copy_out(cell, module, f"_l{k}{direction}")
    return module.to(next(first.parameters()))


def _has_bias(cell: Cell) -> bool:
    return any(getattr(cell, name, None) is not None for name in ("bias", "bias_ih"))


def _copy_out(cell: Cell, module: nn.Module, suffix: str) -> None:
    module.to(next(cell.parameters()))
    get = lambda name: getattr(module, name + suffix)  # noqa: E731
    with torch.no_grad():
        get("weight_ih").copy_(cell.weight_ih)
        get("weight_hh").copy_(cell.weight_hh)
        if not _has_bias(cell):
            return
        if isinstance(cell, GRU):
            get("bias_ih").copy_(cell.bias_ih)
            get("bias_hh").copy_(cell.bias_hh)
        else:
            get("bias_ih").copy_(cell.bias)
            get("bias_hh").zero_()
