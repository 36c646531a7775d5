"""Sequence tagging: a tag per word (part of speech, named entities), by a BiLSTM-CRF over word
embeddings and a character encoder (Huang, Xu & Yu 2015; Lample et al. 2016; Ma & Hovy 2016).

Datasets (see :mod:`lstmkit.data.tagged` for sources, sizes and licences):

- ``brown``: the Brown Corpus, split by file within each genre (80/10/10), in Brown's
  normalised tags or the 12 universal tags (``data.tagset``);
- ``wnut16``: WNUT-16 Twitter named entities (its training set only, the test set ships in no
  package): ``data.folds``-fold cross-validation, fold ``data.fold`` the test set and the next
  one validation; entity F1 from ``seqeval``;
- ``turkish``: the Turkish web and Wikipedia treebanks' universal POS tags, split by document
  (a hash of its id: 80/10/10), since the package has no split of its own;
- ``files``: your own CoNLL-style files (word first, tag last; CoNLL-U: FORM and UPOS).

Words are looked up lower-cased with digits as 0 (``data.lowercase``, ``data.digits_to_zero``;
the character encoder and the pretrained vectors see the word as written). Entity schemes
(BIO, BIOES; ``data.scheme: auto`` recognises them) constrain the CRF: a transition the
scheme forbids can never be decoded, and a gold file that holds one is an error. Evaluation
reports token and sentence accuracy, accuracy on words unseen in training, per-tag precision,
recall and F1, entity F1 under a scheme, and two baselines fitted on the same training split:
the most frequent tag of each word (unseen words: the most frequent tag) and NLTK's averaged
perceptron tagger.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections import Counter
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, Field, StringConstraints, model_validator
from torch import Tensor, nn

from ...data import tagged
from ...data.tagged import Sentence
from ...data.word_vectors import WORD_VECTORS, load_word_vectors
from ...layers import SCHEMES, allowed_transitions
from ...models import CharCNN, CharRNN, SequenceTagger
from ...models.tagger import OUTPUTS
from ...runs import plots
from ...runs.config import CELL_HELP, DataConfig, ModelConfig, OptimConfig, RunConfig, rnn_options
from ...runs.batches import ListDataset, pad_sequences
from ...runs.records import Record
from ...runs.task import Prepared, Ratio, Task
from .fitted import TaggerFitted, normalise
from .tensors import TaggerTensors

__all__ = ["TaggingTask"]

_CHARS = ("cnn", "rnn", "none")


class TaggingData(DataConfig):
    needs = {"files": ("train_file", "valid_file")}
    dataset: Literal["brown", "wnut16", "turkish", "files"] = Field(
        "brown", description="brown (POS, split by file), wnut16 (Twitter NER, cross-validation folds), turkish "
                             "(UPOS, split by document), or 'files' (CoNLL-style)")
    tagset: Literal[tagged.BROWN_TAGSETS] = Field(
        "universal", description="dataset brown: the 12 universal tags, or Brown's tags with markers normalised")
    folds: int = Field(5, ge=3, description="dataset wnut16: cross-validation folds")
    fold: int = Field(0, ge=0, description="dataset wnut16: the fold held out for testing (the next one validates)")
    turkish_source: Literal["web", "wiki", "both"] = Field("both", description="dataset turkish: which treebank")
    train_file: Path | None = Field(None, description="dataset 'files': CoNLL-style training file")
    valid_file: Path | None = Field(None, description="dataset 'files': validation file, same format")
    test_file: Path | None = Field(None, description="dataset 'files': test file, same format (null: no test split)")
    scheme: Literal[("auto", "none", *SCHEMES)] = Field(
        "auto", description="tagging scheme whose rules constrain the CRF: auto (BIO or BIOES when every training "
                            "tag is O or prefixed so, else none), none, BIO or BIOES")
    lowercase: bool = Field(True, description="look words up lower-cased (characters keep their case)")
    digits_to_zero: bool = Field(True, description="look words up with every digit as 0")
    min_count: int = Field(1, gt=0, description="training words seen fewer times share the <unk> embedding")
    max_word_length: int = Field(30, gt=0, description="characters of a word the character encoder reads")
    batch_size: int = Field(32, gt=0, description="sentences per batch")
    bucket_by_length: bool = Field(True, description="batch sentences of similar length together")
    baselines: bool = Field(True, description="also fit and score the most-frequent-tag and NLTK perceptron "
                                              "baselines on the same split")

    @model_validator(mode="after")
    def _consistent(self):
        if self.fold >= self.folds:
            raise ValueError(f"fold: expected a fold in [0, {self.folds - 1}] (folds {self.folds}), got {self.fold}")
        return self


class TaggerModelConfig(ModelConfig):
    cell: str = Field("lstm", description=CELL_HELP)
    hidden_size: int = Field(128, gt=0, description="hidden units per direction")
    bidirectional: bool = Field(True, description="read each sentence both ways")
    embedding_size: int = Field(100, gt=0, description="word embedding size")
    word_vectors: Literal[("none", *WORD_VECTORS)] = Field(
        "none", description="frozen pretrained vectors beside the trained embedding (English): en_core_web_md or none")
    chars: Literal[_CHARS] = Field("cnn", description="character encoder of each word: a CNN with max-pooling "
                                                      "(Ma & Hovy), a BiLSTM (Lample et al.), or none")
    char_embedding_size: int = Field(30, gt=0, description="character embedding size")
    char_size: int = Field(50, gt=0, description="CNN filters, or hidden units per direction of the character BiLSTM")
    char_width: int = Field(3, gt=0, description="CNN window in characters (odd)")
    output: Literal[OUTPUTS] = Field("crf", description="CRF over the sentence, or a softmax per word (the ablation)")
    feature_dropout: float = Field(0.5, ge=0.0, lt=1.0, description="dropout on the recurrent network's input "
                                                                    "and output")
    word_dropout: float = Field(0.05, ge=0.0, lt=1.0, description="in training, replace each word by <unk> "
                                                                  "with this probability")

    @model_validator(mode="after")
    def _tagger(self):
        if self.chars == "cnn" and self.char_width % 2 == 0:
            raise ValueError(f"char_width: expected an odd number of characters, got {self.char_width}")
        if self.ensemble != 1:
            raise ValueError(f"ensemble: the tagging task trains one model (1), got {self.ensemble}")
        return self


class TaggingOptimConfig(OptimConfig):
    lr: float = Field(2e-3, gt=0.0, description="learning rate")
    epochs: int = Field(10, gt=0, description="maximum number of epochs")
    clip_grad_norm: float | None = Field(5.0, gt=0.0, description="clip the gradient norm (null: no clipping)")


class TaggingConfig(RunConfig):
    task: Literal["tagging"] = Field("tagging", description="sequence tagging (a tag per word)")
    data: TaggingData = Field(default_factory=TaggingData)
    model: TaggerModelConfig = Field(default_factory=TaggerModelConfig)
    optim: TaggingOptimConfig = Field(default_factory=TaggingOptimConfig)


class TokensInput(Record):
    EXAMPLE = '{"tokens": ["words", ...]} or a JSON string of space-separated words'
    tokens: list[Annotated[str, StringConstraints(min_length=1)]] = Field(
        min_length=1, description="the sentence's words (non-empty strings)")

    @model_validator(mode="before")
    @classmethod
    def _plain(cls, value):
        if isinstance(value, str):
            return {"tokens": value.split()}
        return {"tokens": value} if isinstance(value, list) else value


class Span(BaseModel):
    type: str = Field(description="the entity type")
    start: int = Field(description="index of its first word")
    end: int = Field(description="index after its last word")
    text: str = Field(description="its words, space-separated")


class TagsOutput(BaseModel):
    tokens: list[str] = Field(description="the words")
    tags: list[str] = Field(description="the tag of each word")
    confidence: list[float] = Field(description="p(tag | sentence) of each word's tag (CRF marginals)")
    spans: list[Span] | None = Field(None, description="entities, under a BIO or BIOES scheme")


def _scheme_of(tags: set[str]) -> str:
    if tags <= {"O"} or not all(t == "O" or re.match(r"[BIES]-.", t) for t in tags):
        return "none"
    return "BIOES" if any(t[0] in "ES" for t in tags if t != "O") else "BIO"


def spans(tags: list[str], words: list[str]) -> list[dict]:
    """The entities of a BIO or BIOES tag sequence (seqeval's reading, as its F1 counts them)."""
    from seqeval.metrics.sequence_labeling import get_entities
    return [{"type": kind, "start": start, "end": end + 1, "text": " ".join(words[start:end + 1])}
            for kind, start, end in get_entities(list(tags))]


class TaggingTask(Task):
    """Words -> one tag per word. The best checkpoint has the highest validation token accuracy
    (Viterbi-decoded, over every token of the split), or under an entity scheme the highest
    entity F1 over the whole split (``val_f1``); see the module docstring for the datasets and
    metrics."""

    name = "tagging"
    config_class = TaggingConfig
    predict_input = TokensInput
    predict_output = TagsOutput
    fitted_class = TaggerFitted
    tensors = TaggerTensors
    estimators = ("lstmkit.tasks.tagging.estimator:RecurrentTagger",)
    formats = ("data files and evaluate --data: CoNLL-style text, a word and its tag per line (word first, tag "
               "last; CoNLL-U: FORM and UPOS), a blank line between sentences; predict: JSON lines "
               '{"tokens": ["words", ...]} (or a JSON string of space-separated words)')
    monitor = "val_acc"
    mode = "max"
    metric = "acc"

    # data -------------------------------------------------------------------------------
    def _sentences(self) -> tuple[dict[str, list[Sentence]], list[str] | None]:
        """The splits' sentences, and the dataset's own tag inventory (None for files: the
        training split's tags are the tag set, and a tag it lacks is an error elsewhere)."""
        data = self.config.data
        if data.dataset == "files":
            splits = {"train": tagged.read_conll(data.train_file), "valid": tagged.read_conll(data.valid_file),
                      "test": tagged.read_conll(data.test_file) if data.test_file is not None else []}
            return splits, None
        if data.dataset == "brown":
            files = tagged.load_brown(data.tagset)
            splits = {k: [s for name in names for s in files[name]] for k, names in tagged.brown_split(files).items()}
        elif data.dataset == "wnut16":
            sentences = tagged.load_wnut16()
            folds = np.array_split(np.random.default_rng(data.split_seed).permutation(len(sentences)), data.folds)
            test, valid = data.fold, (data.fold + 1) % data.folds
            train = np.sort(np.concatenate([f for i, f in enumerate(folds) if i not in (test, valid)]))
            splits = {"train": [sentences[i] for i in train], "valid": [sentences[i] for i in np.sort(folds[valid])],
                      "test": [sentences[i] for i in np.sort(folds[test])]}
        else:
            splits = {"train": [], "valid": [], "test": []}
            for document, sentence in tagged.load_turkish(data.turkish_source):
                bucket = int(hashlib.sha256(document.encode()).hexdigest(), 16) % 10
                splits["test" if bucket == 0 else "valid" if bucket == 1 else "train"].append(sentence)
        return splits, sorted({t for part in splits.values() for s in part for t in s.tags})

    def _fit(self, splits: dict[str, list[Sentence]], inventory: list[str] | None) -> TaggerFitted:
        data, m = self.config.data, self.config.model
        words = Counter(normalise(w, data.lowercase, data.digits_to_zero) for s in splits["train"] for w in s.words)
        tags = inventory or sorted({t for s in splits["train"] for t in s.tags})
        return TaggerFitted(
            lowercase=data.lowercase, digits_to_zero=data.digits_to_zero, max_word_length=data.max_word_length,
            vocab=sorted((w for w, c in words.items() if c >= data.min_count), key=lambda w: (-words[w], w)),
            chars=sorted({c for s in splits["train"] for w in s.words for c in w}), tags=tags,
            scheme=_scheme_of(set(tags)) if data.scheme == "auto" else data.scheme,
            word_vectors=None if m.word_vectors == "none" else load_word_vectors(m.word_vectors).describe())

    def _check_tags(self, sentences: list[Sentence], fitted: TaggerFitted, what: str) -> None:
        """Every tag known, and legal under the scheme: else an error naming the sentence's file and line."""
        known = set(fitted.tags)
        allowed = self._allowed(fitted)
        index = {t: i for i, t in enumerate(fitted.tags)}
        for s in sentences:
            unknown = sorted(set(s.tags) - known)
            if unknown:
                raise ValueError(f"{s.where or what}: tags {unknown} do not occur in the training data "
                                 f"(tags: {fitted.tags[:30]}{'...' if len(fitted.tags) > 30 else ''})")
            if allowed is not None:
                ids = [index[t] for t in s.tags]
                bad = next((i for i in range(1, len(ids)) if not allowed[0][ids[i - 1], ids[i]]), None)
                if not allowed[1][ids[0]]:
                    bad = 0
                if bad is not None:
                    before = f"after {s.tags[bad - 1]!r}" if bad else "first"
                    raise ValueError(f"{s.where or what}: word {bad + 1} ({s.words[bad]!r}) has the tag "
                                     f"{s.tags[bad]!r} {before}, which the {fitted.scheme} scheme forbids (set "
                                     "data.scheme: none to train without its constraints)")

    def _allowed(self, fitted: TaggerFitted):
        return None if fitted.scheme == "none" else allowed_transitions(fitted.tags, fitted.scheme)

    def _vectors(self, fitted: TaggerFitted):
        recorded = fitted.word_vectors
        if recorded is None:
            return None
        vectors = load_word_vectors(recorded["name"])
        vectors.check(recorded)
        return vectors

    def _encode(self, words: list[str], fitted: TaggerFitted, cache: dict) -> tuple[Tensor, Tensor, Tensor]:
        """(word ids (T,) or (T, 2) with vector rows, chars (T, L), char lengths (T,))."""
        if "index" not in cache:
            cache["index"] = {w: i + 2 for i, w in enumerate(fitted.vocab)}
            cache["char_index"] = {c: i + 2 for i, c in enumerate(fitted.chars)}
            cache["vectors"] = self._vectors(fitted)
        index, char_index, vectors = cache["index"], cache["char_index"], cache["vectors"]
        ids = [index.get(fitted.lookup(w), 1) for w in words]
        ids = torch.tensor(list(zip(ids, vectors.rows(words))) if vectors is not None else ids, dtype=torch.long)
        L = fitted.max_word_length
        chars = torch.zeros(len(words), min(L, max(len(w) for w in words)), dtype=torch.long)
        for t, w in enumerate(words):
            codes = [char_index.get(c, 1) for c in w[:L]]
            chars[t, :len(codes)] = torch.tensor(codes)
        char_lengths = torch.tensor([min(len(w), L) for w in words], dtype=torch.long)
        return ids, chars, char_lengths

    def _items(self, sentences: list[Sentence], fitted: TaggerFitted, cache: dict) -> ListDataset:
        index = {t: i for i, t in enumerate(fitted.tags)}
        return ListDataset([(*self._encode(list(s.words), fitted, cache), torch.tensor([index[t] for t in s.tags]))
                            for s in sentences])

    def prepare(self, fitted: TaggerFitted | None = None) -> Prepared:
        splits, inventory = self._sentences()
        if fitted is None:
            fitted = self._fit(splits, inventory)
        for split, sentences in splits.items():
            self._check_tags(sentences, fitted, f"{split} split")
        cache: dict = {}
        sets = {split: self._items(sentences, fitted, cache) for split, sentences in splits.items()}
        # what validation reports depends on the fitted tags: entity F1 where a scheme reads entities
        self._entity_tags = fitted.tags if fitted.scheme != "none" else None
        self.monitor = "val_f1" if self._entity_tags is not None else "val_acc"
        return Prepared(train=sets["train"], valid=sets["valid"], test=sets["test"], fitted=fitted,
                        extra={"sentences": splits})

    def lengths(self, dataset: ListDataset) -> list[int] | None:
        return [len(item[0]) for item in dataset.items] if self.config.data.bucket_by_length else None

    def collate(self, items: list) -> dict[str, Tensor]:
        words, lengths = pad_sequences([item[0] for item in items])
        B, T = words.shape[:2]
        L = max(item[1].shape[1] for item in items)
        chars = torch.zeros(B, T, L, dtype=torch.long)
        char_lengths = torch.zeros(B, T, dtype=torch.long)
        for b, (_, c, n, _) in enumerate(items):
            chars[b, :c.shape[0], :c.shape[1]] = c
            char_lengths[b, :n.shape[0]] = n
        tags, _ = pad_sequences([item[3] for item in items])
        return {"words": words, "lengths": lengths, "chars": chars, "char_lengths": char_lengths, "tags": tags}

    # model ------------------------------------------------------------------------------
    def build_model(self, fitted: TaggerFitted) -> nn.Module:
        m = self.config.model
        num_chars = len(fitted.chars) + 2
        encoder = None
        if m.chars == "cnn":
            encoder = CharCNN(num_chars, embedding_size=m.char_embedding_size, filters=m.char_size, width=m.char_width)
        elif m.chars == "rnn":
            encoder = CharRNN(num_chars, embedding_size=m.char_embedding_size, hidden_size=m.char_size, cell=m.cell)
        vectors = self._vectors(fitted)
        options = rnn_options(m)
        options.pop("bidirectional")
        return SequenceTagger(m.cell, len(fitted.vocab) + 2, m.hidden_size, len(fitted.tags),
                              embedding_size=m.embedding_size, output=m.output, char_encoder=encoder,
                              allowed=self._allowed(fitted) if m.output == "crf" else None,
                              feature_dropout=m.feature_dropout, word_dropout=m.word_dropout, unk_index=1,
                              word_vectors=None if vectors is None else torch.from_numpy(vectors.matrix),
                              bidirectional=m.bidirectional, **options)

    @staticmethod
    def _chars(batch: dict[str, Tensor]) -> dict[str, Tensor]:
        return {"chars": batch["chars"], "char_lengths": batch["char_lengths"]}

    def batch_size(self, batch: dict[str, Tensor]) -> int:
        """What the loss is a mean over: sentences for the CRF, words for the softmax."""
        return batch["words"].shape[0] if self.config.model.output == "crf" else int(batch["lengths"].sum())

    def batch_loss(self, model, batch):
        emissions, loss = model(batch["words"], batch["lengths"], targets=batch["tags"], **self._chars(batch))
        if model.training:                      # decoding every training batch would cost more than the step
            return loss, {}
        paths = model.best_tags(emissions, batch["lengths"])
        gold = [row[:n] for row, n in zip(batch["tags"].tolist(), batch["lengths"].tolist())]
        correct = sum(p == g for path, row in zip(paths, gold) for p, g in zip(path, row))
        metrics = {"acc": Ratio(correct, int(batch["lengths"].sum()))}
        tags = getattr(self, "_entity_tags", None)
        if tags is not None:
            metrics["f1"] = _entity_counts([[tags[i] for i in row] for row in gold],
                                           [[tags[i] for i in path] for path in paths])
        return loss, metrics

    # evaluation -------------------------------------------------------------------------
    def _decode(self, model, dataset, batch_size: int = 256) -> tuple[list[list[int]], list[Tensor]]:
        """Best tags and marginals (T, K) of every sentence of ``dataset``, in order."""
        model.eval()
        paths, marginals = [], []
        for i in range(0, len(dataset), batch_size):
            batch = self.collate([dataset[j] for j in range(i, min(i + batch_size, len(dataset)))])
            with torch.no_grad():
                emissions, _ = model(batch["words"], batch["lengths"], **self._chars(batch))
            paths += model.best_tags(emissions, batch["lengths"])
            p = model.probabilities(emissions, batch["lengths"])
            marginals += [row[:n] for row, n in zip(p, batch["lengths"].tolist())]
        return paths, marginals

    def _score(self, model, fitted: TaggerFitted, sentences: list[Sentence], dataset, out_dir: Path, name: str) -> dict:
        paths, _ = self._decode(model, dataset)
        tags = fitted.tags
        gold = [list(s.tags) for s in sentences]
        predicted = [[tags[i] for i in path] for path in paths]
        vocab = set(fitted.vocab)
        unseen = [[fitted.lookup(w) not in vocab for w in s.words] for s in sentences]
        results = {"n_sentences": len(sentences), "n_tokens": sum(map(len, gold))}
        results.update(_tag_metrics(gold, predicted, unseen, tags))
        if fitted.scheme != "none":
            results["entities"] = _entity_metrics(gold, predicted)
        _confusion_plot(gold, predicted, out_dir / f"confusion_matrix_{name}.png",
                        title=f"{name}: token accuracy {results['accuracy']:.4f}")
        return results

    def evaluate(self, model, prepared: Prepared, split: str, out_dir: Path) -> dict[str, Any]:
        sentences = prepared.extra["sentences"]
        results = {"split": split, **self._score(model, prepared.fitted, sentences[split], getattr(prepared, split),
                                                 out_dir, split)}
        if split != "train" and self.config.data.baselines:
            baselines = prepared.extra.get("baselines")
            if baselines is None:                     # fitted once per run: the perceptron takes minutes on Brown
                baselines = prepared.extra["baselines"] = fit_baselines(sentences["train"], seed=self.config.seed)
            gold = [list(s.tags) for s in sentences[split]]
            for name, tagger in baselines.items():
                predicted = [tagger(list(s.words)) for s in sentences[split]]
                scores = _tag_metrics(gold, predicted, None, prepared.fitted.tags, per_tag=False)
                if prepared.fitted.scheme != "none":
                    scores["entities"] = _entity_metrics(gold, predicted, per_type=False)
                results[f"baseline_{name}"] = scores
        return results

    def evaluate_file(self, model, fitted: TaggerFitted, path: Path, out_dir: Path) -> dict[str, Any]:
        """The metrics of :meth:`evaluate` on a CoNLL-style file."""
        sentences = tagged.read_conll(path)
        self._check_tags(sentences, fitted, str(path))
        dataset = self._items(sentences, fitted, {})
        return {"file": str(path), **self._score(model, fitted, sentences, dataset, out_dir, "file")}

    # prediction -------------------------------------------------------------------------
    @torch.no_grad()
    def predict(self, model, fitted: TaggerFitted, records: list[dict]) -> list[dict]:
        parsed = self.records(records)
        if not parsed:
            return []
        cache: dict = {}
        dataset = ListDataset([(*self._encode(r.tokens, fitted, cache), torch.zeros(len(r.tokens), dtype=torch.long))
                               for r in parsed])
        paths, marginals = self._decode(model, dataset)
        tags = fitted.tags
        out = []
        for r, path, p in zip(parsed, paths, marginals):
            labels = [tags[i] for i in path]
            record = {"tokens": r.tokens, "tags": labels,
                      "confidence": [round(float(p[t, i]), 6) for t, i in enumerate(path)]}
            if fitted.scheme != "none":
                record["spans"] = spans(labels, r.tokens)
            out.append(record)
        return out

    def export_graph(self, g, model, fitted: TaggerFitted) -> dict[str, str]:
        from .export import tagger_graph
        return tagger_graph(g, model, fitted)

    @classmethod
    def summary(cls, split: str, results: dict[str, Any], *, refit: bool = False) -> str:
        line = f"  {split:5s} accuracy {results['accuracy']:.4f}"
        if results.get("unseen_words"):
            line += f" (words unseen in training {results['unseen_accuracy']:.4f})"
        if "entities" in results:
            line += f"; entity F1 {results['entities']['f1']:.4f}"
        for name, label in (("most_frequent", "most frequent tag"), ("perceptron", "NLTK perceptron")):
            baseline = results.get(f"baseline_{name}")
            if baseline:
                line += f"; {label} {baseline['accuracy']:.4f}"
                if "entities" in baseline:
                    line += f" (F1 {baseline['entities']['f1']:.4f})"
        return line


# metrics and baselines ------------------------------------------------------------------------
def _tag_metrics(gold: list[list[str]], predicted: list[list[str]], unseen: list[list[bool]] | None,
                 tags: list[str], *, per_tag: bool = True) -> dict[str, Any]:
    """Token and sentence accuracy, accuracy on unseen words, per-tag precision/recall/F1."""
    flat_gold = [t for s in gold for t in s]
    flat_pred = [t for s in predicted for t in s]
    correct = [g == p for g, p in zip(flat_gold, flat_pred)]
    out = {"accuracy": float(np.mean(correct)), "errors": len(correct) - int(sum(correct)),
           "sentence_accuracy": float(np.mean([g == p for g, p in zip(gold, predicted)]))}
    if unseen is not None:
        flags = [u for s in unseen for u in s]
        hits = [c for c, u in zip(correct, flags) if u]
        out["unseen_words"] = len(hits)
        out["unseen_accuracy"] = float(np.mean(hits)) if hits else float("nan")
    if per_tag:
        from sklearn.metrics import precision_recall_fscore_support
        present = [t for t in tags if t in set(flat_gold) | set(flat_pred)]
        p, r, f, n = precision_recall_fscore_support(flat_gold, flat_pred, labels=present, zero_division=0)
        out["per_tag"] = {t: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(n[i])}
                          for i, t in enumerate(present)}
    return out


