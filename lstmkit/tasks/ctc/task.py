"""Recognition with CTC (Graves et al. 2006): frames in, an unsegmented label sequence out.

Datasets:

- ``digits``: spoken digit strings synthesised with espeak-ng (:mod:`lstmkit.data.speech`;
  synthetic voices, test voices never heard in training), read as log-mel features. Evaluated
  beside PocketSphinx (Carnegie Mellon's recogniser, its US-English acoustic model restricted to
  a digits grammar) on the same test audio.
- ``cmudict``: grapheme to phoneme (Rao et al. 2015): a word's letters, one-hot, to its
  phonemes, on the fixed split of :mod:`lstmkit.data.cmudict`; ``model.upsample`` lets a word
  have more phonemes than letters.
- ``files``: your own features and transcripts, JSON lines ``{"x": [[features...] per frame],
  "labels": "space separated labels"}``.

Metrics: the label error rate (jiwer: edit distance over reference labels; for digit strings it
is the word error rate, each digit a word) and the string error rate (sequences not recognised
exactly), for best-path and prefix-beam decoding. For grapheme to phoneme, as the literature
computes them over a word's several pronunciations: the word error rate (the top hypothesis
equal to none of them) and the phoneme error rate (edits to the closest one over its length).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, Field, model_validator
from torch import Tensor, nn

from ...data.readers import read_numbered_jsonl
from ...models import CTCRecognizer
from ...models.ctc import min_frames
from ...models.ctc_decoding import best_path, prefix_beam_search
from ...runs import plots
from ...runs.config import CELL_HELP, DataConfig, DecodeConfig, ModelConfig, OptimConfig, RunConfig, rnn_options
from ...runs.batches import ListDataset, pad_sequences
from ...runs.records import Number, Record, excerpt, frames
from ...runs.task import Prepared, Task
from ..sequence_metrics import label_errors, pronunciation_errors
from .fitted import RecognizerFitted, stack_frames
from .stream import SpeechStream
from .tensors import RecognizerTensors

__all__ = ["CTCTask"]


class CTCData(DataConfig):
    needs = {"files": ("train_file",)}
    dataset: Literal["digits", "cmudict", "files"] = Field(
        "digits", description="digits: spoken digit strings synthesised with espeak-ng; cmudict: grapheme to "
        "phoneme (letters in, phonemes out); files: your own features and transcripts")
    stress: bool = Field(False, description="dataset cmudict: keep the vowels' stress digits (AH0, AH1...)")
    limit: int | None = Field(None, gt=0, description="dataset cmudict: only the first N words of each split, in "
                              "the split's hash order (quick trials; null: every word)")
    train_size: int = Field(8000, gt=0, description="dataset digits: training utterances")
    valid_size: int = Field(800, gt=0, description="dataset digits: validation utterances")
    test_size: int = Field(1000, gt=0, description="dataset digits: test utterances")
    max_digits: int = Field(7, ge=1, description="dataset digits: the longest string")
    snrs: list[float | None] = Field([None, 20.0, 10.0, 5.0], min_length=1,
                                     description="dataset digits: signal-to-noise ratios (dB) drawn from; null: clean")
    valid_voices: int = Field(10, gt=0, description="dataset digits: voice variants heard only in validation")
    test_voices: int = Field(10, gt=0, description="dataset digits: voice variants heard only in test")
    stack: int = Field(2, ge=1, description="frames concatenated into one step (fewer, wider steps)")
    train_file: Path | None = Field(None, description="dataset files: JSON lines {\"x\": [[f...] per frame], "
                                    "\"labels\": \"l1 l2 ...\"}")
    valid_file: Path | None = Field(None, description="dataset files: validation data (null: valid_fraction "
                                    "of the training file)")
    test_file: Path | None = Field(None, description="dataset files: test data (null: no test split)")
    valid_fraction: float = Field(0.1, gt=0.0, lt=1.0, description="dataset files without valid_file: share held out")
    bucket_by_length: bool = Field(True, description="batch sequences of similar length together")
    baselines: bool = Field(True, description="dataset digits: evaluate PocketSphinx on the test audio too")


class CTCModelConfig(ModelConfig):
    cell: str = Field("lstm", description=CELL_HELP)
    hidden_size: int = Field(128, gt=0, description="hidden units per direction")
    num_layers: int = Field(2, gt=0, description="stacked recurrent layers")
    bidirectional: bool = Field(True, description="read each input both ways (false: a streaming recogniser)")
    dropout: float = Field(0.2, ge=0.0, lt=1.0, description="dropout between stacked layers")
    input_noise: float = Field(0.0, ge=0.0, description="in training, Gaussian noise of this standard deviation "
                               "added to the standardised features")
    upsample: int = Field(1, ge=1, description="output frames per input step (more, where outputs can outnumber "
                          "inputs)")


class CTCDecode(DecodeConfig):
    beam: int = Field(8, ge=1, description="prefix beam search: prefixes kept (evaluate reports best path too)")
    prune: float = Field(1e-3, ge=0.0, lt=1.0, description="labels less probable than this at a frame are not "
                         "tried (0: every label)")


class CTCOptim(OptimConfig):
    epochs: int = Field(20, gt=0, description="maximum number of epochs")


class CTCConfig(RunConfig):
    task: Literal["ctc"] = Field("ctc", description="recognition with CTC: frames in, a label sequence out")
    data: CTCData = Field(default_factory=CTCData)
    model: CTCModelConfig = Field(default_factory=CTCModelConfig)
    optim: CTCOptim = Field(default_factory=CTCOptim)
    decode: CTCDecode = Field(default_factory=CTCDecode)


class CTCInput(Record):
    EXAMPLE = ('{"x": [[features...] per frame]}, {"audio": "file.wav"} or {"audio_base64": "..."} (digits) or '
               '{"word": "..."} (cmudict)')
    x: list[list[Number]] | None = Field(None, description="the input: one list of features per frame")
    audio: str | None = Field(None, description="dataset digits: a mono audio file (other rates are resampled); "
                                                "the command line only, the server reads no files")
    audio_base64: str | None = Field(None, description="dataset digits: the bytes of a mono audio file (WAV, FLAC, "
                                                       "OGG), base64-encoded")
    word: str | None = Field(None, min_length=1, description="dataset cmudict: a word to pronounce")

    @model_validator(mode="after")
    def _one(self):
        if sum(value is not None for value in (self.x, self.audio, self.audio_base64, self.word)) != 1:
            raise ValueError('expected exactly one of "x", "audio", "audio_base64" and "word"')
        return self


class NBestEntry(BaseModel):
    """One hypothesis of an n-best list, as ``predict`` writes it (``lstmkit.models.Hypothesis``
    is the decoder's own)."""

    text: str
    score: float


class CTCOutput(BaseModel):
    text: str = Field(description="the best label sequence, joined")
    labels: list[str] = Field(description="its labels")
    score: float = Field(description="its log-probability summed over the alignments the beam kept")
    n_best: list[NBestEntry] | None = Field(None, description="decode.n_best > 1: the best hypotheses, best first")
    note: str | None = Field(None, description="what was done to the input (audio resampled, letters unknown)")


def _one_hot(word: str, letters: str) -> tuple[np.ndarray, list[str]]:
    """(len(word), letters) one-hot rows of a lower-cased word, and the characters outside
    ``letters`` (read as all-zero rows)."""
    word = word.lower()
    index = {c: k for k, c in enumerate(letters)}
    x = np.zeros((len(word), len(letters)))
    for t, c in enumerate(word):
        if c in index:
            x[t, index[c]] = 1.0
    return x, sorted({c for c in word if c not in index})


class CTCTask(Task):
    """Frames (B, T, F) -> label sequences, trained with CTC. Features are stacked ``data.stack``
    frames at a time and standardised with the training split's mean and deviation."""

    name = "ctc"
    config_class = CTCConfig
    predict_input = CTCInput
    predict_output = CTCOutput
    fitted_class = RecognizerFitted
    tensors = RecognizerTensors
    stream = SpeechStream
    server_refuses = {"audio": 'a file on the server, which the server does not read: send the file\'s bytes as '
                               '"audio_base64"'}
    metric = "ser"           # validation only: decoding every training batch would cost more than the step
    formats = ('dataset files, evaluate --data: JSON lines {"x": [[features...] per frame], "labels": "l1 l2 ..."}; '
               'predict: {"x": [[features...]]}, {"audio": "file.wav"} for a digits run, {"word": "..."} for a cmudict run')

    # data -------------------------------------------------------------------------------
    def _recipe(self):
        from ...data.speech import DigitsRecipe
        d = self.config.data
        return DigitsRecipe(train=d.train_size, valid=d.valid_size, test=d.test_size, max_digits=d.max_digits,
                            snrs=tuple(d.snrs), valid_voices=d.valid_voices, test_voices=d.test_voices,
                            seed=d.split_seed)

    def _read_file(self, path: Path) -> tuple[list[np.ndarray], list[list[str]]]:
        xs, labels, width = [], [], None
        for line, r in read_numbered_jsonl(path, "data file"):
            where = f"data file {str(path)!r} line {line}"
            if not isinstance(r, dict) or not isinstance(r.get("x"), list) or not isinstance(r.get("labels"), str):
                raise ValueError(f'{where}: expected {{"x": [[features...] per frame], "labels": "l1 l2 ..."}}, '
                                 f"got {excerpt(r, 80)}")
            x = frames(r["x"], f"{where} x", width=width)
            if not r["labels"].split():
                raise ValueError(f'{where}: expected at least one label in "labels", got {r["labels"]!r}')
            width = x.shape[1]
            xs.append(x)
            labels.append(r["labels"].split())
        return xs, labels

    def _splits(self) -> dict[str, tuple[list[np.ndarray], list[list[str]]]]:
        d = self.config.data
        if d.dataset == "digits":
            from ...data.speech import load_digits
            corpus = load_digits(self._recipe())
            return {split: ([stack_frames(x, d.stack) for x in xs], [list(u.digits) for u in us])
                    for split, (xs, us) in corpus.items()}
        if d.dataset == "cmudict":
            return self._cmudict()
        train = self._read_file(d.train_file)
        if d.valid_file is not None:
            valid = self._read_file(d.valid_file)
        else:
            order = np.random.default_rng(d.split_seed).permutation(len(train[0]))
            held = set(order[:max(1, int(round(d.valid_fraction * len(order))))].tolist())
            valid = ([x for i, x in enumerate(train[0]) if i in held], [y for i, y in enumerate(train[1]) if i in held])
            train = ([x for i, x in enumerate(train[0]) if i not in held],
                     [y for i, y in enumerate(train[1]) if i not in held])
        test = self._read_file(d.test_file) if d.test_file is not None else ([], [])
        return {split: ([stack_frames(x, d.stack) for x in xs], ys) for split, (xs, ys) in
                (("train", train), ("valid", valid), ("test", test))}

    def _cmudict(self) -> dict[str, tuple[list[np.ndarray], list[list[str]], list[tuple[str, tuple]]]]:
        """Per split: the inputs and phonemes of every (word, pronunciation) pair the model can
        emit (a few abbreviations, "aol" /AH M ER IH K AH .../, have more phonemes than even the
        upsampled letters allow: left out of the loss), and every word with its pronunciations
        (all of them decoded and scored)."""
        from ...data.cmudict import LETTERS, cmudict_split, load_cmudict
        d, upsample = self.config.data, self.config.model.upsample
        lexicon, out = load_cmudict(d.stress), {}
        for split, words in cmudict_split(ordered=True).items():
            entries = [(w, lexicon[w]) for w in words[:d.limit]]
            pairs = [(w, p) for w, prons in entries for p in prons
                     if min_frames(p) <= -(-len(w) // d.stack) * upsample]             # the stacked steps, upsampled
            out[split] = ([stack_frames(_one_hot(w, LETTERS)[0], d.stack) for w, _ in pairs], [list(p) for _, p in pairs],
                          entries)
        return out

    def _items(self, xs: list[np.ndarray], ys: list[list[str]], fitted: RecognizerFitted, what: str) -> ListDataset:
        index = {label: k + 1 for k, label in enumerate(fitted.labels)}
        items = []
        for i, (x, y) in enumerate(zip(xs, ys)):
            unknown = sorted(set(y) - set(index))
            if unknown:
                raise ValueError(f"{what} sequence {i + 1}: labels {unknown[:10]} do not occur in the training "
                                 f"transcripts (labels: {fitted.labels[:40]})")
            if x.shape[1] != fitted.features:
                raise ValueError(f"{what} sequence {i + 1}: expected {fitted.features} features per step, "
                                 f"got {x.shape[1]}")
            needed = min_frames(y)
            if len(x) * self.config.model.upsample < needed:
                raise ValueError(f"{what} sequence {i + 1}: {len(x)} steps (after stacking {fitted.stack} frames "
                                 f"each; model.upsample {self.config.model.upsample}) cannot emit its {len(y)} labels "
                                 f"under CTC, which needs {needed} (one per label, a blank between repeats): lower "
                                 "data.stack or raise model.upsample")
            items.append((fitted.scaled(x, f"{what} sequence {i + 1}"),
                          torch.tensor([index[label] for label in y], dtype=torch.long)))
        return ListDataset(items)

    def prepare(self, fitted: RecognizerFitted | None = None) -> Prepared:
        splits = self._splits()
        if fitted is None:
            steps = np.concatenate(splits["train"][0])
            labels = sorted({label for y in splits["train"][1] for label in y})
            d = self.config.data
            fitted = RecognizerFitted(labels=labels, features=int(steps.shape[1]), mean=steps.mean(0).tolist(),
                                      std=np.maximum(steps.std(0), 1e-8).tolist(), stack=d.stack,
                                      join="" if d.dataset == "digits" else " ", dataset=d.dataset)
            if d.dataset == "cmudict":
                from ...data.cmudict import LETTERS
                fitted.letters, fitted.stress = LETTERS, d.stress
            if d.dataset == "digits":
                fitted.recipe = asdict(self._recipe())
        sets = {split: self._items(xs, ys, fitted, f"{split} split") for split, (xs, ys, *_) in splits.items()}
        return Prepared(train=sets["train"], valid=sets["valid"], test=sets["test"], fitted=fitted,
                        extra={"splits": splits})

    def lengths(self, dataset: ListDataset) -> list[int] | None:
        return dataset.lengths() if self.config.data.bucket_by_length else None

    def collate(self, items: list) -> dict[str, Tensor]:
        x, lengths = pad_sequences([x for x, _ in items])
        targets, target_lengths = pad_sequences([y for _, y in items])
        return {"x": x, "lengths": lengths, "targets": targets, "target_lengths": target_lengths}

    # model ------------------------------------------------------------------------------
    def build_model(self, fitted: RecognizerFitted) -> nn.Module:
        m = self.config.model
        options = rnn_options(m)
        return CTCRecognizer(m.cell, fitted.features, m.hidden_size, len(fitted.labels), upsample=m.upsample,
                             input_noise=m.input_noise, **options)

    def batch_loss(self, model, batch):
        log_probs, loss = model(batch["x"], batch["lengths"], targets=batch["targets"],
                                target_lengths=batch["target_lengths"])
        if model.training:                      # decoding every training batch would cost more than the step
            return loss, {}
        labels, _ = best_path(log_probs, model.output_lengths(batch["lengths"]))
        truth = [tuple(t[:n].tolist()) for t, n in zip(batch["targets"], batch["target_lengths"].tolist())]
        return loss, {"ser": torch.tensor(float(np.mean([h != t for h, t in zip(labels, truth)])))}

    # decoding and metrics ---------------------------------------------------------------
    @torch.no_grad()
    def _outputs(self, model, xs: list[Tensor], batch_size: int = 64) -> list[Tensor]:
        """Each input's log-probabilities (T', L + 1)."""
        model.eval()
        out = []
        for i in range(0, len(xs), batch_size):
            x, lengths = pad_sequences(xs[i:i + batch_size])
            log_probs, _ = model(x, lengths)
            out += [lp[:n] for lp, n in zip(log_probs, model.output_lengths(lengths).tolist())]
        return out

    @torch.no_grad()
    def _loss(self, model, dataset: ListDataset, batch_size: int = 64) -> float:
        """The mean CTC loss over the sequences of ``dataset``."""
        model.eval()
        total = 0.0
        for i in range(0, len(dataset), batch_size):
            batch = self.collate(dataset.items[i:i + batch_size])
            _, loss = model(batch["x"], batch["lengths"], targets=batch["targets"],
                            target_lengths=batch["target_lengths"])
            total += float(loss) * len(batch["x"])
        return total / max(1, len(dataset))

    def _decode(self, log_probs: list[Tensor]) -> dict[str, list[tuple[int, ...]]]:
        d = self.config.decode
        greedy, beam = [], []
        for lp in log_probs:
            greedy.append(best_path(lp[None])[0][0])
            beam.append(prefix_beam_search(lp[None], beam=d.beam, prune=d.prune)[0][0][0])
        return {"greedy": greedy, f"beam{d.beam}": beam}

    def evaluate(self, model, prepared: Prepared, split: str, out_dir: Path) -> dict[str, Any]:
        dataset, fitted = getattr(prepared, split), prepared.fitted
        results: dict[str, Any] = {"split": split, "n": len(dataset), "loss": self._loss(model, dataset)}
        if fitted.dataset == "cmudict":          # every word of the split, scored against all its pronunciations
            entries = prepared.extra["splits"][split][2]
            xs = [fitted.scaled(stack_frames(_one_hot(w, fitted.letters)[0], fitted.stack), w) for w, _ in entries]
            truth = [[list(p) for p in prons] for _, prons in entries]
            results["left_out_of_the_loss"] = sum(len(prons) for _, prons in entries) - len(dataset)
        else:
            xs = [x for x, _ in dataset.items]
            truth = [[fitted.labels[k - 1] for k in y.tolist()] for _, y in dataset.items]
        log_probs = self._outputs(model, xs)
        decoded = {method: [[fitted.labels[k - 1] for k in h] for h in labels]
                   for method, labels in self._decode(log_probs).items()}
        for method, hypotheses in decoded.items():
            results[method] = (pronunciation_errors(truth, hypotheses) if fitted.dataset == "cmudict"
                               else label_errors(truth, hypotheses))
        join, best = fitted.join, decoded[f"beam{self.config.decode.beam}"]
        first = [t[0] for t in truth] if fitted.dataset == "cmudict" else truth
        if log_probs:
            plots.ctc_posteriors([(log_probs[i].numpy(), join.join(first[i]), join.join(best[i]))
                                  for i in range(min(3, len(log_probs)))], fitted.labels, out_dir / f"ctc_{split}.png")
        if fitted.dataset == "digits":
            results.update(self._digits_baseline(fitted, split, truth, best))
        return results

    def _digits_baseline(self, fitted: RecognizerFitted, split: str, truth: list[list[str]], best: list[list[str]]) -> dict:
        """PocketSphinx on the test audio, and each recogniser's label errors by noise level."""
        from ...data.speech import DigitsRecipe
        recipe = DigitsRecipe.from_dict(fitted.recipe)
        utterances = recipe.utterances()[split]
        results, hypotheses = {}, {"lstmkit": best}
        if self.config.data.baselines and split == "test":
            from .pocketsphinx import pocketsphinx_digits
            hypotheses["pocketsphinx"] = [list(h) for h in pocketsphinx_digits(utterances)]
            results["baseline_pocketsphinx"] = label_errors(truth, hypotheses["pocketsphinx"])
        by_snr = {}
        for snr in sorted({u.snr for u in utterances}, key=lambda v: -float("inf") if v is None else -v):
            chosen = [i for i, u in enumerate(utterances) if u.snr == snr]
            by_snr["clean" if snr is None else f"{snr:g} dB"] = {
                name: label_errors([truth[i] for i in chosen], [h[i] for i in chosen])["ler"]
                for name, h in hypotheses.items()}
        results["label_errors_by_snr"] = by_snr
        return results

    def evaluate_file(self, model, fitted: RecognizerFitted, path: Path, out_dir: Path) -> dict[str, Any]:
        xs, ys = self._read_file(path)
        dataset = self._items([stack_frames(x, fitted.stack) for x in xs], ys, fitted, f"data file {str(path)!r}")
        results: dict[str, Any] = {"file": str(path), "n": len(dataset), "loss": self._loss(model, dataset)}
        for method, labels in self._decode(self._outputs(model, [x for x, _ in dataset.items])).items():
            results[method] = label_errors(ys, [[fitted.labels[k - 1] for k in h] for h in labels])
        return results

    # prediction -------------------------------------------------------------------------
    def _input(self, fitted: RecognizerFitted, index: int, record: CTCInput) -> tuple[Tensor, str | None]:
        note = None
        if (record.word is not None) != (fitted.dataset == "cmudict"):
            self.record_error(index, '"word" for a cmudict run, and only there', record.model_dump(exclude_none=True))
        if record.word is not None:
            x, unknown = _one_hot(record.word, fitted.letters)
            note = f"characters {unknown} are not letters of the training words: read as no letter" if unknown else None
        elif record.audio is not None or record.audio_base64 is not None:
            if fitted.dataset != "digits":
                self.record_error(index, '"x" features (this run was not trained on audio)',
                                  record.model_dump(exclude_none=True))
            from ...data.speech import log_mel, read_audio
            try:
                audio, note = (read_audio(record.audio) if record.audio is not None
                               else read_audio(_base64(record.audio_base64), "audio_base64"))
            except ValueError as error:
                raise ValueError(f"predict: input record {index}: {error}") from None
            x = log_mel(audio).astype(np.float64)
        else:
            x = frames(record.x, f"predict: input record {index} x", width=fitted.features // fitted.stack)
        return fitted.scaled(stack_frames(x, fitted.stack), f"predict: input record {index} x"), note

    @torch.no_grad()
    def predict(self, model, fitted: RecognizerFitted, records: list[dict]) -> list[dict]:
        model.eval()
        d = self.config.decode
        out = []
        for i, record in enumerate(self.records(records)):
            x, note = self._input(fitted, i, record)
            log_probs, _ = model(x[None])
            hypotheses = prefix_beam_search(log_probs, beam=d.beam, n_best=d.n_best, prune=d.prune)[0]
            texts = [(fitted.join.join(fitted.labels[k - 1] for k in labels), score) for labels, score in hypotheses]
            best = hypotheses[0][0]
            out.append({"text": texts[0][0], "labels": [fitted.labels[k - 1] for k in best], "score": texts[0][1],
                        "n_best": [{"text": t, "score": s} for t, s in texts] if d.n_best > 1 else None,
                        "note": note})
        return out

    @classmethod
    def summary(cls, split: str, results: dict[str, Any], *, refit: bool = False) -> str:
        methods = [k for k in results if k == "greedy" or k.startswith("beam")]
        if methods and "per" in results[methods[0]]:
            return f"  {split:5s} " + ", ".join(f"{k} word errors {results[k]['wer']:.4f} (phonemes {results[k]['per']:.4f})"
                                                for k in methods)
        line = f"  {split:5s} " + ", ".join(f"{k} label errors {results[k]['ler']:.4f} (strings {results[k]['ser']:.4f})"
                                            for k in methods)
        baseline = results.get("baseline_pocketsphinx")
        if baseline:
            line += f"; PocketSphinx {baseline['ler']:.4f} (strings {baseline['ser']:.4f})"
        return line


def _base64(text: str) -> bytes:
    """The bytes of a base64 field; a ``ValueError`` naming it when they are not base64."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("audio_base64: expected the file's bytes in base64, got text that is not base64") from None
