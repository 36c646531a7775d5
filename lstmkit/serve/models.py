"""The trained runs a server holds, loaded once at start and never changed through the API."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..train.runner import load_run

__all__ = ["ServedModel", "load_models"]


@dataclass
class ServedModel:
    """One run: its name in the URL, task, fitted set-up and model (in eval mode). ``lock``
    serialises its predictions: task code keeps per-call caches that are not thread-safe."""

    name: str
    task: Any
    meta: dict
    model: Any
    checkpoint: Path
    lock: threading.Lock = field(default_factory=threading.Lock)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "task": self.task.name, "checkpoint": self.checkpoint.name,
                "input_example": self.task.predict_input.EXAMPLE,
                "input_schema": self.task.predict_input.model_json_schema(),
                "output_schema": self.task.predict_output.model_json_schema()}

    def predict(self, records: list) -> list[dict]:
        with self.lock:
            return self.task.predict(self.model, self.meta, records)


def load_models(runs: list[str | Path]) -> dict[str, ServedModel]:
    """Each run directory (or checkpoint file) by name: the directory's name, which must be unique."""
    if not runs:
        raise ValueError("serve: expected at least one run directory, got none")
    models: dict[str, ServedModel] = {}
    for run in runs:
        task, meta, model, checkpoint = load_run(run)
        path = Path(run).resolve()
        checkpoint = checkpoint.resolve()
        name = (path.name if path.is_dir() else checkpoint.parent.parent.name
                if checkpoint.parent.name == "checkpoints" else checkpoint.stem)
        if name in models:
            raise ValueError(f"serve: two runs are both named {name!r} (the run directory's name); serve runs with "
                             "different directory names")
        models[name] = ServedModel(name, task, meta, model, checkpoint)
    return models
