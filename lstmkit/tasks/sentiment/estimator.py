"""The text classifier as a scikit-learn estimator."""

from __future__ import annotations

import numpy as np

from ...train.estimator import ClassifierEstimator, collection

__all__ = ["TextClassifier"]


class TextClassifier(ClassifierEstimator):
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
        X = collection(self._owner(), "X", X, "strings")
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
