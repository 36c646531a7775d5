"""Estimators: every task trained, scored and used from Python on in-memory data.

The scikit-learn conventions (``fit(X, y)``, ``predict(X)``, ``score(X, y)``, ``get_params`` /
``set_params``), so they work with ``cross_val_score``, ``GridSearchCV`` and ``clone``, and the same
trainer, checkpoints and run directory as ``lstmkit train``: ``fit`` writes the data into the
run directory (``data/``), a config naming those files (``config.yaml``) and trains it, so the run
can be evaluated, predicted from, resumed and served by the CLI like any other, and
:meth:`RunEstimator.load` turns any run directory back into an estimator.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = [rng.normal(size=(int(rng.integers(5, 12)), 3)) + 2 * (i % 2) for i in range(40)]
    >>> y = [i % 2 for i in range(40)]
    >>> clf = RecurrentClassifier(cell="gru", hidden_size=8, epochs=15, lr=0.01, verbose=False).fit(X, y)
    >>> clf.predict(X[:4]).tolist(), clf.predict_proba(X[:1]).shape
    ([0, 1, 0, 1], (1, 2))

Parameters every estimator takes: the model's (``cell``, ``hidden_size``, ``num_layers``,
``bidirectional``, ``dropout``), the training's (``epochs``, ``batch_size``, ``lr``,
``optimizer``, ``seed``), ``run_dir`` (None: a new temporary directory per fit; ``run_dir_``
tells where) and ``config``: any other config keys, dotted (``{"optim.schedule": "none"}``).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from sklearn.base import BaseEstimator, ClassifierMixin, OutlierMixin, RegressorMixin

from .config import apply_overrides, parse_config

__all__ = ["RunEstimator", "RecurrentClassifier", "TextClassifier", "RecurrentForecaster", "AnomalyDetector",
           "RecurrentTagger"]

# the parameters every estimator takes: name -> (config section, key); section None: top level
_COMMON_FIELDS = {"cell": ("model", "cell"), "hidden_size": ("model", "hidden_size"),
                  "num_layers": ("model", "num_layers"), "bidirectional": ("model", "bidirectional"),
                  "dropout": ("model", "dropout"), "epochs": ("optim", "epochs"), "lr": ("optim", "lr"),
                  "optimizer": ("optim", "optimizer"), "batch_size": ("data", "batch_size"), "seed": (None, "seed")}


def _finite_sequence(owner: str, argument: str, index: int, value: Any, ndim: int) -> np.ndarray:
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
        return {**_COMMON_FIELDS, **self._task_params()}

    def _new_run_dir(self) -> Path:
        if self.run_dir is None:
            return Path(tempfile.mkdtemp(prefix=f"lstmkit-{self.task}-"))
        path = Path(self.run_dir)
        if path.exists() and any(path.iterdir()):
            raise FileExistsError(f"{self._owner()}: run_dir {str(path)!r} is not empty; give a new directory "
                                  "(or run_dir=None for a temporary one)")
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _train(self, data_files: dict[str, Any], run_dir: Path):
        from .runner import train
        config = self._config({k: str(v) for k, v in data_files.items()})
        self.results_ = train(config, run_dir, quiet=not self.verbose)
        self._attach(run_dir)
        return self

    def _attach(self, run_dir: Path) -> None:
        """Load the trained model of ``run_dir`` as this estimator's fitted state."""
        from .runner import load_run
        self.run_dir_ = Path(run_dir)
        self.task_, self.meta_, self.model_, self.checkpoint_ = load_run(run_dir)

    # using a trained run ---------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            from sklearn.exceptions import NotFittedError
            raise NotFittedError(f"{self._owner()} is not fitted yet: call fit(X, y) or {self._owner()}.load(run_dir)")

    def _predict_records(self, records: list[dict]) -> list[dict]:
        self._check_fitted()
        return self.task_.predict(self.model_, self.meta_, records)

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
        from .runner import evaluate
        self._check_fitted()
        return evaluate(self.run_dir_, split=split)


class _ClassifierBase(ClassifierMixin, RunEstimator):
    """Labels of any hashable type; the run stores them as strings and ``classes_`` keeps the originals."""

    def _labels(self, y, n: int) -> list[str]:
        y = list(y)
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
            self.classes_ = np.asarray(self.meta_["classes"])

    def _write(self, path: Path, records: list[dict]) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
        return path


