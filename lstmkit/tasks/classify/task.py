"""Sequence classification (many-to-one) of multivariate series, e.g. JapaneseVowels."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, Field, field_validator, model_validator
from torch import Tensor, nn

from ...data import datasets
from ...data.readers import read_jsonl, read_numbered_jsonl
from ...models import POOLINGS, SequenceClassifier, block_pattern
from ...runs import plots
from ...runs.config import (BLOCKS_HELP, CELL_HELP, SELECT_HELP, DataConfig, ModelConfig, OptimConfig, RunConfig,
                            quoted_blocks, rnn_options)
from ...runs.batches import ListDataset, pad_sequences, stratified_split
from ...runs.records import Number, Record, excerpt, frames
from ...runs.task import Prepared, Task
from .fitted import ClassifierFitted
from .tensors import ClassifierTensors
from .stream import SequenceStream

__all__ = ["ClassifyTask"]


_NOISE = "in training, add Gaussian noise of this standard deviation to every input step"


class ClassifierModelConfig(ModelConfig):
    cell: str = Field("gru", description=CELL_HELP)
    hidden_size: int = Field(128, gt=0, description="hidden units per direction")
    num_layers: int = Field(2, gt=0, description="stacked recurrent layers")
    bidirectional: bool = Field(True, description="read each sequence both ways")
    dropout: float = Field(0.3, ge=0.0, lt=1.0, description="dropout between stacked layers")
    pooling: Literal[POOLINGS] = Field("last", description=f"sequence to vector: {', '.join(POOLINGS)}")
    head_dropout: float = Field(0.3, ge=0.0, lt=1.0, description="dropout before the output layer")
    input_noise: float = Field(0.2, ge=0.0, description=f"{_NOISE} (the standardised features)")
    blocks: str | None = Field(None, description=f"{BLOCKS_HELP}; needs bidirectional false")
    _quoted_blocks = field_validator("blocks", mode="before")(quoted_blocks)

    @model_validator(mode="after")
    def _blocks_read_forward(self):
        if self.blocks is not None:
            if self.bidirectional:
                raise ValueError("blocks: the xLSTM's blocks read forward: expected bidirectional false with blocks")
            block_pattern(self.blocks, self.num_layers)
        return self


class ClassifyOptimConfig(OptimConfig):
    epochs: int = Field(80, gt=0, description="maximum number of epochs")
    select: Literal["best", "last"] = Field(
        "last", description=f"{SELECT_HELP} (the default here: JapaneseVowels' 36 validation sequences cannot rank "
        "epochs)")


class ClassifyData(DataConfig):
    needs = {"files": ("train_file",)}
    dataset: Literal["japanese_vowels", "basic_motions", "files"] = Field(
        "japanese_vowels", description="aeon dataset (official train/test split), or 'files'")
    train_file: Path | None = Field(None, description="dataset 'files': JSON lines {\"x\": [[f...] per step], \"y\": label}")
    test_file: Path | None = Field(None, description="dataset 'files': test set in the same format "
                                     "(null: no test split)")
    valid_fraction: float = Field(0.15, gt=0.0, lt=1.0, description="share of the training set held out (stratified)")
    bucket_by_length: bool = Field(True, description="batch sequences of similar length together")


class ClassifyConfig(RunConfig):
    task: Literal["classify"] = Field("classify", description="sequence classification (many-to-one)")
    data: ClassifyData = Field(default_factory=ClassifyData)
    model: ClassifierModelConfig = Field(default_factory=ClassifierModelConfig)
    optim: ClassifyOptimConfig = Field(default_factory=ClassifyOptimConfig)


class ClassifyInput(Record):
    EXAMPLE = '{"x": [[features...] per step]}'
    x: list[list[Number]] = Field(description="the sequence: one list of features per step")


def _sequence(record: dict, where: str, width: int | None = None) -> np.ndarray:
    """A data file record's ``x`` as a (T, F) array: one list of F finite numbers per step."""
    return frames(record["x"], where, width=width, step="step")


class ClassOutput(BaseModel):
    label: str = Field(description="the most probable class")
    probabilities: dict[str, float] = Field(description="every class's probability")


