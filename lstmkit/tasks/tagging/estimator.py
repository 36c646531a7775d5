"""The tagger as a scikit-learn estimator."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...train.estimator import RunEstimator, collection

__all__ = ["RecurrentTagger"]


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
        X = collection(self._owner(), argument, X, "sentences (lists of words)")
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