class RecurrentClassifier(_ClassifierBase):
    """Many-to-one classification of variable-length sequences (the ``classify`` task).

    ``X``: a list of (T_i, F) arrays (or (T_i,) for one feature), or one (N, T, F) array; ``y``:
    one label per sequence. ``valid_fraction`` of ``X`` (stratified) validates; ``pooling``,
    ``head_dropout`` and ``input_noise`` as in the config's model section. Features are
    standardised with the training part's mean and deviation, inside the run.
    """

    task = "classify"

    def __init__(self, cell: str = "gru", hidden_size: int = 128, num_layers: int = 2, bidirectional: bool = True,
                 dropout: float = 0.3, pooling: str = "last", head_dropout: float = 0.3, input_noise: float = 0.2,
                 epochs: int = 80, batch_size: int = 32, lr: float = 3e-3, optimizer: str = "adam",
                 valid_fraction: float = 0.15, seed: int = 0, run_dir: str | None = None,
                 config: dict | None = None, verbose: bool = True):
        self.cell, self.hidden_size, self.num_layers, self.bidirectional = cell, hidden_size, num_layers, bidirectional
        self.dropout, self.pooling, self.head_dropout, self.input_noise = dropout, pooling, head_dropout, input_noise
        self.epochs, self.batch_size, self.lr, self.optimizer = epochs, batch_size, lr, optimizer
        self.valid_fraction, self.seed, self.run_dir, self.config, self.verbose = (valid_fraction, seed, run_dir,
                                                                                   config, verbose)

    def _task_params(self):
        return {"pooling": ("model", "pooling"), "head_dropout": ("model", "head_dropout"),
                "input_noise": ("model", "input_noise"), "valid_fraction": ("data", "valid_fraction")}

    def _sequences(self, X, argument: str = "X") -> list[np.ndarray]:
        if isinstance(X, (str, bytes)) or not hasattr(X, "__len__"):
            raise TypeError(f"{self._owner()}: argument '{argument}' expected a list of (steps, features) arrays, "
                            f"got {type(X).__name__}")
        xs = [_finite_sequence(self._owner(), argument, i, x, 2) for i, x in enumerate(X)]
        if len({x.shape[1] for x in xs}) > 1:
            raise ValueError(f"{self._owner()}: argument '{argument}' expected one feature count, got "
                             f"{sorted({x.shape[1] for x in xs})}")
        return xs

    def _records(self, X) -> list[dict]:
        return [{"x": x.tolist()} for x in self._sequences(X)]

    def fit(self, X, y):
        """Train on sequences ``X`` and labels ``y``; returns the fitted estimator."""
        xs = self._sequences(X)
        labels = self._labels(y, len(xs))
        run_dir = self._new_run_dir()
        train_file = self._write(run_dir / "data" / "train.jsonl",
                                 [{"x": x.tolist(), "y": label} for x, label in zip(xs, labels)])
        return self._train({"dataset": "files", "train_file": train_file}, run_dir)


