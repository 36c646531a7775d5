"""The trained runs a server holds, loaded once at start and never changed through the API."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import _engine
from ..runs import Run, load_run

__all__ = ["ServedModel", "load_models"]


@dataclass
class ServedModel:
    """One run under its name in the URL. ``lock`` serialises its predictions: task code keeps
    per-call caches that are not thread-safe."""

    name: str
    run: Run
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def task(self):
        return self.run.task

    @property
    def checkpoint(self) -> Path:
        return self.run.checkpoint

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "task": self.task.name, "checkpoint": self.checkpoint.name,
                "input_example": self.task.predict_input.EXAMPLE,
                "input_schema": self.task.predict_input.model_json_schema(),
                "output_schema": self.task.predict_output.model_json_schema(),
                "example": self.task.tensors(self.run.fitted).example() if self.task.tensors else None}

    def predict(self, records: list, *, decode: dict[str, Any] | None = None) -> list[dict]:
        """The run's predictions, under other ``decode`` settings if given (:meth:`Run.decoding`);
        a ``ValueError`` for a record that sets a field the server refuses (a path to a file on
        this machine), before anything is read."""
        refused = self.task.server_refuses
        for i, record in enumerate(records):
            for name in refused:
                if isinstance(record, dict) and record.get(name) is not None:
                    raise ValueError(f"predict: input record {i}: field {name!r}: {refused[name]}")
        run = self.run.decoding(decode) if decode else self.run
        with self.lock:
            return run.predict(records)

    def warm_up(self) -> None:
        """Run one prediction of the task's example record (``Task.tensors.example``), so that
        what a first call allocates or initialises (PyTorch's kernels and thread pool, the task's
        caches) is paid before the server says it is ready, not by a client's first request."""
        if self.task.tensors is not None:
            self.predict([self.task.tensors(self.run.fitted).example()])


def load_models(runs: list[str | Path]) -> dict[str, ServedModel]:
    """Each run directory (or checkpoint file) by name: the directory's name, which must be unique.
    The compiled engine is loaded here too (built, where the install did not), and each model
    runs one warm-up prediction (:meth:`ServedModel.warm_up`), before the server listens: a
    first request after ``/readyz`` said ready costs what later ones cost."""
    if not runs:
        raise ValueError("serve: expected at least one run directory, got none")
    models: dict[str, ServedModel] = {}
    for path in runs:
        run = load_run(path)
        name = run.name
        if name in models:
            raise ValueError(f"serve: two runs are both named {name!r} (the run directory's name); serve runs with "
                             "different directory names")
        models[name] = ServedModel(name, run)
    _engine.load()
    for model in models.values():
        model.warm_up()
    return models

