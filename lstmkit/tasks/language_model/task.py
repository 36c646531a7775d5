"""Language modelling: the next token of a text from the tokens before it, trained as the
literature does it and scored by perplexity (word level) or bits per character.

Datasets (see :mod:`lstmkit.data.text` for sources, sizes and licences):

- ``ptb``: the Penn Treebank in Mikolov's split (10,000 words, ``<eos>`` after each sentence:
  929,589 / 73,760 / 82,430 tokens), the benchmark of Zaremba et al. 2014 and every LSTM
  language model since;
- ``sotu``: the State of the Union addresses 1790-2021 (10.8 M characters), split by whole
  address, read as characters (``data.level: char``, scored in bits per character) or words;
- ``files``: your own text files, a sentence (or line) per line, words (``data.level: word``)
  or characters (``char``) as tokens; the vocabulary is fitted on the training file.

``data.ngram_baseline: N`` also fits a Witten-Bell n-gram model of orders 1 to N on the same
training stream (:mod:`._ngram`, NLTK's counts and estimator), keeps the order that scores best on
validation, and reports it beside the network on each split, over the same tokens.

Training is truncated backpropagation through time over contiguous streams: the training
stream is cut into ``data.batch_size`` equal parts, read side by side in windows of
``data.bptt`` tokens (``data.variable_bptt``: lengths drawn around it, Merity et al. 2018), the
state carried from one window to the next and detached, so gradients stop at the window's
start. Each split is read as one stream that starts with ``<eos>`` (the boundary before its
first sentence), so every token of the split is predicted exactly once, ``<eos>`` included.
Evaluation reads the whole split as one stream with the state carried (as published), and
reports the mean cross-entropy, the perplexity and the bits per token.

With P training processes (``trainer.devices``, ``trainer.num_nodes``), ``data.batch_size`` is
each process's: the stream is cut into P·batch_size parts, as one process with P times the batch
size would cut it, and each process reads its own contiguous slice of them, carrying its own
streams' state; every process validates on the whole validation stream (one stream cannot be
split without cutting its state), so the validation figures are the single process's.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, Field, field_validator, model_validator
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from ...data import text
from ...models import LanguageModel, block_pattern, detach_state
from ...runs.config import BLOCKS_HELP, CELL_HELP, DataConfig, ModelConfig, OptimConfig, RunConfig, quoted_blocks
from ...runs.batches import world
from ...runs.records import Record
from ...runs.task import Prepared, Task
from .ngram import WittenBellNgrams
from .fitted import VocabularyFitted
from .tensors import LanguageModelTensors
from .stream import TokenStream
from .generate import TextGenerator

__all__ = ["LanguageModelTask", "StreamWindows", "batchify"]

_EVAL_WINDOW = 512                  # tokens per forward pass in evaluation (the state is carried: any size gives
                                    # the same figures)


class LanguageModelData(DataConfig):
    needs = {"files": ("train_file", "valid_file")}
    dataset: Literal["ptb", "sotu", "files"] = Field("ptb", description="ptb (the Penn Treebank, Mikolov's split), "
                                                                        "sotu (State of the Union addresses), or "
                                                                        "'files' (your own text)")
    level: Literal["word", "char"] = Field("word", description="datasets 'sotu' and 'files': tokens are words "
                                                               "(split at whitespace) or characters")
    train_file: Path | None = Field(None, description="dataset 'files': training text, a sentence or line per line")
    valid_file: Path | None = Field(None, description="dataset 'files': validation text, same format")
    test_file: Path | None = Field(None, description="dataset 'files': test text, same format (null: no test split)")
    min_count: int = Field(1, gt=0, description="datasets 'sotu' and 'files': training tokens seen fewer times "
                                                "become <unk>")
    max_vocab: int | None = Field(None, gt=2, description="datasets 'sotu' and 'files': keep the most frequent "
                                                          "tokens only (null: all)")
    batch_size: int = Field(20, gt=0, description="streams read side by side in training")
    bptt: int = Field(35, gt=0, description="tokens per window of truncated backpropagation through time")
    variable_bptt: bool = Field(False, description="draw each window's length around bptt (N(bptt, 5), half of "
                                                   "them around bptt/2; Merity et al. 2018)")
    ngram_baseline: int | None = Field(None, ge=1, le=12, description="also fit Witten-Bell n-gram models of orders "
                                                                      "1 to this on the training stream and report "
                                                                      "the one best on validation beside the network "
                                                                      "(null: none)")


class LanguageModelModelConfig(ModelConfig):
    cell: str = Field("lstm", description=CELL_HELP)
    hidden_size: int = Field(200, gt=0, description="hidden units of every layer")
    embedding_size: int | None = Field(None, gt=0, description="token embedding size (null: hidden_size)")
    num_layers: int = Field(2, gt=0, description="stacked recurrent layers")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="dropout on the non-recurrent connections: the "
                                                            "embeddings, between layers, before the softmax")
    locked_dropout: bool = Field(False, description="one dropout mask per sequence for all its steps "
                                                    "(variational dropout) instead of a new one at every step")
    embedding_dropout: float = Field(0.0, ge=0.0, lt=1.0, description="drop whole words from the embedding table")
    weight_drop: float = Field(0.0, ge=0.0, lt=1.0, description="DropConnect on the recurrent weights, one mask per "
                                                                "forward pass (AWD-LSTM)")
    ar: float = Field(0.0, ge=0.0, description="activation regularisation: weight of the mean square of the last "
                                               "layer's outputs in the training loss")
    tar: float = Field(0.0, ge=0.0, description="temporal activation regularisation: weight of the mean square of "
                                                "their change from step to step")
    tie_weights: bool = Field(False, description="share the embedding table with the output layer (needs "
                                                 "embedding_size == hidden_size)")
    init_range: float | None = Field(0.1, gt=0.0, description="every weight uniform in +-init_range (null: each "
                                                               "layer's own initialisation)")
    blocks: str | None = Field(None, description=BLOCKS_HELP)
    _quoted_blocks = field_validator("blocks", mode="before")(quoted_blocks)

    @model_validator(mode="after")
    def _forward_only(self):
        if self.bidirectional or self.residual or self.ensemble != 1:
            raise ValueError("a language model reads forward only, one model without residual connections: "
                             "expected bidirectional false, residual false, ensemble 1")
        if self.tie_weights and (self.embedding_size or self.hidden_size) != self.hidden_size:
            raise ValueError(f"tie_weights: needs embedding_size == hidden_size ({self.hidden_size}), "
                             f"got {self.embedding_size}")
        if self.blocks is not None:
            block_pattern(self.blocks, self.num_layers)          # a clear error now rather than at build time
        return self


class LanguageModelOptim(OptimConfig):
    optimizer: Literal["adam", "adamw", "sgd", "rmsprop"] = Field("sgd", description="optimiser")
    lr: float = Field(20.0, gt=0.0, description="learning rate (of the mean loss per token)")
    momentum: float = Field(0.0, ge=0.0, lt=1.0, description="momentum (sgd, rmsprop)")
    schedule: Literal["none", "cosine", "step", "decay", "plateau"] = Field(
        "decay", description="learning-rate schedule: decay (x gamma every epoch after decay_after), none, cosine, "
                             "step, plateau")
    clip_grad_norm: float | None = Field(0.25, gt=0.0, description="clip the gradient norm (null: no clipping)")
    epochs: int = Field(13, gt=0, description="maximum number of epochs")


class LanguageModelConfig(RunConfig):
    task: Literal["language_model"] = Field("language_model", description="language model (the next token)")
    data: LanguageModelData = Field(default_factory=LanguageModelData)
    model: LanguageModelModelConfig = Field(default_factory=LanguageModelModelConfig)
    optim: LanguageModelOptim = Field(default_factory=LanguageModelOptim)


class TextInput(Record):
    EXAMPLE = '{"text": "words ..."} or a JSON string'
    text: str = Field(min_length=1, description="the text to score")

    @model_validator(mode="before")
    @classmethod
    def _plain(cls, value):
        return {"text": value} if isinstance(value, str) else value


class TextScore(BaseModel):
    tokens: list[str] = Field(description="the text's tokens as the model reads them (<unk> for unknown ones), "
                                          "then <eos>")
    log_probs: list[float] = Field(description="natural log-probability of each token given those before it")
    perplexity: float = Field(description="exp(mean negative log-probability)")
    unknown: int = Field(description="how many tokens were not in the vocabulary")


# streams and windows ------------------------------------------------------------------------------
def batchify(ids: Tensor, streams: int) -> Tensor:
    """(N,) -> (streams, N // streams): the stream cut into ``streams`` contiguous parts read side
    by side; the last N mod streams tokens (fewer than ``streams``) are left out."""
    n = ids.numel() // streams
    if n < 2:
        raise ValueError(f"data.batch_size: {streams} streams need at least {2 * streams} tokens, "
                         f"the split has {ids.numel()}")
    return ids[:n * streams].view(streams, n)                                 # (B, N / B)


class StreamWindows(Dataset):
    """Windows of a batchified stream (B, N): item ``(start, length)`` is the inputs
    ``data[:, start:start + length]`` and the targets one token later."""

    def __init__(self, data: Tensor):
        self.data = data

    @property
    def predictions(self) -> int:
        return max(0, self.data.shape[1] - 1)

    def __len__(self) -> int:
        return self.predictions

    def __getitem__(self, window: tuple[int, int]) -> dict[str, Tensor]:
        start, length = window
        return {"x": self.data[:, start:start + length], "y": self.data[:, start + 1:start + 1 + length],
                "first": torch.tensor(start == 0)}


def _own_streams(items: list[dict[str, Tensor]]) -> dict[str, Tensor]:
    """A training window's rows for this process: its contiguous slice of the streams."""
    window = items[0]
    rank, processes = world()
    if processes == 1:
        return window
    streams = window["x"].shape[0] // processes
    rows = slice(rank * streams, (rank + 1) * streams)
    return {"x": window["x"][rows], "y": window["y"][rows], "first": window["first"]}


class WindowSampler:
    """The windows of one epoch, in order: ``bptt`` tokens each (the last shorter), or with
    ``variable`` lengths drawn as AWD-LSTM does, from ``seed`` and the epoch alone (a resumed run
    draws the same windows)."""

    def __init__(self, predictions: int, bptt: int, *, variable: bool = False, seed: int = 0):
        self.predictions, self.bptt, self.variable, self.seed = predictions, bptt, variable, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def windows(self) -> list[tuple[int, int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        out, start = [], 0
        while start < self.predictions:
            length = self.bptt
            if self.variable:
                base = self.bptt if rng.random() < 0.95 else self.bptt / 2
                length = max(5, int(rng.normal(base, 5)))
            length = min(length, self.predictions - start)
            out.append((start, length))
            start += length
        return out

    def __iter__(self):
        return iter([[w] for w in self.windows()])

    def __len__(self) -> int:
        return len(self.windows())


class LanguageModelTask(Task):
    """Tokens -> the next token. The best checkpoint has the lowest validation loss (the
    log-perplexity); see the module docstring for the data and the training."""

    name = "language_model"
    config_class = LanguageModelConfig
    predict_input = TextInput
    predict_output = TextScore
    fitted_class = VocabularyFitted
    tensors = LanguageModelTensors
    stream = TokenStream
    generator = TextGenerator
    formats = ("data files and evaluate --data: UTF-8 text, a sentence (or line) per line, tokens split at "
               "whitespace (data.level: word) or characters (char); predict: JSON lines {\"text\": \"...\"} "
               "(or a JSON string), scored token by token")

    def __init__(self, config):
        super().__init__(config)
        self._carried: dict[str, Any] = {}      # the state at the end of the last window, training and evaluation

    # data -------------------------------------------------------------------------------
    def _level(self) -> str:
        return "word" if self.config.data.dataset == "ptb" else self.config.data.level

    def _splits(self) -> dict[str, list[list[str]]]:
        data = self.config.data
        if data.dataset == "ptb":
            return text.load_ptb()
        characters = data.level == "char"
        if data.dataset == "sotu":
            return {split: text.tokens(lines, characters=characters) for split, lines in text.load_sotu().items()}
        return {"train": text.read_text(data.train_file, "data file", characters=characters),
                "valid": text.read_text(data.valid_file, "data file", characters=characters),
                "test": text.read_text(data.test_file, "data file", characters=characters)
                if data.test_file is not None else []}

    def _fit(self, train: list[list[str]]) -> VocabularyFitted:
        data = self.config.data
        counts = Counter(text.stream(train))
        kept = sorted((t for t, c in counts.items() if c >= data.min_count and t not in (text.UNK, text.EOS)),
                      key=lambda t: (-counts[t], t))
        if data.max_vocab is not None:
            kept = kept[:data.max_vocab - 2]
        return VocabularyFitted(vocab=[text.EOS, text.UNK, *kept], level=self._level())

    @staticmethod
    def _split_ids(sentences: list[list[str]], fitted: VocabularyFitted) -> Tensor:
        """A split as ids, ``<eos>`` first: every one of its tokens is a target once."""
        return fitted.ids([text.EOS, *text.stream(sentences)])

    def prepare(self, fitted: VocabularyFitted | None = None) -> Prepared:
        splits = self._splits()
        fitted = fitted or self._fit(splits["train"])
        ids = {split: self._split_ids(s, fitted) if s else torch.zeros(0, dtype=torch.long)
               for split, s in splits.items()}
        train = StreamWindows(batchify(ids["train"], self._streams()))
        valid, test = (StreamWindows(ids[k][None]) for k in ("valid", "test"))
        return Prepared(train=train, valid=valid, test=test, fitted=fitted, extra={"ids": ids})

    def refit_data(self, prepared: Prepared) -> Dataset:
        both = torch.cat([prepared.extra["ids"]["train"], prepared.extra["ids"]["valid"][1:]])
        return StreamWindows(batchify(both, self._streams()))

    def _streams(self) -> int:
        """Training streams over every process: each process reads ``data.batch_size`` of them."""
        t = self.config.trainer
        return self.config.data.batch_size * t.devices * t.num_nodes

    def loader(self, dataset: Dataset, *, shuffle: bool, batch_size: int, seed: int) -> DataLoader:
        """The windows in stream order (never shuffled: the state runs on from one to the next)."""
        if not shuffle:                                         # evaluation: long windows, one stream
            sampler = WindowSampler(dataset.predictions, _EVAL_WINDOW)
            return DataLoader(dataset, batch_sampler=sampler, collate_fn=lambda items: items[0])
        data = self.config.data
        sampler = WindowSampler(dataset.predictions, data.bptt, variable=data.variable_bptt, seed=seed)
        return DataLoader(dataset, batch_sampler=sampler, collate_fn=_own_streams)

    def batch_size(self, batch: dict[str, Tensor]) -> int:
        return batch["y"].numel()                               # the epoch's loss: a mean over tokens

    # model ------------------------------------------------------------------------------
    def build_model(self, fitted: VocabularyFitted) -> LanguageModel:
        m = self.config.model
        return LanguageModel(m.cell, len(fitted.vocab), m.hidden_size, embedding_size=m.embedding_size,
                             num_layers=m.num_layers, dropout=m.dropout, locked_dropout=m.locked_dropout,
                             embedding_dropout=m.embedding_dropout, weight_drop=m.weight_drop,
                             tie_weights=m.tie_weights, init_range=m.init_range, ar=m.ar, tar=m.tar,
                             blocks=m.blocks, **m.cell_options)

    def batch_loss(self, model, batch):
        key = "train" if model.training else "eval"
        state = None if bool(batch["first"]) else self._carried.get(key)
        loss, state = model.loss(batch["x"], batch["y"], state)
        self._carried[key] = detach_state(state)               # truncated BPTT: the next window starts here
        return loss, {}

    # evaluation -------------------------------------------------------------------------
    @torch.no_grad()
    def log_probs(self, model, ids: Tensor) -> Tensor:
        """log p(ids[t] | ids[:t]) for t >= 1, (N - 1,), reading ``ids`` (N,) as one stream."""
        model.eval()
        out, state = [], None
        for start in range(0, ids.numel() - 1, _EVAL_WINDOW):
            x = ids[start:start + _EVAL_WINDOW][None]                                      # (1, W)
            y = ids[start + 1:start + 1 + _EVAL_WINDOW]
            x = x[:, :y.numel()]
            logits, state, _ = model(x, state)                                            # (1, W, V)
            out.append(-F.cross_entropy(logits[0].double(), y, reduction="none"))
        return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)

    @staticmethod
    def _figures(loss: float, fitted: VocabularyFitted) -> dict[str, float]:
        """A mean cross-entropy in nats as loss, perplexity, bits per token (and per character)."""
        figures = {"loss": loss, "perplexity": math.exp(loss), "bits_per_token": loss / math.log(2)}
        if fitted.level == "char":
            figures["bits_per_character"] = figures["bits_per_token"]
        return figures

    def _score(self, model, ids: Tensor, fitted: VocabularyFitted) -> dict[str, Any]:
        log_probs = self.log_probs(model, ids)
        unk = fitted.index[text.UNK]
        return {"tokens": int(log_probs.numel()), **self._figures(float(-log_probs.mean()), fitted),
                "unknown_tokens": int((ids[1:] == unk).sum())}

    def evaluate(self, model, prepared: Prepared, split: str, out_dir: Path) -> dict[str, Any]:
        results = {"split": split, **self._score(model, prepared.extra["ids"][split], prepared.fitted)}
        if split != "train" and self.config.data.ngram_baseline:
            results["baseline_ngram"] = self._ngram_baseline(prepared, split)
        return results

    def _ngram_baseline(self, prepared: Prepared, split: str) -> dict[str, Any]:
        """The Witten-Bell n-gram's figures on ``split``, its order chosen on validation; the model
        is fitted once per run (minutes on a corpus of millions of tokens)."""
        ids, cache = prepared.extra["ids"], prepared.extra.setdefault("ngram", {})
        if "model" not in cache:
            cache["model"] = WittenBellNgrams(ids["train"].tolist(), self.config.data.ngram_baseline,
                                              len(prepared.fitted.vocab))
            cache["valid"] = cache["model"].bits(ids["valid"].tolist())
        bits = cache["valid"] if split == "valid" else cache["model"].bits(ids[split].tolist())
        order = int(np.argmin(cache["valid"])) + 1
        tokens = ids[split].numel() - 1
        return {"model": f"Witten-Bell {order}-gram (NLTK counts and estimator)", "order": order,
                **self._figures(bits[order - 1] / tokens * math.log(2), prepared.fitted),
                "valid_bits_per_token_by_order": [round(b / (ids["valid"].numel() - 1), 4) for b in cache["valid"]]}

    def evaluate_file(self, model, fitted: VocabularyFitted, path: Path, out_dir: Path) -> dict[str, Any]:
        sentences = text.read_text(path, characters=fitted.level == "char")
        return {"file": str(path), **self._score(model, self._split_ids(sentences, fitted), fitted)}

    # prediction -------------------------------------------------------------------------

    @torch.no_grad()
    def predict(self, model, fitted: VocabularyFitted, records: list[dict]) -> list[dict]:
        out = []
        known = fitted.index
        for record in self.records(records):
            tokens = [*fitted.tokenize(record.text), text.EOS]
            ids = fitted.ids([text.EOS, *tokens])
            log_probs = self.log_probs(model, ids).tolist()
            out.append({"tokens": [t if t in known else text.UNK for t in tokens],
                        "log_probs": [round(p, 6) for p in log_probs],
                        "perplexity": math.exp(-sum(log_probs) / len(log_probs)),
                        "unknown": sum(t not in known for t in tokens)})
        return out

    def export_graph(self, g, model, fitted: VocabularyFitted) -> dict[str, str]:
        from .export import language_model_graph
        return language_model_graph(g, model, fitted)

    @classmethod
    def summary(cls, split: str, results: dict[str, Any], *, refit: bool = False) -> str:
        line = f"  {split:5s} perplexity {results['perplexity']:.2f} over {results['tokens']:,} tokens"
        if "bits_per_character" in results:
            line += f"; {results['bits_per_character']:.4f} bits per character"
        baseline = results.get("baseline_ngram")
        if baseline:
            line += f"; Witten-Bell {baseline['order']}-gram: perplexity {baseline['perplexity']:.2f}"
            if "bits_per_character" in baseline:
                line += f", {baseline['bits_per_character']:.4f} bits per character"
        return line
