"""The task registry: every kind of job ``lstmkit train`` can run, by the name a config gives.

A task is one module holding one :class:`~lstmkit.train.tasks.Task` subclass: its config (a
:class:`~lstmkit.train.config.RunConfig` subclass), data preparation, model, loss and metrics,
plots, the pydantic schemas of its ``predict`` records and its summary lines. Registering it
makes it a choice of ``task:`` in configs, of ``lstmkit config``, and of everything that reads a
run (``evaluate``, ``predict``)::

    from lstmkit.train import registry
    from lstmkit.train.tasks import Task

    @registry.register
    class MyTask(Task):
        name = "my_task"
        config_class = MyConfig          # task: Literal["my_task"], data/model sections
        ...

The built-in tasks (classify, sentiment, forecast, anomaly) are registered on first lookup.
"""

from __future__ import annotations

import importlib

__all__ = ["register", "unregister", "get", "names"]

_TASKS: dict[str, type] = {}
_BUILTINS = "lstmkit.train.tasks"


def _load_builtins() -> None:
    importlib.import_module(_BUILTINS)


def register(task: type) -> type:
    """Register a task class under its ``name`` (usable as a decorator); returns the class.

    The class needs ``name``, ``config_class`` (whose ``task`` field defaults to ``name``),
    ``predict_input`` and ``predict_output``; registering a second class under a taken name is
    an error (``unregister`` it first)."""
    from .config import RunConfig
    from .tasks import Task
    if not (isinstance(task, type) and issubclass(task, Task)):
        raise TypeError(f"register: argument 'task' expected a Task subclass, got {task!r}")
    name = getattr(task, "name", None)
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"register: {task.__name__}.name expected an identifier, got {name!r}")
    config = getattr(task, "config_class", None)
    if not (isinstance(config, type) and issubclass(config, RunConfig)):
        raise TypeError(f"register: {task.__name__}.config_class expected a RunConfig subclass, got {config!r}")
    if config.model_fields["task"].default != name:
        raise ValueError(f"register: {config.__name__}.task expected to default to {name!r}, "
                         f"got {config.model_fields['task'].default!r}")
    for schema in ("predict_input", "predict_output"):
        if getattr(task, schema, None) is None:
            raise TypeError(f"register: {task.__name__}.{schema} expected a pydantic model, got None")
    if name in _TASKS and _TASKS[name] is not task:
        raise ValueError(f"register: task {name!r} is taken by {_TASKS[name].__module__}.{_TASKS[name].__name__}")
    _TASKS[name] = task
    return task


def unregister(name: str) -> None:
    """Remove a registered task (tests register and remove their own)."""
    _TASKS.pop(name, None)


def get(name: str) -> type:
    """The task class registered as ``name``; a ``ValueError`` lists the registered names."""
    _load_builtins()
    if name not in _TASKS:
        raise ValueError(f"unknown task {name!r}: expected one of {names()}")
    return _TASKS[name]


def names() -> tuple[str, ...]:
    """The registered task names, built-in ones first, in registration order."""
    _load_builtins()
    return tuple(_TASKS)