class TextClassifier(_ClassifierBase):
    """Text classification (the ``sentiment`` task): ``X`` a list of strings, ``y`` their labels.

    The vocabulary comes from the training part; ``valid_fraction`` of the texts (chosen with
    ``seed``) validates; ``word_vectors="en_core_web_md"`` reads the frozen pretrained vectors
    beside the trained embedding (see the README's set-up).
    """

    task = "sentiment"

    def __init__(self, cell: str = "lstm", hidden_size: int = 64, num_layers: int = 1, bidirectional: bool = True,
                 dropout: float = 0.0, embedding_size: int = 128, pooling: str = "max", word_dropout: float = 0.0,
                 word_vectors: str = "none", min_count: int = 2, epochs: int = 8, batch_size: int = 32,
                 lr: float = 2e-3, optimizer: str = "adam", valid_fraction: float = 0.1, seed: int = 0,
                 run_dir: str | None = None, config: dict | None = None, verbose: bool = True):
        self.cell, self.hidden_size, self.num_layers, self.bidirectional = cell, hidden_size, num_layers, bidirectional
        self.dropout, self.embedding_size, self.pooling, self.word_dropout = dropout, embedding_size, pooling, \
            word_dropout
        self.word_vectors, self.min_count = word_vectors, min_count
        self.epochs, self.batch_size, self.lr, self.optimizer = epochs, batch_size, lr, optimizer
        self.valid_fraction, self.seed, self.run_dir, self.config, self.verbose = (valid_fraction, seed, run_dir,
                                                                                   config, verbose)

    def _task_params(self):
        return {"embedding_size": ("model", "embedding_size"), "pooling": ("model", "pooling"),
                "word_dropout": ("model", "word_dropout"), "word_vectors": ("model", "word_vectors"),
                "min_count": ("data", "min_count")}

    def _texts(self, X) -> list[str]:
        if isinstance(X, str) or not hasattr(X, "__len__"):
            raise TypeError(f"{self._owner()}: argument 'X' expected a list of strings, got {type(X).__name__}")
        for i, text in enumerate(X):
            if not isinstance(text, str):
                raise TypeError(f"{self._owner()}: argument 'X' expected strings, got {type(text).__name__} "
                                f"at index {i}")
        return list(X)

    def _records(self, X) -> list[dict]:
        return [{"text": text} for text in self._texts(X)]

    def fit(self, X, y):
        """Train on texts ``X`` and labels ``y``; returns the fitted estimator."""
        texts = self._texts(X)
        labels = self._labels(y, len(texts))
        if not 0.0 < self.valid_fraction < 1.0:
            raise ValueError(f"{self._owner()}: argument 'valid_fraction' expected a share in (0, 1), "
                             f"got {self.valid_fraction!r}")
        order = np.random.default_rng(self.seed).permutation(len(texts))
        n_valid = max(1, round(self.valid_fraction * len(texts)))
        run_dir = self._new_run_dir()
        files = {}
        for split, index in (("valid", order[:n_valid]), ("train", order[n_valid:])):
            files[f"{split}_file"] = self._write(run_dir / "data" / f"{split}.jsonl",
                                                 [{"text": texts[i], "label": labels[i]} for i in index])
        return self._train({"dataset": "files", **files}, run_dir)


class _SeriesBase(RunEstimator):
    def _series(self, values, argument: str) -> np.ndarray:
        return _finite_sequence(self._owner(), argument, 0, values, 1)

    def _write_series(self, path: Path, columns: list[np.ndarray]) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(",".join(repr(float(v)) for v in row) + "\n" for row in zip(*columns)))
        return path


class RecurrentForecaster(RegressorMixin, _SeriesBase):
    """Direct multi-step forecasting of one series (the ``forecast`` task).

    ``fit(y)`` trains on the series ``y`` (its last ``valid_size`` steps before the last
    ``test_size`` validate, the last ``test_size`` test: ``results_`` has the MASE against the
    seasonal-naive and ETS forecasts); ``predict(histories)`` gives the next ``horizon`` values
    after each history (at least ``window`` values); ``score(histories, futures)`` is the R² of
    those forecasts. With phase features (``config={"data.periods": [...]}``) a history's first
    step is taken as step 0; :meth:`predict_records` takes the step of each history.
    """

    task = "forecast"

    def __init__(self, cell: str = "lstm", hidden_size: int = 64, num_layers: int = 1, bidirectional: bool = False,
                 dropout: float = 0.0, window: int = 48, horizon: int = 12, season: int = 1,
                 test_size: int | None = None, valid_size: int | None = None, epochs: int = 30,
                 batch_size: int = 32, lr: float = 3e-3, optimizer: str = "adam", seed: int = 0,
                 run_dir: str | None = None, config: dict | None = None, verbose: bool = True):
        self.cell, self.hidden_size, self.num_layers, self.bidirectional = cell, hidden_size, num_layers, bidirectional
        self.dropout, self.window, self.horizon, self.season = dropout, window, horizon, season
        self.test_size, self.valid_size = test_size, valid_size
        self.epochs, self.batch_size, self.lr, self.optimizer = epochs, batch_size, lr, optimizer
        self.seed, self.run_dir, self.config, self.verbose = seed, run_dir, config, verbose

    def _task_params(self):
        return {name: ("data", name) for name in ("window", "horizon", "season", "test_size", "valid_size")}

    def fit(self, y, X=None):
        """Train on the series ``y`` (``X`` is ignored: the model reads the series' own past)."""
        series = self._series(y, "y")
        run_dir = self._new_run_dir()
        file = self._write_series(run_dir / "data" / "series.csv", [series])
        return self._train({"dataset": "file", "file": file}, run_dir)

    def predict_records(self, records: list[dict]) -> list[dict]:
        """Forecasts of JSON records ``{"history": [...], "start": step}`` (as ``lstmkit predict``)."""
        return self._predict_records(records)

    def predict(self, X) -> np.ndarray:
        """(N, horizon) forecasts, one row per history in ``X``."""
        histories = [self._series(h, "X") for h in X]
        return np.asarray([o["forecast"] for o in self._predict_records([{"history": h.tolist()}
                                                                          for h in histories])])

    def score(self, X, y, sample_weight=None) -> float:
        """R² of the forecasts of the histories ``X`` against the futures ``y`` (N, horizon)."""
        from sklearn.metrics import r2_score
        return float(r2_score(np.asarray(y, dtype=np.float64).ravel(), self.predict(X).ravel(),
                              sample_weight=sample_weight))