def _entity_counts(gold: list[list[str]], predicted: list[list[str]]) -> Ratio:
    """Entity F1 as counts, 2 * right / (predicted + gold), entities read as seqeval reads them:
    summed over batches it is seqeval's F1 of the whole split."""
    from seqeval.metrics.sequence_labeling import get_entities
    right = found = real = 0
    for g, p in zip(gold, predicted):
        truth, guess = set(get_entities(g)), set(get_entities(p))
        right, found, real = right + len(truth & guess), found + len(guess), real + len(truth)
    return Ratio(2 * right, found + real)


def _entity_metrics(gold: list[list[str]], predicted: list[list[str]], *, per_type: bool = True) -> dict[str, Any]:
    """Entity-level precision, recall and F1 (an entity counts when its type and both ends match), by seqeval."""
    from seqeval.metrics import classification_report, f1_score, precision_score, recall_score
    out = {"precision": float(precision_score(gold, predicted, zero_division=0)),
           "recall": float(recall_score(gold, predicted, zero_division=0)),
           "f1": float(f1_score(gold, predicted, zero_division=0))}
    if per_type:
        report = classification_report(gold, predicted, output_dict=True, zero_division=0)
        out["per_type"] = {k: {m: float(v) for m, v in r.items()} for k, r in report.items() if "avg" not in k}
    return out


