"""The classifier as a scikit-learn estimator."""

from __future__ import annotations

import numpy as np

from ...train.estimator import ClassifierEstimator, collection, finite_sequence

__all__ = ["RecurrentClassifier"]


class RecurrentClassifier(ClassifierEstimator):
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
        X = collection(self._owner(), argument, X, "(steps, features) arrays")
        xs = [finite_sequence(self._owner(), argument, i, x, 2) for i, x in enumerate(X)]
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
