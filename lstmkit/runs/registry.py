"""The task registry: every kind of job ``lstmkit train`` can run, by the name a config gives.

A task is one folder (a package) holding one :class:`~lstmkit.runs.task.Task` subclass and its
parts: its config (a :class:`~lstmkit.runs.config.RunConfig` subclass), data preparation, model,
loss and metrics, plots, the pydantic schemas of its ``predict`` records, and optionally its
streaming sessions, ONNX graph and estimators. Registering it makes it a choice of ``task:`` in
configs, of ``lstmkit config``, and of everything that reads a run (``evaluate``, ``predict``,
``serve``, ``export``)::

    from lstmkit.runs import Task, registry

    @registry.register
    class MyTask(Task):
        name = "my_task"
        config_class = MyConfig          # task: Literal["my_task"], data/model sections
        ...

Tasks are found through the entry points of the group ``lstmkit.tasks``: an entry point names a
module whose import registers its tasks, or a ``Task`` subclass, which is registered. lstmkit's
own entry point is the package :mod:`lstmkit.tasks`, one folder per built-in task; a package of
your own declares its tasks the same way and every lstmkit command finds them. They load on the
first lookup, so nothing here imports a task, the trainer, the server or the exporter.
"""

from __future__ import annotations

import warnings
from importlib import import_module
from importlib.metadata import entry_points

from .config import RunConfig
from .task import Task

__all__ = ["register", "unregister", "get", "names", "default", "make_task", "GROUP"]

GROUP = "lstmkit.tasks"
_OWN = "lstmkit.tasks"                   # lstmkit's own entry point, loaded first (also when not installed)
_TASKS: dict[str, type] = {}
_discovered = False


def _discover() -> None:
    """Load every entry point of :data:`GROUP` once: lstmkit's own first, then the others by name."""
    global _discovered
    if _discovered:
        return
    _discovered = True
    import_module(_OWN)
    for point in sorted(entry_points(group=GROUP), key=lambda p: p.name):
        if point.value == _OWN:
            continue
        try:
            loaded = point.load()
        except Exception as error:           # one broken plug-in must not take every command down
            warnings.warn(f"lstmkit: the task entry point {point.name!r} ({point.value}) failed to load: "
                          f"{type(error).__name__}: {error}", RuntimeWarning, stacklevel=3)
            continue
        if isinstance(loaded, type):
            register(loaded)


def register(task: type) -> type:
    """Register a task class under its ``name`` (usable as a decorator); returns the class.

    The class needs ``name``, ``config_class`` (whose ``task`` field defaults to ``name``),
    ``predict_input`` and ``predict_output``; registering a second class under a taken name is
    an error (``unregister`` it first). The tasks of the entry points are registered first, so
    that the built-in ones keep their places (and the default task) whatever registers when."""
    _discover()
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
    _discover()
    if name not in _TASKS:
        raise ValueError(f"unknown task {name!r}: expected one of {names()}")
    return _TASKS[name]


def names() -> tuple[str, ...]:
    """The registered task names, built-in ones first, in registration order."""
    _discover()
    return tuple(_TASKS)


def default() -> str:
    """The task of a config that names none: the first one registered (lstmkit's classifier)."""
    return names()[0]


def make_task(config: RunConfig) -> Task:
    """The task object of a validated run config."""
    return get(config.task)(config)
