"""Cells by name, so configs and the command line can refer to them."""

from __future__ import annotations

import inspect
from collections.abc import Callable

from .._checks import fail
from ._base import Cell

__all__ = ["register", "names", "make", "builder"]

_BUILDERS: dict[str, Callable[..., Cell]] = {}


def register(name: str) -> Callable[[Callable[..., Cell]], Callable[..., Cell]]:
    """Decorator: register a builder ``(input_size, hidden_size, **options) -> Cell`` under ``name``."""

    def add(build: Callable[..., Cell]) -> Callable[..., Cell]:
        if name in _BUILDERS:
            raise ValueError(f"register: a cell named {name!r} is already registered")
        _BUILDERS[name] = build
        return build

    return add


def names() -> list[str]:
    """The registered cell names, sorted."""
    return sorted(_BUILDERS)


def builder(name: str) -> Callable[..., Cell]:
    """The builder registered under ``name``."""
    if not isinstance(name, str):
        fail("lstmkit.cells", "name", "a cell name (str)", type(name).__name__, kind=TypeError)
    if name not in _BUILDERS:
        fail("lstmkit.cells", "name", f"one of {names()}", repr(name))
    return _BUILDERS[name]


def make(name: str, input_size: int, hidden_size: int, **options) -> Cell:
    """Build the cell registered as ``name``; ``options`` are that cell's keyword options.

    >>> make("lstm", 3, 8, gate_bias={"f": 1.0}).bias[8:16].tolist() == [1.0] * 8
    True
    """
    build = builder(name)
    params = inspect.signature(build).parameters.values()
    accepted = [p.name for p in params if p.kind is p.KEYWORD_ONLY]
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params)
    unknown = [] if takes_any else sorted(set(options) - set(accepted))
    if unknown:
        fail(f"lstmkit.cells.make({name!r})", unknown[0], f"an option out of {accepted}", "an unknown option",
             kind=TypeError)
    return build(input_size, hidden_size, **options)
