"""A trained run as one object: ``load_run(path) -> Run``, and what needs nothing more than a run
(evaluation on a split or a file, predictions). Nothing here imports the trainer or the server.

A run directory holds::

    config.yaml                the validated config, every key written out
    checkpoints/last.safetensors      end of the latest epoch (resume from here)
    checkpoints/best.safetensors      best validation metric so far
    checkpoints/interrupted.safetensors   written when Ctrl-C or an error stops training
    checkpoints/refit/, checkpoints/final.safetensors   with optim.refit: the second phase's
                                checkpoints and its final model (used by evaluate and predict)
    logs/attempt-N/metrics.csv  the training log of each (resumed) attempt
    learning_curves.png, metrics.json and the task's plots (confusion matrix, forecast, scores)
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

from . import json_output, registry
from .checkpoint import CheckpointError, load_checkpoint
from .config import ConfigError, RunConfig, apply_overrides
from .parsing import parse_config
from .task import Task

__all__ = ["CKPT", "Run", "load_run", "resolve_checkpoint", "load_weights", "evaluate", "predict"]

CKPT = ".safetensors"


@dataclass(frozen=True)
class Run:
    """A trained run: its ``task`` (the task object, holding ``config``), what the data set-up
    ``fitted`` on the training split (scalers, classes, vocabulary, thresholds: what the task's
    batch, streaming and exported forms all read), the ``model`` with the checkpoint's weights in
    eval mode, and the ``checkpoint`` file it came from."""

    task: Task
    config: RunConfig
    fitted: Any
    model: torch.nn.Module
    checkpoint: Path

    @property
    def directory(self) -> Path:
        """The run directory (the checkpoint's folder for a loose checkpoint file)."""
        folder = self.checkpoint.parent
        return folder.parent if folder.name == "checkpoints" else folder

    @property
    def name(self) -> str:
        """The run directory's name (a loose checkpoint's file name without its extension): the
        name ``lstmkit serve`` gives the run."""
        folder = self.checkpoint.resolve().parent
        return folder.parent.name if folder.name == "checkpoints" else self.checkpoint.stem

    def predict(self, records: list) -> list[dict]:
        """Predictions for JSON records, as ``lstmkit predict`` makes them."""
        return self.task.predict(self.model, self.fitted, records)

    def decoding(self, settings: dict[str, Any]) -> Run:
        """This run under other decoding settings (``{"beam": 5, "n_best": 3}``: keys of its
        config's ``decode`` section), validated as the config is (a :class:`ConfigError` names a
        bad key); the model and the fitted state are shared."""
        data = _with_decoding(self.config.model_dump(mode="json"),
                              [f"{key}={json.dumps(value)}" for key, value in settings.items()])
        config = parse_config(data)
        return dataclasses.replace(self, task=registry.make_task(config), config=config)

    def generator(self):
        """What generates text from this run (its task's ``generator``); a ``ValueError`` names
        the tasks that have one when this run's has none."""
        if self.task.generator is None:
            generating = [name for name in registry.names() if registry.get(name).generator is not None]
            raise ValueError(f"generate: expected a run of a task that generates text ({', '.join(generating)}), "
                             f"got {str(self.checkpoint)!r}, a run of {self.task.name!r}")
        return self.task.generator(self.task, self.fitted, self.model)


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint file, or a run directory's final model: refit (``optim.refit``), else best,
    else last."""
    path = Path(path)
    if path.is_dir():
        for name in ("final", "best", "last"):
            candidate = path / "checkpoints" / f"{name}{CKPT}"
            if candidate.is_file():
                return candidate
        raise CheckpointError(f"{str(path)!r} has no checkpoints/best{CKPT} or checkpoints/last{CKPT}")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    return path


def load_weights(model: torch.nn.Module, checkpoint: dict) -> None:
    """A training checkpoint's weights into the task's model."""
    state = {k.removeprefix("model."): v for k, v in checkpoint["state_dict"].items()}
    model.load_state_dict(state)


def load_run(path: str | Path, *, decode: list[str] = ()) -> Run:
    """The :class:`Run` of a checkpoint or run directory; its model has the checkpoint's weights
    and is in eval mode. ``decode`` changes the run's decoding settings (``["beam=5",
    "n_best=3"]``: keys of its config's ``decode`` section, values in YAML), for the tasks that
    decode with a beam; they are validated as the config is."""
    ckpt_path = resolve_checkpoint(path)
    checkpoint = load_checkpoint(ckpt_path)
    if "lstmkit" not in checkpoint or "state_dict" not in checkpoint:
        raise CheckpointError(f"checkpoint {str(ckpt_path)!r} has no model weights or config")
    data = yaml.safe_load(checkpoint["lstmkit"]["config"])
    if decode:
        data = _with_decoding(data, list(decode))
    config = parse_config(data)
    task = registry.make_task(config)
    fitted = task.restore_fitted(checkpoint["lstmkit"]["meta"])
    model = task.make_model(fitted)
    try:
        load_weights(model, checkpoint)
    except RuntimeError as error:
        raise CheckpointError(f"checkpoint {str(ckpt_path)!r} does not fit its own config: {error}") from None
    return Run(task, config, fitted, model.eval(), ckpt_path)


def _with_decoding(data: dict, decode: list[str]) -> dict:
    task = data.get("task", registry.default())
    if task in registry.names() and "decode" not in registry.get(task).config_class.model_fields:
        beams = [name for name in registry.names() if "decode" in registry.get(name).config_class.model_fields]
        raise ConfigError(f"decoding settings ({', '.join(decode)}): expected a run of a task that decodes with a "
                          f"beam ({', '.join(beams)}), got a {task!r} run")
    return apply_overrides(data, [f"decode.{item}" for item in decode])


def evaluate(path: str | Path, *, split: str = "test", data: str | Path | None = None,
             out_dir: str | Path | None = None) -> dict[str, Any]:
    """Metrics of a trained model on a split of its dataset, or on the labelled file ``data``."""
    run = load_run(path)
    out = Path(out_dir) if out_dir is not None else run.directory / "evaluation"
    out.mkdir(parents=True, exist_ok=True)
    if data is not None:
        results = run.task.evaluate_file(run.model, run.fitted, Path(data), out)
    else:
        if split not in ("train", "valid", "test"):
            raise ValueError(f"evaluate: argument 'split' expected train, valid or test, got {split!r}")
        prepared = run.task.prepare(run.fitted)
        results = run.task.evaluate(run.model, prepared, split, out)
    (out / "metrics.json").write_text(json_output.dumps(results, indent=2) + "\n")
    return results


def predict(path: str | Path, records: list[dict]) -> list[dict]:
    """Predictions of a trained model for JSON records (see ``lstmkit predict --help``)."""
    return load_run(path).predict(records)