class AnomalyDetector(OutlierMixin, _SeriesBase):
    """Anomaly detection by one-step prediction error (the ``anomaly`` task).

    ``fit(X)`` trains on a normal series (its last ``valid_fraction`` sets the threshold, the
    ``threshold_quantile`` of its scores); ``score_samples(series)`` gives each point's score
    (higher: more anomalous; 0 for the first ``window`` points) and ``predict(series)`` -1 for the
    points above the threshold and 1 for the others, as scikit-learn's outlier detectors do.
    """

    task = "anomaly"

    def __init__(self, cell: str = "lstm", hidden_size: int = 32, num_layers: int = 1, bidirectional: bool = False,
                 dropout: float = 0.0, window: int = 64, smooth: int = 16, threshold_quantile: float = 0.999,
                 valid_fraction: float = 0.2, epochs: int = 30, batch_size: int = 32, lr: float = 3e-3,
                 optimizer: str = "adam", seed: int = 0, run_dir: str | None = None, config: dict | None = None,
                 verbose: bool = True):
        self.cell, self.hidden_size, self.num_layers, self.bidirectional = cell, hidden_size, num_layers, bidirectional
        self.dropout, self.window, self.smooth, self.threshold_quantile = dropout, window, smooth, threshold_quantile
        self.valid_fraction = valid_fraction
        self.epochs, self.batch_size, self.lr, self.optimizer = epochs, batch_size, lr, optimizer
        self.seed, self.run_dir, self.config, self.verbose = seed, run_dir, config, verbose

    def _task_params(self):
        return {name: ("data", name) for name in ("window", "smooth", "threshold_quantile", "valid_fraction")}

    def fit(self, X, y=None):
        """Train on the normal series ``X`` (``y`` is ignored: the data are assumed normal)."""
        series = self._series(X, "X")
        run_dir = self._new_run_dir()
        file = self._write_series(run_dir / "data" / "normal.csv", [series])
        return self._train({"dataset": "file", "train_file": file}, run_dir)

    def _outputs(self, X) -> dict:
        series = self._series(X, "X")
        return self._predict_records([{"values": series.tolist()}])[0]

    def score_samples(self, X) -> np.ndarray:
        return np.asarray(self._outputs(X)["scores"])

    def decision_function(self, X) -> np.ndarray:
        """Threshold minus score: negative for the anomalies."""
        out = self._outputs(X)
        return out["threshold"] - np.asarray(out["scores"])

    def predict(self, X) -> np.ndarray:
        return np.where(self.decision_function(X) < 0, -1, 1)

    @property
    def threshold_(self) -> float:
        self._check_fitted()
        return self.meta_["threshold"]



