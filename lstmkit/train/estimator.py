"""The trainer seen through scikit-learn's conventions: what every task's estimator shares.

``fit(X, y)``, ``predict(X)``, ``score(X, y)``, ``get_params`` / ``set_params``, so estimators work
with ``cross_val_score``, ``GridSearchCV`` and ``clone``, and the same trainer, checkpoints and run
directory as ``lstmkit train``: ``fit`` writes the data into the run directory (``data/``), a config
naming those files (``config.yaml``) and trains it, so the run can be evaluated, predicted from,
resumed and served by the CLI like any other, and :meth:`RunEstimator.load` turns any run
directory back into an estimator. Each task's estimators live in its folder; :mod:`lstmkit.estimators`
offers them all.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import NotFittedError
from sklearn.utils.multiclass import type_of_target

from ..runs import evaluate, load_run
from ..runs.config import apply_overrides
from ..runs.parsing import parse_config
from .runner import train

__all__ = ["RunEstimator", "ClassifierEstimator", "SeriesEstimator", "collection", "finite_sequence", "COMMON_FIELDS"]

# the parameters every estimator takes: name -> (config section, key); section None: top level
COMMON_FIELDS = {"cell": ("model", "cell"), "hidden_size": ("model", "hidden_size"),
                  "num_layers": ("model", "num_layers"), "bidirectional": ("model", "bidirectional"),
                  "dropout": ("model", "dropout"), "epochs": ("optim", "epochs"), "lr": ("optim", "lr"),
                  "optimizer": ("optim", "optimizer"), "batch_size": ("data", "batch_size"), "seed": (None, "seed")}


def collection(owner: str, argument: str, value: Any, what: str) -> list:
    """``value`` (a list, tuple or array of ``what``) as a list of at least one item; a
    ``TypeError`` or ``ValueError`` naming ``argument`` otherwise."""
    if (value is None or isinstance(value, (str, bytes, dict)) or not hasattr(value, "__len__")
            or getattr(value, "ndim", 1) == 0):
        raise TypeError(f"{owner}: argument '{argument}' expected a list of {what}, got {type(value).__name__}")
    if len(value) == 0:
        raise ValueError(f"{owner}: argument '{argument}' expected at least one of {what}, got none")
    return list(value)


def finite_sequence(owner: str, argument: str, index: int, value: Any, ndim: int) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{owner}: argument '{argument}' expected numbers, got {type(value).__name__} "
                        f"at index {index}") from None
    if ndim == 2 and array.ndim == 1:
        array = array[:, None]                                  # one feature per step
    if array.ndim != ndim or len(array) == 0:
        shape = "(steps >= 1, features)" if ndim == 2 else "(steps >= 1,)"
        raise ValueError(f"{owner}: argument '{argument}' expected sequences of shape {shape}, got shape "
                         f"{array.shape} at index {index}")
    if not np.isfinite(array).all():
        raise ValueError(f"{owner}: argument '{argument}' expected finite numbers, got nan or inf at index {index}")
    return array


class RunEstimator(BaseEstimator):
    """What every estimator shares: a config from the parameters, a run directory, training
    through :func:`lstmkit.train.runner.train`, and loading a run back. Subclasses set ``task``,
    name their own config fields (:meth:`_task_params`) and write their data in ``fit``."""

    task = ""

    def _owner(self) -> str:
        return type(self).__name__

    # training --------------------------------------------------------------------------------
    def _config(self, data: dict[str, Any]):
        """The run config: the task, the parameters in their sections, ``data`` (file keys) and
        ``self.config`` last, so it can override anything."""
        tree: dict[str, Any] = {"task": self.task, "trainer": {"progress_bar": bool(self.verbose)}}
        params = self.get_params()
        for name, (section, key) in self._fields().items():
            (tree if section is None else tree.setdefault(section, {}))[key] = params[name]
        tree.setdefault("data", {}).update(data)
        extra = self.config or {}
        if not isinstance(extra, dict):
            raise TypeError(f"{self._owner()}: argument 'config' expected a dict of dotted keys, got "
                            f"{type(extra).__name__}")
        return parse_config(apply_overrides(tree, [f"{k}={json.dumps(v)}" for k, v in extra.items()]))

    def _task_params(self) -> dict[str, tuple[str, str]]:
        """The subclass's own parameters: name -> (config section, key)."""
        return {}

    def _fields(self) -> dict[str, tuple[str | None, str]]:
        """Every parameter that is a config key: name -> (section, key)."""
        return {**COMMON_FIELDS, **self._task_params()}

    def _new_run_dir(self) -> Path:
        """The directory of this fit's run: ``run_dir``; the first free number in a ``run_dir``
        holding ``{n}``; or a temporary directory, removed with this estimator (or :meth:`cleanup`)."""
        self.cleanup()
        if self.run_dir is None:
            path = Path(tempfile.mkdtemp(prefix=f"lstmkit-{self.task}-"))
            self._temporary = weakref.finalize(self, shutil.rmtree, str(path), ignore_errors=True)
            return path
        if "{n}" in str(self.run_dir):
            return _numbered(str(self.run_dir))
        path = Path(self.run_dir)
        if path.exists() and any(path.iterdir()):
            raise FileExistsError(f"{self._owner()}: run_dir {str(path)!r} is not empty; give a new directory, "
                                  "run_dir=None for a temporary one, or a pattern such as 'runs/model-{n}' to let "
                                  "each fit (as cross_val_score and GridSearchCV make) take the next free number")
        path.mkdir(parents=True, exist_ok=True)
        return path

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_temporary", None)       # a copy does not own (nor remove) the temporary run directory
        return state

    def cleanup(self) -> None:
        """Remove the temporary run directory of the last ``fit`` (``run_dir=None``) now, rather than
        when the estimator is collected or the interpreter exits; a ``run_dir`` you gave is kept."""
        temporary = self.__dict__.pop("_temporary", None)
        if temporary is not None:
            temporary()

    def _train(self, data_files: dict[str, Any], run_dir: Path):
        config = self._config({k: str(v) for k, v in data_files.items()})
        self.results_ = train(config, run_dir, quiet=not self.verbose)
        self._attach(run_dir)
        return self

    def _attach(self, run_dir: Path) -> None:
        """Load the trained model of ``run_dir`` as this estimator's fitted state."""
        self.run_dir_ = Path(run_dir)
        self.run_ = load_run(run_dir)
        self.task_, self.fitted_, self.model_, self.checkpoint_ = (self.run_.task, self.run_.fitted, self.run_.model,
                                                                   self.run_.checkpoint)

    # using a trained run ---------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError(f"{self._owner()} is not fitted yet: call fit(X, y) or {self._owner()}.load(run_dir)")

    def _predict_records(self, records: list[dict]) -> list[dict]:
        self._check_fitted()
        return self.run_.predict(records)

    @classmethod
    def load(cls, run_dir: str | Path) -> RunEstimator:
        """An estimator of a trained run directory (``lstmkit train``'s or a ``fit``'s), with the
        parameters of its saved config."""
        saved = yaml.safe_load((Path(run_dir) / "config.yaml").read_text())
        config = parse_config(saved)
        if config.task != cls.task:
            raise ValueError(f"{cls.__name__}.load: expected a run of task {cls.task!r}, got task {config.task!r}")
        params = {name: getattr(config if section is None else getattr(config, section), key)
                  for name, (section, key) in cls()._fields().items()}
        estimator = cls(**params, run_dir=str(run_dir))
        estimator._attach(Path(run_dir))
        return estimator

    def save(self, path: str | Path) -> Path:
        """Copy the run directory (config, data, checkpoints, logs, plots) to ``path``."""
        self._check_fitted()
        return Path(shutil.copytree(self.run_dir_, path))

    def evaluate(self, split: str = "valid") -> dict[str, Any]:
        """The task's full metrics on a split of the fitted data (as ``lstmkit evaluate``)."""
        self._check_fitted()
        return evaluate(self.run_dir_, split=split)


