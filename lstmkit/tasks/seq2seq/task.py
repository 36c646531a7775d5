"""Sequence to sequence with an encoder-decoder (:class:`~lstmkit.models.Seq2Seq`): a source
token sequence in, a target token sequence out, decoded greedily or by beam search.

Datasets:

- ``cmudict``: grapheme to phoneme, a word's letters to its phonemes, on the fixed split of
  :mod:`lstmkit.data.cmudict` (every pronunciation of a training word trains); scored as the
  literature does over a word's pronunciations: word error rate (the top hypothesis equal to
  none of them) and phoneme error rate (edits to the closest one over its length).
- ``bible``: translation of verses, English (King James) to Spanish (Reina-Valera 1909) or back
  (``data.direction``), split by whole books (:mod:`lstmkit.data.bible`); each side cut into
  subwords by a SentencePiece model trained on the training split only; scored with sacrebleu's
  BLEU and chrF on the detokenised text.
- ``files``: your pairs, JSON lines ``{"source": "...", "target": "..."}``, each side read as
  characters or as whitespace-separated tokens (``data.source_tokens``, ``data.target_tokens``);
  scored by the token error rate and the share of exact targets.

Source tokens unseen in training are read as ``<unk>`` (predict says which); targets are made of
the training targets' tokens.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, Field
from torch import Tensor, nn

from ...data.readers import read_numbered_jsonl
from ...models import Seq2Seq
from ...models.seq2seq import EOS_ID, LENGTH_PENALTIES
from ...runs import plots
from ...runs.config import CELL_HELP, DataConfig, DecodeConfig, ModelConfig, OptimConfig, RunConfig
from ...runs.batches import ListDataset, pad_sequences
from ...runs.records import Record, excerpt
from ...runs.task import Prepared, Task
from ..sequence_metrics import label_errors, pronunciation_errors
from .fitted import SPECIALS, UNK, TranslationFitted, split_tokens, subword_model
from .tensors import TranslationTensors

__all__ = ["Seq2SeqTask"]



class Seq2SeqData(DataConfig):
    needs = {"files": ("train_file", "valid_file")}
    dataset: Literal["cmudict", "bible", "files"] = Field(
        "cmudict", description="cmudict: grapheme to phoneme on its fixed split; bible: English-Spanish verses, "
        "split by books; files: your own source/target pairs")
    direction: Literal["en-es", "es-en"] = Field("en-es", description="dataset bible: source-target languages")
    subwords: int = Field(8000, ge=100, description="dataset bible: SentencePiece vocabulary size of each side")
    max_tokens: int = Field(100, gt=0, description="dataset bible: training pairs with a side longer than this "
                            "many subwords are left out")
    stress: bool = Field(False, description="dataset cmudict: keep the vowels' stress digits")
    limit: int | None = Field(None, gt=0, description="datasets cmudict and bible: only the first N words (in the "
                              "split's hash order) or verses of each split (quick trials; null: all)")
    train_file: Path | None = Field(None, description="dataset files: JSON lines {\"source\": \"...\", "
                                    "\"target\": \"...\"}")
    valid_file: Path | None = Field(None, description="dataset files: validation pairs")
    test_file: Path | None = Field(None, description="dataset files: test pairs (null: no test split)")
    source_tokens: Literal["chars", "words"] = Field("words", description="dataset files: the source read as "
                                                     "characters or whitespace-separated words")
    target_tokens: Literal["chars", "words"] = Field("words", description="dataset files: the target likewise")
    bucket_by_length: bool = Field(True, description="batch sources of similar length together")
    baselines: bool = Field(True, description="on the test split, also score the baselines: the nearest spelling "
                            "(cmudict); copying the source and IBM Model 1 word by word (bible)")


class Seq2SeqModelConfig(ModelConfig):
    cell: str = Field("lstm", description=CELL_HELP)
    hidden_size: int = Field(256, gt=0, description="hidden units per direction (the decoder's too)")
    embedding_size: int = Field(128, gt=0, description="token embedding size (source and target)")
    num_layers: int = Field(2, gt=0, description="encoder layers")
    decoder_layers: int = Field(1, gt=0, description="decoder layers")
    bidirectional: bool = Field(True, description="a bidirectional encoder")
    attention: Literal["none", "additive", "dot", "general"] = Field(
        "additive", description="none (Sutskever et al.), additive (Bahdanau et al.), dot or general (Luong et al.)")
    input_feeding: bool = Field(True, description="feed the previous attentional vector to the decoder (Luong)")
    reverse_source: bool = Field(False, description="read the source backwards (Sutskever et al.)")
    dropout: float = Field(0.2, ge=0.0, lt=1.0, description="dropout on embeddings, between layers, before the output")
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0, description="label smoothing of the training targets")


class Seq2SeqDecode(DecodeConfig):
    max_length: int | None = Field(None, gt=0, description="the longest target written (null: twice the source "
                                   "plus 10 tokens)")
    length_penalty: Literal[LENGTH_PENALTIES] = Field("none", description="rank by log-probability (none), per "
                                                      "token (normalize), or GNMT's penalty (gnmt)")
    alpha: float = Field(0.6, ge=0.0, description="length_penalty gnmt: its exponent")


class Seq2SeqOptim(OptimConfig):
    epochs: int = Field(15, gt=0, description="maximum number of epochs")


class Seq2SeqConfig(RunConfig):
    task: Literal["seq2seq"] = Field("seq2seq", description="sequence to sequence (encoder-decoder, attention)")
    data: Seq2SeqData = Field(default_factory=Seq2SeqData)
    model: Seq2SeqModelConfig = Field(default_factory=Seq2SeqModelConfig)
    optim: Seq2SeqOptim = Field(default_factory=Seq2SeqOptim)
    decode: Seq2SeqDecode = Field(default_factory=Seq2SeqDecode)


class Seq2SeqInput(Record):
    EXAMPLE = '{"source": "..."}'
    source: str = Field(min_length=1, description="the source: a word (cmudict) or a text")


class Translation(BaseModel):
    target: str
    score: float


class Seq2SeqOutput(BaseModel):
    target: str = Field(description="the best target, its tokens joined")
    tokens: list[str] = Field(description="its tokens")
    score: float = Field(description="its score: log-probability, under decode.length_penalty")
    n_best: list[Translation] | None = Field(None, description="decode.n_best > 1: the best targets, best first")
    finished: bool = Field(description="whether it ended before decode.max_length")
    note: str | None = Field(None, description="source tokens unseen in training, read as <unk>")


class Seq2SeqTask(Task):
    """Source tokens (B, S) -> target tokens, trained with teacher forcing; the vocabularies are
    the training split's."""

    name = "seq2seq"
    config_class = Seq2SeqConfig
    predict_input = Seq2SeqInput
    predict_output = Seq2SeqOutput
    fitted_class = TranslationFitted
    tensors = TranslationTensors
    metric = "acc"           # the target tokens predicted right under teacher forcing
    formats = ('dataset files, evaluate --data: JSON lines {"source": "...", "target": "..."}; predict: '
               '{"source": "..."} (a word for a cmudict run)')

    # data -------------------------------------------------------------------------------
    def _read_file(self, path: Path, fitted: TranslationFitted | None = None) -> list[tuple[list[str], list[str], str]]:
        """Each pair's source and target tokens, as the config reads them (or the run's ``fitted``),
        and the target's text."""
        d, pairs = self.config.data, []
        for line, r in read_numbered_jsonl(path, "data file"):
            if not (isinstance(r, dict) and isinstance(r.get("source"), str) and isinstance(r.get("target"), str)):
                raise ValueError(f'data file {str(path)!r} line {line}: expected {{"source": "...", "target": '
                                 f'"..."}}, got {excerpt(r, 80)}')
            if fitted is None:
                source, target = split_tokens(r["source"], d.source_tokens), split_tokens(r["target"], d.target_tokens)
            else:
                source, target = fitted.source(r["source"]), fitted.target(r["target"])
            if not source or not target:
                raise ValueError(f"data file {str(path)!r} line {line}: expected a non-empty source and target, "
                                 f"got {excerpt(r, 80)}")
            pairs.append((source, target, r["target"]))
        return pairs

    def _splits(self, fitted: TranslationFitted | None) -> tuple[dict[str, list[tuple[list[str], list[list[str]]]]],
                                                                  dict]:
        """Per split: each source with its references (several pronunciations of a word); and what
        the data fitted on the training split (the bible's subword models)."""
        d = self.config.data
        if d.dataset == "bible":
            return self._bible(fitted)
        if d.dataset == "cmudict":
            from ...data.cmudict import cmudict_split, load_cmudict
            lexicon = load_cmudict(d.stress)
            return {split: [(list(w), [list(p) for p in lexicon[w]]) for w in words[:d.limit]]
                    for split, words in cmudict_split(ordered=True).items()}, {}
        files = {"train": d.train_file, "valid": d.valid_file, "test": d.test_file}
        return {split: [(s, [t]) for s, t, _ in self._read_file(path)] if path is not None else []
                for split, path in files.items()}, {}

    def _bible(self, fitted: TranslationFitted | None) -> tuple[dict, dict]:
        from ...data.bible import bible_split, verse_pairs
        d = self.config.data
        source, target = (0, 1) if d.direction == "en-es" else (1, 0)
        books = bible_split()
        texts = {split: [(p[3:][source], p[3:][target]) for p in verse_pairs() if p[0] in names][:d.limit]
                 for split, names in books.items()}
        if fitted is None:
            learned = {side: _train_subwords([pair[k] for pair in texts["train"]], d.subwords)
                       for side, k in (("source", 0), ("target", 1))}
        else:
            learned = {"source": fitted.source_subwords, "target": fitted.target_subwords}
        cut = {side: subword_model(learned[side]) for side in learned}
        out = {}
        for split, pairs in texts.items():
            entries = [(cut["source"].encode(s, out_type=str), [cut["target"].encode(t, out_type=str)])
                       for s, t in pairs]
            if split == "train":
                entries = [(s, r) for s, r in entries if max(len(s), len(r[0])) <= d.max_tokens]
            out[split] = entries
        return out, {"source_subwords": learned["source"], "target_subwords": learned["target"],
                     "references": {split: [t for _, t in pairs] for split, pairs in texts.items()},
                     "sources": {split: [s for s, _ in pairs] for split, pairs in texts.items()}}

    def _encode_source(self, tokens: list[str], index: dict[str, int]) -> Tensor:
        return torch.tensor([index.get(t, UNK) for t in tokens], dtype=torch.long)

    def prepare(self, fitted: TranslationFitted | None = None) -> Prepared:
        splits, learned = self._splits(fitted)
        references, source_texts = learned.pop("references", None), learned.pop("sources", None)
        if fitted is None:
            train = splits["train"]
            sources = sorted({t for s, _ in train for t in s})
            targets = sorted({t for _, refs in train for r in refs for t in r})
            d = self.config.data
            fitted = TranslationFitted(
                source_vocab=sources, target_vocab=targets, dataset=d.dataset,
                source_tokens={"cmudict": "chars", "bible": "subwords"}.get(d.dataset, d.source_tokens),
                target_tokens={"cmudict": "words", "bible": "subwords"}.get(d.dataset, d.target_tokens), **learned)
        sets = {split: self._pairs(entries, fitted) for split, entries in splits.items()}
        return Prepared(train=sets["train"], valid=sets["valid"], test=sets["test"], fitted=fitted,
                        extra={"splits": splits, "references": references, "sources": source_texts})

    def _pairs(self, entries: list, fitted: TranslationFitted) -> ListDataset:
        """(source ids, target ids ending with EOS_ID) of each source and each of its references; a
        reference with tokens unseen in training cannot be a target and is left out."""
        source_index, target_index = fitted.source_index, fitted.target_index
        return ListDataset([(self._encode_source(source, source_index),
                             torch.tensor([target_index[t] for t in ref] + [EOS_ID], dtype=torch.long))
                            for source, refs in entries for ref in refs if all(t in target_index for t in ref)])

    def lengths(self, dataset: ListDataset) -> list[int] | None:
        return dataset.lengths() if self.config.data.bucket_by_length else None

    def collate(self, items: list) -> dict[str, Tensor]:
        source, lengths = pad_sequences([s for s, _ in items])
        target, _ = pad_sequences([t for _, t in items])
        return {"source": source, "lengths": lengths, "target": target}

    # model ------------------------------------------------------------------------------
    def build_model(self, fitted: TranslationFitted) -> nn.Module:
        m = self.config.model
        return Seq2Seq(m.cell, len(fitted.source_vocab) + 2, len(fitted.target_vocab) + len(SPECIALS),
                       m.hidden_size, embedding_size=m.embedding_size, encoder_layers=m.num_layers,
                       decoder_layers=m.decoder_layers, bidirectional=m.bidirectional, attention=m.attention,
                       input_feeding=m.input_feeding, reverse_source=m.reverse_source, dropout=m.dropout,
                       label_smoothing=m.label_smoothing, merge=m.merge, **m.cell_options)

    def batch_size(self, batch: dict[str, Tensor]) -> int:
        """What the loss is a mean over: target tokens."""
        return int((batch["target"] != 0).sum())

    def batch_loss(self, model, batch):
        logits, loss = model(batch["source"], batch["lengths"], batch["target"])
        real = batch["target"] != 0
        return loss, {"acc": (logits.argmax(-1) == batch["target"])[real].float().mean()}

    # decoding ---------------------------------------------------------------------------
    def _max_length(self, lengths: Tensor) -> int:
        d = self.config.decode
        return d.max_length or 2 * int(lengths.max()) + 10

    @torch.no_grad()
    def _decode(self, model, sources: list[Tensor], *, beam: int, n_best: int = 1,
                batch_size: int = 64) -> list[list]:
        """The hypotheses of each source (a list of ``n_best``; greedy decoding with ``beam`` 0)."""
        model.eval()
        d = self.config.decode
        order = sorted(range(len(sources)), key=lambda i: len(sources[i]))      # similar lengths batch together
        decoded: dict[int, list] = {}
        for i in range(0, len(order), batch_size):
            chosen = order[i:i + batch_size]
            source, lengths = pad_sequences([sources[j] for j in chosen])
            if beam == 0:
                found = [[h] for h in model.greedy(source, lengths, max_length=self._max_length(lengths))]
            else:
                found = model.beam_search(source, lengths, beam=beam, n_best=n_best,
                                          max_length=self._max_length(lengths), length_penalty=d.length_penalty,
                                          alpha=d.alpha)
            decoded.update(zip(chosen, found))
        return [decoded[j] for j in range(len(sources))]

    def evaluate(self, model, prepared: Prepared, split: str, out_dir: Path) -> dict[str, Any]:
        fitted, entries = prepared.fitted, prepared.extra["splits"][split]
        references = prepared.extra["references"][split] if prepared.extra["references"] else None
        results = self._score(model, fitted, entries, out_dir / f"attention_{split}.png", {"split": split},
                              getattr(prepared, split), references)
        if split == "test" and self.config.data.baselines and fitted.dataset in ("cmudict", "bible"):
            results |= self._baselines(prepared, fitted)
        return results

    def _baselines(self, prepared: Prepared, fitted: TranslationFitted) -> dict[str, Any]:
        from . import baselines
        if fitted.dataset == "cmudict":
            train = [("".join(s), refs[0]) for s, refs in prepared.extra["splits"]["train"]]
            test = prepared.extra["splits"]["test"]
            guesses = baselines.nearest_spelling(train, ["".join(s) for s, _ in test])
            return {"baseline_nearest_spelling": pronunciation_errors([refs for _, refs in test], guesses)}
        sources = prepared.extra["sources"]
        references = prepared.extra["references"]["test"]
        train = list(zip(sources["train"], prepared.extra["references"]["train"]))
        return {"baseline_copy": translation_scores(references, sources["test"]),
                "baseline_ibm1": translation_scores(references, baselines.ibm1_word_by_word(train, sources["test"]))}

    def _score(self, model, fitted: TranslationFitted, entries: list, plot: Path, results: dict, dataset: ListDataset,
               texts: list[str] | None = None) -> dict:
        source_index = fitted.source_index
        sources = [self._encode_source(s, source_index) for s, _ in entries]
        results |= {"n": len(entries), "loss": self._loss(model, dataset)}
        for method, beam in (("greedy", 0), (f"beam{self.config.decode.beam}", self.config.decode.beam)):
            hypotheses = [fitted.target_words(h[0].tokens) for h in self._decode(model, sources, beam=beam)]
            references = [refs for _, refs in entries]
            if fitted.dataset == "cmudict":
                results[method] = pronunciation_errors(references, hypotheses)
            elif fitted.dataset == "bible":
                results[method] = translation_scores(texts, [fitted.detokenize(h) for h in hypotheses])
            else:
                results[method] = label_errors([refs[0] for refs in references], hypotheses)
        if model.attention is not None and entries:
            self._plot_attention(model, fitted, entries[:3], sources[:3], plot)
        return results

    @torch.no_grad()
    def _loss(self, model, dataset: ListDataset, batch_size: int = 64) -> float:
        model.eval()
        total = tokens = 0.0
        for i in range(0, len(dataset), batch_size):
            batch = self.collate(dataset.items[i:i + batch_size])
            _, loss = model(batch["source"], batch["lengths"], batch["target"])
            n = self.batch_size(batch)
            total, tokens = total + float(loss) * n, tokens + n
        return total / max(tokens, 1)

    def _plot_attention(self, model, fitted: TranslationFitted, entries: list, sources: list[Tensor], path: Path) -> None:
        examples = []
        for (source, _), ids in zip(entries, sources):
            (best,) = model.greedy(ids[None], torch.tensor([len(ids)]), max_length=2 * len(ids) + 10)
            target = torch.tensor([best.tokens + [EOS_ID]])
            weights = model.attention_weights(ids[None], torch.tensor([len(ids)]), target)[0]
            examples.append((weights.numpy(), source, fitted.target_words(best.tokens) + ["</s>"]))
        plots.attention_maps(examples, path)

    def evaluate_file(self, model, fitted: TranslationFitted, path: Path, out_dir: Path) -> dict[str, Any]:
        pairs = self._read_file(path, fitted)
        entries = [(s, [t]) for s, t, _ in pairs]
        return self._score(model, fitted, entries, out_dir / "attention_file.png", {"file": str(path)},
                           self._pairs(entries, fitted),
                           [text for _, _, text in pairs])

    # prediction -------------------------------------------------------------------------
    def predict(self, model, fitted: TranslationFitted, records: list[dict]) -> list[dict]:
        d = self.config.decode
        source_index = fitted.source_index
        parsed = self.records(records)
        tokens = [fitted.source(r.source) for r in parsed]
        for i, t in enumerate(tokens):
            if not t:
                self.record_error(i, '"source" with at least one token', parsed[i].source)
        found = self._decode(model, [self._encode_source(t, source_index) for t in tokens], beam=d.beam,
                             n_best=d.n_best) if tokens else []
        out = []
        for source, hypotheses in zip(tokens, found):
            unknown = sorted({t for t in source if t not in source_index})
            texts = [(fitted.detokenize(fitted.target_words(h.tokens)), h.score) for h in hypotheses]
            best = hypotheses[0]
            out.append({"target": texts[0][0], "tokens": fitted.target_words(best.tokens), "score": best.score,
                        "n_best": [{"target": t, "score": s} for t, s in texts] if d.n_best > 1 else None,
                        "finished": best.finished,
                        "note": f"source tokens {unknown} unseen in training: read as <unk>" if unknown else None})
        return out

    @classmethod
    def summary(cls, split: str, results: dict[str, Any], *, refit: bool = False) -> str:
        methods = [k for k in results if k == "greedy" or k.startswith("beam") or k.startswith("baseline_")]
        if methods and "bleu" in results[methods[0]]:
            return f"  {split:5s} " + ", ".join(f"{k.removeprefix('baseline_')} BLEU {results[k]['bleu']:.2f} (chrF "
                                                f"{results[k]['chrf']:.2f})" for k in methods)
        if methods and "per" in results[methods[0]]:
            return f"  {split:5s} " + ", ".join(f"{k.removeprefix('baseline_')} word errors {results[k]['wer']:.4f} "
                                                f"(phonemes {results[k]['per']:.4f})" for k in methods)
        return f"  {split:5s} " + ", ".join(f"{k} token errors {results[k]['ler']:.4f} (targets wrong "
                                            f"{results[k]['ser']:.4f})" for k in methods)


def _train_subwords(texts: list[str], size: int) -> str:
    """A SentencePiece unigram model of ``size`` pieces trained on ``texts`` (deterministic: one
    thread, every sentence), serialised (base64), so the run's metadata carries it."""
    import base64
    import io

    import sentencepiece
    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(sentence_iterator=iter(texts), model_writer=model, vocab_size=size,
                                             model_type="unigram", character_coverage=1.0, num_threads=1, minloglevel=2, hard_vocab_limit=False)
    return base64.b64encode(model.getvalue()).decode("ascii")


def translation_scores(references: list[str], hypotheses: list[str]) -> dict[str, float]:
    """sacrebleu's corpus BLEU and chrF of detokenised ``hypotheses`` against one reference each."""
    import sacrebleu
    if not references:
        return {"bleu": float("nan"), "chrf": float("nan"), "n": 0}
    return {"bleu": sacrebleu.corpus_bleu(hypotheses, [references]).score,
            "chrf": sacrebleu.corpus_chrf(hypotheses, [references]).score, "n": len(references)}