class RecurrentTagger(RunEstimator):
    """A tag per word (the ``tagging`` task): ``X`` a list of sentences, each a list of words;
    ``y`` their tag lists. ``valid_fraction`` of the sentences (chosen with ``seed``) validates;
    ``chars`` (``"cnn"``, ``"rnn"``, ``"none"``), ``output`` (``"crf"``, ``"softmax"``) and
    ``word_vectors`` as in the config's model section; an entity scheme (BIO, BIOES) is
    recognised from the tags and constrains the CRF. ``predict`` gives each sentence's tags,
    :meth:`predict_records` the tags with their confidence (and entity spans); ``score`` is the
    token accuracy.
    """

    task = "tagging"

    def __init__(self, cell: str = "lstm", hidden_size: int = 128, num_layers: int = 1, bidirectional: bool = True,
                 dropout: float = 0.0, embedding_size: int = 100, chars: str = "cnn", output: str = "crf",
                 word_vectors: str = "none", epochs: int = 10, batch_size: int = 32, lr: float = 2e-3,
                 optimizer: str = "adam", valid_fraction: float = 0.1, seed: int = 0, run_dir: str | None = None,
                 config: dict | None = None, verbose: bool = True):
        self.cell, self.hidden_size, self.num_layers, self.bidirectional = cell, hidden_size, num_layers, bidirectional
        self.dropout, self.embedding_size, self.chars, self.output = dropout, embedding_size, chars, output
        self.word_vectors = word_vectors
        self.epochs, self.batch_size, self.lr, self.optimizer = epochs, batch_size, lr, optimizer
        self.valid_fraction, self.seed, self.run_dir, self.config, self.verbose = (valid_fraction, seed, run_dir,
                                                                                   config, verbose)

    def _task_params(self):
        return {"embedding_size": ("model", "embedding_size"), "chars": ("model", "chars"),
                "output": ("model", "output"), "word_vectors": ("model", "word_vectors")}

    def _sentences(self, X, argument: str = "X") -> list[list[str]]:
        if isinstance(X, str) or not hasattr(X, "__len__"):
            raise TypeError(f"{self._owner()}: argument '{argument}' expected a list of sentences (lists of words), "
                            f"got {type(X).__name__}")
        out = []
        for i, words in enumerate(X):
            if isinstance(words, str) or not hasattr(words, "__len__") or not len(words):
                raise ValueError(f"{self._owner()}: argument '{argument}' expected a non-empty list of words at "
                                 f"index {i}, got {words!r:.60}")
            for word in words:
                if not isinstance(word, str) or not word or word.split() != [word]:
                    raise ValueError(f"{self._owner()}: argument '{argument}' expected words (non-empty strings "
                                     f"without spaces) at index {i}, got {word!r:.60}")
            out.append(list(words))
        return out

    def _tags(self, y, sentences: list[list[str]]) -> list[list[str]]:
        tags = self._sentences(y, "y")
        if len(tags) != len(sentences):
            raise ValueError(f"{self._owner()}: argument 'y' expected {len(sentences)} tag lists (one per sentence), "
                             f"got {len(tags)}")
        for i, (words, row) in enumerate(zip(sentences, tags)):
            if len(words) != len(row):
                raise ValueError(f"{self._owner()}: argument 'y' expected {len(words)} tags at index {i} (one per "
                                 f"word), got {len(row)}")
        return tags

    @staticmethod
    def _write(path: Path, sentences: list[list[str]], tags: list[list[str]]) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join("".join(f"{w}\t{t}\n" for w, t in zip(s, row)) + "\n"
                                for s, row in zip(sentences, tags)), encoding="utf-8")
        return path

    def fit(self, X, y):
        """Train on sentences ``X`` (lists of words) and their tags ``y``; returns the fitted estimator."""
        sentences = self._sentences(X)
        tags = self._tags(y, sentences)
        if not 0.0 < self.valid_fraction < 1.0:
            raise ValueError(f"{self._owner()}: argument 'valid_fraction' expected a share in (0, 1), "
                             f"got {self.valid_fraction!r}")
        order = np.random.default_rng(self.seed).permutation(len(sentences))
        n_valid = max(1, round(self.valid_fraction * len(sentences)))
        run_dir = self._new_run_dir()
        files = {f"{split}_file": self._write(run_dir / "data" / f"{split}.conll", [sentences[i] for i in index],
                                              [tags[i] for i in index])
                 for split, index in (("valid", np.sort(order[:n_valid])), ("train", np.sort(order[n_valid:])))}
        return self._train({"dataset": "files", "baselines": False, **files}, run_dir)

    def predict_records(self, X) -> list[dict]:
        """``{"tokens", "tags", "confidence"[, "spans"]}`` of each sentence (as ``lstmkit predict``)."""
        return self._predict_records([{"tokens": s} for s in self._sentences(X)])

    def predict(self, X) -> list[list[str]]:
        """The tags of each sentence."""
        return [r["tags"] for r in self.predict_records(X)]

    def score(self, X, y, sample_weight=None) -> float:
        """Token accuracy of the predicted tags of ``X`` against ``y``."""
        sentences = self._sentences(X)
        gold = self._tags(y, sentences)
        predicted = self.predict(sentences)
        hits = [g == p for row, out in zip(gold, predicted) for g, p in zip(row, out)]
        return float(np.mean(hits))
