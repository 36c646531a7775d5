"""What every task shares: datasets of sequences, padding, length-bucketed batches, the Task interface."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import BaseModel, ValidationError
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from ...models import Ensemble

__all__ = ["Prepared", "Task", "Record", "finite_float32", "excerpt", "problems", "WindowTask", "ListDataset", "pad_sequences",
           "BucketBatchSampler", "world", "stratified_split", "rnn_options"]


class Record(BaseModel):
    """Base of the ``predict`` schemas: fields it does not know are ignored (a labelled record
    predicts too), NaN and infinities are refused; ``EXAMPLE`` shows the shape."""

    model_config = {"extra": "ignore", "allow_inf_nan": False}
    EXAMPLE: ClassVar[str] = "{...}"


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def finite_float32(values, where: str) -> Tensor:
    """``values`` (already scaled for the model) as a float32 tensor; a ``ValueError`` naming
    ``where`` and the first bad position when one is NaN, infinite or beyond float32's range (an
    input of 1e308 would otherwise become inf in the model and NaN in its output)."""
    array = np.asarray(values, dtype=np.float64)
    bad = ~np.isfinite(array) | (np.abs(array) > _FLOAT32_MAX)
    if bad.any():
        at = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{where}: expected finite numbers within float32's range after scaling, got "
                         f"{array[at]!r} at position {at if len(at) > 1 else at[0]}")
    return torch.from_numpy(array.astype(np.float32))


def excerpt(value: object, limit: int = 100) -> str:
    """``repr(value)`` cut to ``limit`` characters: an error quotes a bad record, never all of it."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def problems(error: ValidationError, limit: int | None = None) -> str:
    """A pydantic error as ``field: message; ...`` (the first ``limit`` problems)."""
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'record'}: {e['msg']}" for e in error.errors()[:limit])


@dataclass
class Prepared:
    """The data of a run: three splits and what was fitted on the training split (``meta``, JSON-able)."""

    train: Dataset
    valid: Dataset
    test: Dataset
    meta: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)   # task-specific, e.g. raw series for evaluation


class ListDataset(Dataset):
    """A list of items: (sequence tensor, target)."""

    def __init__(self, items: list):
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        return self.items[index]

    def lengths(self) -> list[int]:
        return [len(x) for x, _ in self.items]


def rnn_options(model) -> dict[str, Any]:
    """The layer options of a ``model`` config section, as :func:`lstmkit.build_rnn` takes them."""
    return dict(num_layers=model.num_layers, bidirectional=model.bidirectional, merge=model.merge,
                dropout=model.dropout, residual=model.residual, **model.cell_options)


def pad_sequences(sequences: list[Tensor]) -> tuple[Tensor, Tensor]:
    """Pad (T_b, ...) tensors with zeros to (B, T_max, ...); returns ``(padded, lengths)``."""
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.long)
    return nn.utils.rnn.pad_sequence(sequences, batch_first=True), lengths


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(keep, held_out)``: ``fraction`` of each class held out, chosen with ``seed``."""
    rng = np.random.default_rng(seed)
    held = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        held.extend(rng.permutation(members)[:max(1, round(fraction * len(members)))])
    held = np.sort(np.asarray(held, dtype=np.int64))
    return np.setdiff1d(np.arange(len(labels)), held), held


def world() -> tuple[int, int]:
    """``(rank, world_size)`` of this process in a distributed run; ``(0, 1)`` alone."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class BucketBatchSampler:
    """Batches of indices; shuffled per epoch from ``seed`` and the epoch alone, so a resumed run
    draws the same batches as an uninterrupted one.

    ``lengths`` given: each pool of 50 batches is sorted by length before it is cut into batches
    (less padding, same randomness of batch order).

    Under ``torch.distributed`` with P processes, ``batch_size`` is each process's: the sampler
    draws the batches of P·batch_size that one process would (the same global batches) and gives
    each process its contiguous part of every one, so P processes train on exactly the batches of
    one process with P times the batch size, each example once. Training (``shuffle``): every
    process gets the same number of batches (the all-reduce of each step waits for all), so a last
    global batch of fewer than P examples is left out of that epoch. Evaluation: every example
    once, no padding; a split of fewer examples than processes is read whole by each.
    """

    def __init__(self, size: int, batch_size: int, *, shuffle: bool, seed: int = 0,
                 lengths: list[int] | None = None):
        self.size, self.batch_size, self.shuffle, self.seed = size, batch_size, shuffle, seed
        self.lengths = np.asarray(lengths) if lengths is not None else None
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _batches(self, batch_size: int) -> list[np.ndarray]:
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(self.size)
        else:
            order = np.arange(self.size)
        if self.lengths is not None:
            pool = 50 * batch_size
            order = np.concatenate([chunk[np.argsort(self.lengths[chunk], kind="stable")]
                                    for chunk in np.array_split(order, max(1, math.ceil(self.size / pool)))])
        batches = [order[i:i + batch_size] for i in range(0, self.size, batch_size)]
        if self.shuffle and self.lengths is not None:
            batches = [batches[i] for i in np.random.default_rng([self.seed, self.epoch, 1]).permutation(len(batches))]
        return batches

    def batches(self, rank: int = 0, processes: int = 1) -> list[list[int]]:
        """The batches of process ``rank`` out of ``processes``, in order."""
        batches = self._batches(self.batch_size * processes)
        if processes == 1 or (not self.shuffle and self.size < processes):
            return [b.tolist() for b in batches]
        if self.shuffle:
            batches = [b for b in batches if len(b) >= processes]
        parts = (np.array_split(b, processes)[rank] for b in batches)
        return [part.tolist() for part in parts if len(part)]

    def __iter__(self):
        return iter(self.batches(*world()))

    def __len__(self) -> int:
        return len(self.batches(*world()))


class Task:
    """One kind of job: how its data are prepared, its model built, a batch scored, a split
    evaluated and new inputs predicted.

    What a subclass declares (:func:`lstmkit.train.registry.register` checks it):

    - ``name``: the config's ``task:`` value; ``config_class``: its :class:`RunConfig` subclass;
    - ``predict_input`` / ``predict_output``: pydantic models of one ``predict`` record in and
      out (the CLI and the server validate with them);
    - ``formats``: one line per file the task reads (``evaluate --data``, ``predict`` input);
    - ``monitor`` (the validation metric that picks the best checkpoint) and ``mode`` ("max"
      or "min"); ``metric``: the training metric logged beside the loss, if any.
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

    def __init__(self, config):
        self.config = config

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

    def step(self, model: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """Loss and named metrics (each a mean over the batch) of one batch."""
        raise NotImplementedError

    def calibrate(self, model: nn.Module, prepared: Prepared) -> None:
        """Fit what depends on the trained model into ``prepared.meta`` (after each validation)."""

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

    def step(self, model, batch):
        _, loss = model(batch["x"], targets=batch["y"])
        return loss, {}