def _confusion_plot(gold: list[list[str]], predicted: list[list[str]], path: Path, *, title: str,
                    top: int = 20) -> None:
    """Confusions among the ``top`` most frequent gold tags (the rest pooled as "other")."""
    counts = Counter(t for s in gold for t in s)
    shown = [t for t, _ in counts.most_common(top)]
    labels = shown + (["other"] if len(counts) > top else [])
    index = {t: i for i, t in enumerate(shown)}
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for g_row, p_row in zip(gold, predicted):
        for g, p in zip(g_row, p_row):
            matrix[index.get(g, len(labels) - 1), index.get(p, len(labels) - 1)] += 1
    plots.confusion_matrix(matrix, labels, path, title=title)


def fit_baselines(sentences: list[Sentence], *, seed: int = 0) -> dict[str, Any]:
    """Two taggers fitted on ``sentences``, each a function words -> tags: ``most_frequent`` (a
    word's most frequent training tag, ties to the first seen; unseen words the most frequent
    tag) and ``perceptron`` (NLTK's averaged perceptron, 5 passes, shuffled from ``seed``)."""
    by_word: dict[str, Counter] = {}
    for s in sentences:
        for w, t in zip(s.words, s.tags):
            by_word.setdefault(w, Counter())[t] += 1
    overall = Counter(t for s in sentences for t in s.tags).most_common(1)[0][0]
    best = {w: c.most_common(1)[0][0] for w, c in by_word.items()}
    out = {"most_frequent": lambda words: [best.get(w, overall) for w in words]}
    try:
        from nltk.tag.perceptron import PerceptronTagger
    except ImportError:
        raise ImportError("the perceptron baseline needs nltk, which is not installed: pip install 'lstmkit[train]' "
                          "(or set data.baselines: false)") from None
    tagger = PerceptronTagger(load=False)
    state = random.getstate()
    random.seed(seed)                                   # the perceptron shuffles with the global generator
    try:
        tagger.train([list(zip(s.words, s.tags)) for s in sentences], nr_iter=5)
    finally:
        random.setstate(state)
    out["perceptron"] = lambda words: [t for _, t in tagger.tag(words)]
    return out