def _numbered(pattern: str) -> Path:
    """The first ``pattern.format(n=0, 1, ...)`` directory that this call creates (so that
    parallel fits never share one)."""
    for n in range(100_000):
        path = Path(pattern.replace("{n}", str(n)))
        try:
            path.mkdir(parents=True)
        except FileExistsError:
            continue
        return path
    raise FileExistsError(f"run_dir {pattern!r}: every number up to 99999 is taken")


class ClassifierEstimator(ClassifierMixin, RunEstimator):
    """Labels of any hashable type; the run stores them as strings and ``classes_`` keeps the originals."""

    def _labels(self, y, n: int) -> list[str]:
        if getattr(y, "ndim", 1) > 1 and np.shape(y)[1:] != (1,) * (np.ndim(y) - 1):
            raise ValueError(f"{self._owner()}: argument 'y' expected one label per sequence, got an array of "
                             f"shape {np.shape(y)}")
        y = collection(self._owner(), "y", np.ravel(y) if hasattr(y, "ndim") else y, "labels")
        try:
            kind = type_of_target(y)
        except ValueError:          # labels scikit-learn cannot type (mixed kinds): the checks below decide
            kind = "unknown"
        if kind.startswith("continuous"):
            example = next(v for v in y if float(v) != int(float(v)))
            raise ValueError(f"{self._owner()}: argument 'y' expected class labels, got continuous values (such as "
                             f"{example!r}); a classifier needs a few classes, each seen more than once")
        if len(y) != n:
            raise ValueError(f"{self._owner()}: argument 'y' expected {n} labels (one per sequence), got {len(y)}")
        self.classes_ = np.unique(np.asarray(y))
        if len(self.classes_) < 2:
            raise ValueError(f"{self._owner()}: argument 'y' expected at least 2 classes, got {self.classes_.tolist()}")
        names = [str(c) for c in self.classes_]
        if len(set(names)) != len(names):
            raise ValueError(f"{self._owner()}: argument 'y' expected classes with distinct names, got "
                             f"{self.classes_.tolist()}")
        return [str(v) for v in y]

    def predict_proba(self, X) -> np.ndarray:
        """(N, C) class probabilities, columns in the order of ``classes_``."""
        self._check_fitted()
        outputs = self._predict_records(self._records(X))
        return np.asarray([[o["probabilities"][str(c)] for c in self.classes_] for o in outputs])

    def predict(self, X) -> np.ndarray:
        probabilities = self.predict_proba(X)
        return self.classes_[probabilities.argmax(1)]

    def _attach(self, run_dir: Path) -> None:
        super()._attach(run_dir)
        if not hasattr(self, "classes_"):                          # loaded: the run's classes, as strings
            self.classes_ = np.asarray(self.fitted_.classes)

    def _write(self, path: Path, records: list[dict]) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
        return path


class SeriesEstimator(RunEstimator):
    def _series(self, values, argument: str) -> np.ndarray:
        return finite_sequence(self._owner(), argument, 0, values, 1)

    def _write_series(self, path: Path, columns: list[np.ndarray]) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(",".join(repr(float(v)) for v in row) + "\n" for row in zip(*columns)))
        return path
