"""Typed, validated run configs (pydantic models read from YAML).

A config has the task, the seed, and four sections: ``data`` (task-specific), ``model``,
``optim`` and ``trainer``. Every field has a default and a description; ``lstmkit config TASK``
prints the whole default config with the descriptions as comments. Unknown keys, wrong types
and out-of-range values are errors that name the key (``ConfigError``).
"""

from __future__ import annotations

import typing
import warnings
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .. import cells

__all__ = ["ConfigError", "RunConfig", "DataConfig", "ModelConfig", "OptimConfig", "TrainerConfig", "DecodeConfig",
           "BLOCKS_HELP", "quoted_blocks", "CELL_HELP", "SELECT_HELP", "config_yaml", "apply_overrides", "rnn_options"]


class ConfigError(ValueError):
    """A config that does not validate; the message lists each bad key and what was expected."""


class _Section(BaseModel):
    """A config section: unknown keys, NaN and infinities refused, and no boolean taken for a number
    (pydantic's lax mode would read ``hidden_size: true`` as 1)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_booleans_as_numbers(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name, value in data.items():
                field = cls.model_fields.get(name)
                if isinstance(value, bool) and field is not None and _numeric(field.annotation):
                    raise ValueError(f"{name}: expected a number, got {value!r}")
        return data


def _numeric(annotation: Any) -> bool:
    """Whether a field's type takes numbers but not booleans (int, float, their Optional forms)."""
    options = typing.get_args(annotation) or (annotation,)
    return bool not in options and any(option in (int, float) for option in options)


CELL_HELP = f"cell name from the registry: {', '.join(cells.names())}"
BLOCKS_HELP = ("the xLSTM's residual blocks instead of plain layers of cell: a ratio of mLSTM to sLSTM blocks "
               "such as \"7:1\" (quoted), or one letter m or s per layer (null: plain layers); cell_options then "
               "go to the blocks (heads, forget, chunk_size)")


def quoted_blocks(value: Any) -> Any:
    """``model.blocks`` as written: YAML 1.1 reads an unquoted ``7:1`` as the base-60 number 421."""
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError("write the ratio in quotes, e.g. blocks: \"7:1\" (unquoted, YAML reads M:S as a "
                         "base-60 number)")
    return value
SELECT_HELP = "the run's model: the epoch best on validation, or the last epoch"


class ModelConfig(_Section):
    cell: str = Field("lstm", description=CELL_HELP)
    hidden_size: int = Field(64, gt=0, description="hidden units per direction")
    num_layers: int = Field(1, gt=0, description="stacked recurrent layers")
    bidirectional: bool = Field(False, description="read each sequence both ways")
    merge: Literal["concat", "sum", "mul", "ave"] = Field("concat", description="how the two directions merge")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="dropout between stacked layers")
    residual: bool = Field(False, description="residual connections between stacked layers of equal size")
    cell_options: dict[str, Any] = Field(default_factory=dict,
                                         description="extra options of the cell, e.g. {gate_bias: {f: 1.0}}")
    ensemble: int = Field(1, gt=0, le=64, description="models trained side by side from different initial "
                          "weights, predictions averaged (1: a single model)")

    @field_validator("cell")
    @classmethod
    def _known_cell(cls, value: str) -> str:
        if value not in cells.names():
            raise ValueError(f"expected one of {cells.names()}")
        return value


