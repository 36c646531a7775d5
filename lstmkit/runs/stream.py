"""The protocol of a task's streaming sessions (``Task.stream``), which ``lstmkit serve`` opens.

A stream is built once per served run, ``Stream(run, lock)``: ``lock`` serialises its use of the
model with the run's other calls. It has the schemas of a session's start and of its step records
(``start_input``, ``step_input``); ``start`` and ``update`` (coroutines) turn them into the model's
calls, each one step of one session handed to ``submit(state, input)``, which runs the steps of
concurrent sessions together through ``advance(states, inputs)``. States export to JSON and back
(``export``, ``restore``), so another replica can resume a session. ``supported(model)``, where a
stream has it, says whether a run's model can stream at all.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, Protocol

import torch
from pydantic import BaseModel
from torch import Tensor

from ..layers import Recurrent, Stack
from ..models import XLSTM

__all__ = ["Stream", "Submit", "gather", "scatter", "opens", "plain", "filled", "forward_only", "initial_state"]

Submit = Callable[[Any, Any], Awaitable[tuple[Any, Any]]]


class Stream(Protocol):
    start_input: ClassVar[type[BaseModel]]
    step_input: ClassVar[type[BaseModel]]

    async def start(self, record: BaseModel, submit: Submit) -> tuple[Any, dict]: ...

    async def update(self, state: Any, record: BaseModel, submit: Submit) -> tuple[Any, dict]: ...

    def advance(self, states: list, inputs: list) -> list[tuple[Any, Any]]: ...

    def export(self, state: Any) -> dict: ...

    def restore(self, exported: dict) -> Any: ...


def opens(run, lock) -> Stream | None:
    """The stream of a run's task, or None when its task (or this run's model) has none."""
    stream = run.task.stream
    if stream is None or not getattr(stream, "supported", lambda model: True)(run.model):
        return None
    return stream(run, lock)


def gather(states: list) -> Any:
    """Per-session states (batch 1) -> one batched state of the same structure."""
    first = states[0]
    if isinstance(first, Tensor):
        return torch.cat(states)
    return type(first)(gather(list(parts)) for parts in zip(*states))


def scatter(state: Any, i: int) -> Any:
    """Session ``i``'s part of a batched state, as its own copy: a view would keep the whole
    batch's tensors alive for as long as any one of its sessions lives."""
    if isinstance(state, Tensor):
        return state[i:i + 1].clone()
    return type(state)(scatter(part, i) for part in state)


def plain(state: Any) -> Any:
    """A recurrent state (a tensor, or tuples and lists of them) as nested lists of numbers (JSON)."""
    return state.tolist() if isinstance(state, Tensor) else [plain(part) for part in state]


def filled(template: Any, data: Any) -> Any:
    """:func:`plain`'s lists back into a state shaped as ``template``; a ``ValueError`` saying what
    does not fit (a shape, a count, a number that is not finite)."""
    if isinstance(template, Tensor):
        t = torch.tensor(data, dtype=template.dtype)
        if t.shape != template.shape or not torch.isfinite(t).all():
            raise ValueError(f"expected finite numbers shaped {tuple(template.shape)}, got {tuple(t.shape)}")
        return t
    if not isinstance(data, list) or len(data) != len(template):
        raise ValueError(f"expected a list of {len(template)}")
    return type(template)(filled(a, b) for a, b in zip(template, data))


def forward_only(rnn) -> bool:
    """Whether a network (a layer, or a stack of them) reads forward only, so that it can step."""
    if isinstance(rnn, XLSTM):                      # its blocks read forward
        return True
    layers = rnn.layers if isinstance(rnn, Stack) else [rnn]
    return all(isinstance(layer, Recurrent) and not layer.reverse for layer in layers)


def initial_state(rnn) -> Any:
    """A forward-only network's initial state for one sequence (a layer's, or a stack's list)."""
    if hasattr(rnn, "init_state"):
        return rnn.init_state(1)
    return [layer.init_state(1) for layer in rnn.layers]