class ClassifyTask(Task):
    """Features (B, T, F) -> class. Features are standardised with the training split's mean and
    standard deviation; ``valid_fraction`` of the training split (stratified) validates."""

    name = "classify"
    config_class = ClassifyConfig
    predict_input = ClassifyInput
    predict_output = ClassOutput
    fitted_class = ClassifierFitted
    tensors = ClassifierTensors
    stream = SequenceStream
    estimators = ("lstmkit.tasks.classify.estimator:RecurrentClassifier",)
    formats = ('data files, evaluate --data and predict: JSON lines {"x": [[features...] per step], "y": label} '
               '(predict needs no "y")')
    metric = "acc"           # logged as train_acc / val_acc; the best checkpoint has the lowest val_loss
    combine = "probabilities"

    # data -------------------------------------------------------------------------------
    def _load(self) -> tuple[list[np.ndarray], np.ndarray, list[np.ndarray], np.ndarray]:
        data = self.config.data
        if data.dataset == "files":
            out, width = [], None
            for path in (data.train_file, data.test_file):
                numbered = read_numbered_jsonl(path, "data file") if path is not None else []
                records = [r for _, r in numbered]
                xs = []
                for line, r in numbered:
                    where = f"data file {str(path)!r} line {line}"
                    if not isinstance(r, dict) or "x" not in r or "y" not in r:
                        raise ValueError(f"{where}: expected {{\"x\": [[features...] per step], \"y\": label}}, "
                                         f"got {excerpt(r, 80)}")
                    x = _sequence(r, f"{where} x", width)
                    width = x.shape[1]
                    xs.append(x)
                out += [xs, np.asarray([str(r["y"]) for r in records])]
            return tuple(out)
        return datasets.load_uea(data.dataset)

    def _to_items(self, xs, ys, fitted: ClassifierFitted) -> ListDataset:
        index = {c: i for i, c in enumerate(fitted.classes)}
        return ListDataset([(fitted.scaled(x, f"sequence {i + 1} of the data"), index[y])
                            for i, (x, y) in enumerate(zip(xs, ys))])

    def prepare(self, fitted: ClassifierFitted | None = None) -> Prepared:
        x_train, y_train, x_test, y_test = self._load()
        classes, counts = np.unique(y_train, return_counts=True)
        if (counts < 2).any():      # one example of a class is all held out: none is left to train on
            raise ValueError(f"training data: expected at least 2 examples of each class (one trained on, one "
                             f"held out to validate), got 1 of {classes[counts < 2].tolist()[:10]}"
                             f"{' ...' if (counts < 2).sum() > 10 else ''} ({len(classes)} classes in "
                             f"{len(y_train)} examples)")
        keep, held = stratified_split(y_train, self.config.data.valid_fraction, self.config.data.split_seed)
        if fitted is None:
            steps = np.concatenate([x_train[i] for i in keep])            # (sum T, F)
            fitted = ClassifierFitted(classes=sorted(set(y_train.tolist())), features=int(steps.shape[1]),
                                      mean=steps.mean(0).tolist(), std=np.maximum(steps.std(0), 1e-8).tolist())
        unknown = sorted(set(y_test.tolist()) - set(fitted.classes))
        if unknown:
            raise ValueError(f"test labels {unknown} do not occur in the training split {fitted.classes}")
        return Prepared(train=self._to_items([x_train[i] for i in keep], y_train[keep], fitted),
                        valid=self._to_items([x_train[i] for i in held], y_train[held], fitted),
                        test=self._to_items(x_test, y_test, fitted), fitted=fitted)

    def lengths(self, dataset: ListDataset) -> list[int] | None:
        return dataset.lengths() if self.config.data.bucket_by_length else None

    def collate(self, items: list) -> dict[str, Tensor]:
        x, lengths = pad_sequences([x for x, _ in items])
        return {"x": x, "lengths": lengths, "y": torch.tensor([y for _, y in items], dtype=torch.long)}

    # model ------------------------------------------------------------------------------
    def _rnn_options(self) -> dict[str, Any]:
        m = self.config.model
        return dict(pooling=m.pooling, head_dropout=m.head_dropout, input_noise=m.input_noise, blocks=m.blocks,
                    **rnn_options(m))

    def build_model(self, fitted: ClassifierFitted) -> nn.Module:
        m = self.config.model
        return SequenceClassifier(m.cell, fitted.features, m.hidden_size, len(fitted.classes),
                                  **self._rnn_options())

    def batch_loss(self, model, batch):
        logits, loss = model(batch["x"], lengths=batch["lengths"], targets=batch["y"])
        return loss, {"acc": (logits.argmax(-1) == batch["y"]).float().mean()}

    # evaluation -------------------------------------------------------------------------
    @torch.no_grad()
    def _logits(self, model, dataset, batch_size: int = 256) -> tuple[Tensor, Tensor]:
        model.eval()
        outs, targets = [], []
        for i in range(0, len(dataset), batch_size):
            batch = self.collate([dataset[j] for j in range(i, min(i + batch_size, len(dataset)))])
            outs.append(model(batch["x"], lengths=batch["lengths"])[0])
            targets.append(batch["y"])
        return torch.cat(outs), torch.cat(targets)

    def evaluate(self, model, prepared: Prepared, split: str, out_dir: Path) -> dict[str, Any]:
        logits, y = self._logits(model, getattr(prepared, split))
        pred = logits.argmax(-1)
        classes = prepared.fitted.classes
        C = len(classes)
        matrix = torch.bincount(y * C + pred, minlength=C * C).reshape(C, C).numpy()
        correct = int((pred == y).sum())
        plots.confusion_matrix(matrix, classes, out_dir / f"confusion_matrix_{split}.png",
                               title=f"{split}: accuracy {correct / len(y):.4f} ({correct}/{len(y)})")
        return {"split": split, "n": len(y), "accuracy": correct / len(y), "errors": len(y) - correct,
                "loss": float(nn.functional.cross_entropy(logits, y)), "confusion_matrix": matrix.tolist(),
                "classes": classes}

    # prediction -------------------------------------------------------------------------
    def _inputs(self, fitted: ClassifierFitted, records: list[dict]) -> list[Tensor]:
        F = fitted.features
        out = []
        for i, r in enumerate(self.records(records)):
            where = f"predict: input record {i} x"
            out.append(fitted.scaled(_sequence(r.model_dump(), where, F), where))          # (T, F)
        return out

    @torch.no_grad()
    def predict(self, model, fitted: ClassifierFitted, records: list[dict]) -> list[dict]:
        model.eval()
        xs = self._inputs(fitted, records)
        if not xs:
            return []
        x, lengths = pad_sequences(xs)
        probs = torch.softmax(model(x, lengths=lengths)[0], -1)
        classes = fitted.classes
        return [{"label": classes[int(p.argmax())], "probabilities": dict(zip(classes, map(float, p)))}
                for p in probs]

    def export_graph(self, g, model, fitted: ClassifierFitted) -> dict[str, str]:
        from .export import classify_graph
        return classify_graph(g, model, fitted)

    @classmethod
    def summary(cls, split: str, results: dict[str, Any], *, refit: bool = False) -> str:
        return f"  {split:5s} accuracy {results['accuracy']:.4f} ({results['errors']} errors of {results['n']})"

    def label_of(self, record: dict):
        return record.get("y") if isinstance(record, dict) else None

    def evaluate_file(self, model, fitted: ClassifierFitted, path: Path, out_dir: Path) -> dict[str, Any]:
        """Accuracy on a labelled JSON-lines file (the predict format plus the label)."""
        records = read_jsonl(path, "data file")
        labels = [self.label_of(r) for r in records]
        for i, label in enumerate(labels):
            if label is None or str(label) not in fitted.classes:
                self.record_error(i, f"a label among {fitted.classes}", label)
        predictions = self.predict(model, fitted, records)
        classes = fitted.classes
        C, index = len(classes), {c: i for i, c in enumerate(classes)}
        matrix = np.zeros((C, C), dtype=np.int64)
        for label, p in zip(labels, predictions):
            matrix[index[str(label)], index[p["label"]]] += 1
        correct = int(np.trace(matrix))
        plots.confusion_matrix(matrix, classes, out_dir / "confusion_matrix_file.png",
                               title=f"{path.name}: accuracy {correct / len(records):.4f}")
        return {"file": str(path), "n": len(records), "accuracy": correct / len(records),
                "errors": len(records) - correct, "confusion_matrix": matrix.tolist(), "classes": classes}