class OptimConfig(_Section):
    optimizer: Literal["adam", "adamw", "sgd", "rmsprop"] = Field("adam", description="optimiser")
    lr: float = Field(3e-3, gt=0.0, description="learning rate")
    weight_decay: float = Field(0.0, ge=0.0, description="L2 penalty (decoupled for adamw)")
    momentum: float = Field(0.9, ge=0.0, lt=1.0, description="momentum (sgd, rmsprop)")
    schedule: Literal["none", "cosine", "step", "decay", "plateau"] = Field(
        "cosine", description="learning-rate schedule over the epochs: none, cosine (to zero), step (x gamma every "
                              "step_size epochs), decay (x gamma every epoch after decay_after), plateau (x gamma "
                              "when validation stops improving)")
    step_size: int = Field(10, gt=0, description="epochs between decays (schedule: step)")
    decay_after: int = Field(4, ge=0, description="epochs at the full rate before it decays (schedule: decay)")
    gamma: float = Field(0.5, gt=0.0, le=1.0, description="decay factor (schedule: step, decay, plateau)")
    plateau_patience: int | None = Field(None, ge=0, description="schedule plateau: epochs without improvement "
                                         "before a decay (null: a third of optim.patience, at least 1)")
    clip_grad_norm: float | None = Field(1.0, gt=0.0, description="clip the gradient norm (null: no clipping)")
    epochs: int = Field(30, gt=0, description="maximum number of epochs")
    nt_average: int | None = Field(None, gt=0, description="average the weights once validation stops improving "
                                   "(NT-ASGD with sgd, Merity et al. 2018): from the first validation loss worse "
                                   "than the best of those more than this many epochs before it, validation, "
                                   "checkpoints and the final model use the mean of the weights after every later "
                                   "step (null: off)")
    patience: int | None = Field(None, gt=0, description="early stopping: epochs without improvement (null: off)")
    select: Literal["best", "last"] = Field(
        "best", description=f"{SELECT_HELP} (for a fixed schedule and a validation split too small to rank epochs)")
    refit: bool = Field(False, description="then train again from the same initial weights on training + validation "
                        "data for the selected checkpoint's epoch count; that model is the final one")

    @model_validator(mode="after")
    def _refit_without_validation(self):
        if self.refit and self.schedule == "plateau":
            raise ValueError("refit trains without validation data, so it needs schedule none, cosine or step, "
                             "got 'plateau'")
        if self.refit and self.nt_average:
            raise ValueError("refit trains without validation data, which nt_average needs: expected nt_average "
                             f"null with refit, got {self.nt_average}")
        return self


class TrainerConfig(_Section):
    accelerator: Literal["cpu", "gpu", "auto"] = Field("cpu", description="where to train")
    devices: int = Field(1, gt=0, description="processes (devices) per machine; >1 trains data-parallel (DDP)")
    num_nodes: int = Field(1, gt=0, description="machines (torchrun sets the rendezvous)")
    threads: int | None = Field(None, gt=0, description="torch threads per process (null: torch's default alone; with "
                                                       "several processes per machine, its cores shared among them)")
    progress_bar: bool = Field(True, description="report progress: a live bar (loss, metric, speed, ETA) on a "
                              "terminal, one line per epoch when output goes to a file or pipe")
    checkpoint_every: int = Field(1, gt=0, description="epochs between checkpoints (last and best are kept)")
    deterministic: bool = Field(True, description="deterministic algorithms (same seed, same result)")
    precision: Literal[32, 64] = Field(32, description="floating-point bits of training: 32, or 64 (float64, for "
                                                       "exactness checks; evaluation and predict run in float32)")
    logger: Literal["csv", "tensorboard", "mlflow"] = Field(
        "csv", description="where the metrics also go: csv (the run's own logs/attempt-N/metrics.csv, always "
        "written), tensorboard (event files in logs/tensorboard) or mlflow (a local SQLite store, no server)")
    tracking_uri: str | None = Field(None, description="logger mlflow: the tracking store (null: sqlite:///FOLDER/"
                                     "mlflow.db beside the run directory, one store for the runs of a folder)")


