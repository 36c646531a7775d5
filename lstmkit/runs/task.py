"""The ``Task`` protocol: what one kind of job is (its data, model, loss, evaluation and
predictions), and the optional parts a task may declare (streaming sessions, an ONNX graph,
scikit-learn estimators), through which the trainer, the server, the exporter and the estimators
find it."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from pydantic import BaseModel, ValidationError
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from ..models import Ensemble
from .batches import BucketBatchSampler, ListDataset
from .records import excerpt, problems

__all__ = ["Prepared", "Ratio", "Task", "WindowTask"]


@dataclass(frozen=True)
class Ratio:
    """A metric of one batch given as counts: over an epoch (and every process) it is
    ``sum(numerator) / sum(denominator)``, not a mean of the batches' ratios weighted by
    :meth:`Task.batch_size`. Token accuracy (right tokens / tokens) and entity F1
    (2 * right entities / (predicted + gold entities)) are ratios; a batch with a zero
    denominator adds nothing."""

    numerator: float
    denominator: int

    def __float__(self) -> float:
        return self.numerator / self.denominator if self.denominator else float("nan")


class Prepared:
    """The data of a run: three splits, what was ``fitted`` on the training split (the task's
    :class:`~lstmkit.runs.fitted.Fitted`, or a JSON-able dict), and ``extra``: what the task's
    evaluation needs beside them (raw series, texts...)."""

    def __init__(self, train: Dataset, valid: Dataset, test: Dataset, fitted: Any = None,
                 extra: dict[str, Any] | None = None, *, meta: Any = None):
        if meta is not None:
            warnings.warn("Prepared(meta=...) is now Prepared(fitted=...); the old name goes in lstmkit 0.3",
                          DeprecationWarning, stacklevel=2)
            fitted = meta
        self.train, self.valid, self.test, self.fitted = train, valid, test, fitted
        self.extra = {} if extra is None else extra

    @property
    def meta(self) -> Any:
        """Deprecated name of :attr:`fitted`."""
        warnings.warn("Prepared.meta is now Prepared.fitted; the old name goes in lstmkit 0.3", DeprecationWarning,
                      stacklevel=2)
        return self.fitted


class Task:
    """One kind of job: how its data are prepared, its model built, a batch scored, a split
    evaluated and new inputs predicted.

    What a subclass declares (:func:`lstmkit.runs.registry.register` checks it):

    - ``name``: the config's ``task:`` value; ``config_class``: its :class:`RunConfig` subclass;
    - ``fitted_class``: the :class:`~lstmkit.runs.fitted.Fitted` subclass of what ``prepare`` fits
      (None: a JSON-able dict);
    - ``predict_input`` / ``predict_output``: pydantic models of one ``predict`` record in and
      out (the CLI and the server validate with them);
    - ``formats``: one line per file the task reads (``evaluate --data``, ``predict`` input);
    - ``monitor`` (the validation metric that picks the best checkpoint) and ``mode`` ("max"
      or "min"); ``metric``: the training metric logged beside the loss, if any.

    The optional parts, each found by whoever needs it and nothing else:

    - ``stream``: the class of its streaming sessions (:class:`lstmkit.runs.parts.Stream`), which
      ``lstmkit serve`` opens; None: no sessions;
    - :meth:`export_graph`: its whole pipeline as an ONNX graph, which ``lstmkit export`` writes;
    - ``estimators``: its scikit-learn estimators (classes, or ``"module:Class"`` references that
      load only when asked for, since they need the trainer), which :mod:`lstmkit.estimators` offers;
    - ``generator``: the class that generates text from a run (``generator(task, fitted, model)``),
      which ``lstmkit generate`` uses; None: the task generates nothing;
    - ``tensors``: the class of its predictions as named tensors (:mod:`lstmkit.runs.tensors`),
      built from the fitted state, which the server's Open Inference Protocol routes (``/v2``) use;
      None: the task has no tensor form;
    - ``server_refuses``: the fields of a ``predict`` record that the command line reads but the
      server must not (a path names a file on the server's machine), each with why and what to send
      instead.
    """

    name: ClassVar[str] = ""
    config_class: ClassVar[type] = None
    predict_input: ClassVar[type[BaseModel]] = None
    predict_output: ClassVar[type[BaseModel]] = None
    formats: ClassVar[str] = ""
    monitor = "val_loss"
    mode = "min"
    metric: ClassVar[str | None] = None
    combine = "mean"     # how an ensemble averages: "mean" prediction, or "probabilities" (classifiers)
    stream: ClassVar[type | None] = None
    estimators: ClassVar[tuple] = ()
    generator: ClassVar[type | None] = None
    fitted_class: ClassVar[type | None] = None      # a Fitted subclass; None: the fitted state is a dict
    tensors: ClassVar[type | None] = None           # its predictions as named tensors (runs.tensors)
    server_refuses: ClassVar[dict[str, str]] = {}   # record fields the server refuses: field -> why, what instead

    def __init__(self, config):
        self.config = config

    @classmethod
    def restore_fitted(cls, stored: dict) -> Any:
        """The fitted state a checkpoint stored (its ``meta``), as the task's ``fitted_class``."""
        return stored if cls.fitted_class is None else cls.fitted_class.from_dict(stored)

    @staticmethod
    def store_fitted(fitted: Any) -> dict:
        """The fitted state as a checkpoint stores it (a plain dict)."""
        return fitted.to_dict() if hasattr(fitted, "to_dict") else fitted

    def prepare(self, meta: dict | None = None) -> Prepared:
        """Load the data; fit scalers/vocabularies on the training split unless ``meta`` has them."""
        raise NotImplementedError

    def build_model(self, meta: dict) -> nn.Module:
        """One model of the task."""
        raise NotImplementedError

    def make_model(self, meta: dict) -> nn.Module:
        """The task's model, or an :class:`~lstmkit.models.Ensemble` of ``model.ensemble`` of them."""
        n = self.config.model.ensemble
        if n == 1:
            return self.build_model(meta)
        return Ensemble([self.build_model(meta) for _ in range(n)], combine=self.combine)

    def refit_data(self, prepared: Prepared) -> Dataset:
        """What ``optim.refit`` trains on: the training and validation splits together."""
        return ListDataset(list(prepared.train) + list(prepared.valid))

    def collate(self, items: list) -> dict[str, Tensor]:
        raise NotImplementedError

    def lengths(self, dataset: Dataset) -> list[int] | None:
        """Lengths for bucketing (None: no bucketing)."""
        return None

    def loader(self, dataset: Dataset, *, shuffle: bool, batch_size: int, seed: int) -> DataLoader:
        """The batches of a split: ``batch_size`` examples each, shuffled per epoch from ``seed``
        (``shuffle``), bucketed by :meth:`lengths`, shared among the processes of a distributed run."""
        sampler = BucketBatchSampler(len(dataset), batch_size, shuffle=shuffle, seed=seed,
                                     lengths=self.lengths(dataset))
        return DataLoader(dataset, batch_sampler=sampler, collate_fn=self.collate)

    def batch_size(self, batch: dict[str, Tensor]) -> int:
        """How much a batch weighs in the epoch's mean loss and metrics: its examples."""
        return next(iter(batch.values())).shape[0]

    def batch_loss(self, model: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor | Ratio]]:
        """Loss and named metrics of one batch: each a mean over the batch (weighted by
        :meth:`batch_size` in the epoch's figure), or a :class:`Ratio` of counts."""
        if type(self).step is not Task.step:            # a task written before the rename
            warnings.warn(f"{type(self).__name__}.step is now Task.batch_loss; the old name goes in lstmkit 0.3",
                          DeprecationWarning, stacklevel=2)
            return self.step(model, batch)
        raise NotImplementedError

    def step(self, model: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """Deprecated name of :meth:`batch_loss` (a "step" is a time step of a sequence)."""
        warnings.warn("Task.step is now Task.batch_loss; the old name goes in lstmkit 0.3", DeprecationWarning,
                      stacklevel=2)
        return self.batch_loss(model, batch)

    def calibrate(self, model: nn.Module, prepared: Prepared) -> None:
        """Fit what depends on the trained model into ``prepared.fitted`` (after each validation)."""

    def evaluate(self, model: nn.Module, prepared: Prepared, split: str, out_dir: Path) -> dict[str, Any]:
        """Metrics on ``split`` (and task plots written into ``out_dir``)."""
        raise NotImplementedError

    def evaluate_file(self, model: nn.Module, meta: dict, path: Path, out_dir: Path) -> dict[str, Any]:
        """Metrics on a labelled data file (the format of the task's ``predict`` plus labels)."""
        raise NotImplementedError

    def predict(self, model: nn.Module, meta: dict, records: list[dict]) -> list[dict]:
        """Predictions for new inputs (JSON records in, JSON records out)."""
        raise NotImplementedError

    def export_graph(self, g, model: nn.Module, meta: dict) -> dict[str, str]:
        """Build the run's whole pipeline into the ONNX graph ``g`` (an
        :class:`lstmkit.export.graph.Graph`): inputs as close to what ``predict`` reads as ONNX
        can take, outputs what it answers. Returns the metadata ONNX stores beside the graph
        (strings: the classes, the vocabulary...). A task without one is refused by ``lstmkit export``."""
        raise NotImplementedError

    @classmethod
    def exports(cls) -> bool:
        """Whether the task builds an ONNX graph (:meth:`export_graph`)."""
        return cls.export_graph is not Task.export_graph

    def records(self, records: list) -> list[BaseModel]:
        """The input records parsed by ``predict_input``; an error names the record and the field."""
        parsed = []
        for i, record in enumerate(records):
            try:
                parsed.append(self.predict_input.model_validate(record))
            except ValidationError as error:
                raise ValueError(f"predict: input record {i} expected {self.predict_input.EXAMPLE}, "
                                 f"got {excerpt(record)} ({problems(error):.300})") from None
        return parsed

    def record_error(self, index: int, expected: str, got: object):
        raise ValueError(f"predict: input record {index} expected {expected}, got {excerpt(got)}")

    @classmethod
    def summary(cls, split: str, results: dict[str, Any], *, refit: bool = False) -> str:
        """One line of the CLI's summary for a split's ``results`` (``refit``: the refit model's)."""
        return f"  {split:5s} loss {results.get('loss', float('nan')):.4g}"


class WindowTask(Task):
    """Fixed-size windows (W, F) with fixed-size targets, trained on the model's own MSE loss."""

    def collate(self, items: list) -> dict[str, Tensor]:
        return {"x": torch.stack([x for x, _ in items]), "y": torch.stack([y for _, y in items])}

    def batch_loss(self, model, batch):
        _, loss = model(batch["x"], targets=batch["y"])
        return loss, {}