class DataConfig(_Section):
    """The data options every task shares; a task's data section adds its own. ``needs`` names
    the fields a ``dataset`` value requires (``{"files": ("train_file",)}``): a config without
    them is refused with the names. Your own data is the dataset ``files`` in every task."""

    needs: typing.ClassVar[dict[str, tuple[str, ...]]] = {}
    renamed: typing.ClassVar[dict[str, str]] = {}     # dataset names that changed: old -> new (warned)
    batch_size: int = Field(32, gt=0, description="sequences per batch")
    split_seed: int = Field(0, description="seed of the fixed train/validation(/test) split")

    @model_validator(mode="before")
    @classmethod
    def _renamed_dataset(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("dataset") in cls.renamed:
            new = cls.renamed[data["dataset"]]
            warnings.warn(f"data.dataset {data['dataset']!r} is now {new!r}; the old name goes in lstmkit 0.3",
                          DeprecationWarning, stacklevel=2)
            data = {**data, "dataset": new}
        return data

    @model_validator(mode="after")
    def _needed_fields(self):
        needed = self.needs.get(getattr(self, "dataset", None), ())
        if any(getattr(self, name) is None for name in needed):
            raise ValueError(f"dataset {self.dataset!r} needs " + " and ".join(f"data.{name}" for name in needed))
        return self


class DecodeConfig(_Section):
    """The search options of the tasks that decode with a beam: its width and the n-best list."""

    beam: int = Field(5, ge=1, description="beam search width (evaluate reports greedy decoding too)")
    n_best: int = Field(1, ge=1, description="predict: hypotheses returned per input")

    @model_validator(mode="after")
    def _n_best_within_beam(self):
        if self.n_best > self.beam:
            raise ValueError(f"decode.n_best ({self.n_best}) expected at most decode.beam ({self.beam})")
        return self


class RunConfig(_Section):
    """A run: the task's name, the seed and the sections. A task's config subclasses it with
    ``task: Literal[name]`` and its own ``data`` and ``model`` sections (and ``optim`` defaults)."""

    task: str = Field(description="the task (see lstmkit.runs.registry)")
    seed: int = Field(0, description="seed of every random thing (weights, shuffling, dropout)")
    optim: OptimConfig = Field(default_factory=OptimConfig)
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)

    @model_validator(mode="after")
    def _last_epoch_checkpointed(self):
        if self.optim.select == "last" and self.trainer.checkpoint_every != 1:
            raise ValueError("optim.select 'last' needs every epoch checkpointed (trainer.checkpoint_every: 1), "
                             f"got checkpoint_every {self.trainer.checkpoint_every}")
        return self


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply ``key.sub=value`` strings (values parsed as YAML) to a config dict, in order."""
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"invalid override {item!r}: expected key=value, e.g. model.hidden_size=128")
        node, parts = data, key.strip().split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"invalid override {item!r}: {part} is not a section")
            node = child
        try:
            node[parts[-1]] = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as error:
            where = getattr(error, "problem", None) or "not valid YAML"
            raise ConfigError(f"invalid override {item!r}: the value {text!r} is not valid YAML ({where})") from None
    return data


_ORDER = ["task", "seed", "data", "model", "optim", "trainer"]


def _yaml_value(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=1000).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()


def config_yaml(config: BaseModel, *, comments: bool = True, indent: int = 0) -> str:
    """The config as YAML, each key with its description as a comment (``comments=False``: plain)."""
    lines = []
    pad = "  " * indent
    fields = type(config).model_fields
    for name in sorted(fields, key=lambda n: _ORDER.index(n) if n in _ORDER else len(_ORDER)):
        field = fields[name]
        value = getattr(config, name)
        note = f"  # {field.description}" if comments and field.description else ""
        if isinstance(value, BaseModel):
            lines.append(f"{pad}{name}:{note}")
            lines.append(config_yaml(value, comments=comments, indent=indent + 1))
        else:
            plain = value.as_posix() if isinstance(value, Path) else value
            lines.append(f"{pad}{name}: {_yaml_value(plain)}{note}")
    return "\n".join(lines)


def rnn_options(model) -> dict[str, Any]:
    """The layer options of a ``model`` config section, as :func:`lstmkit.build_rnn` takes them."""
    return dict(num_layers=model.num_layers, bidirectional=model.bidirectional, merge=model.merge,
                dropout=model.dropout, residual=model.residual, **model.cell_options)
