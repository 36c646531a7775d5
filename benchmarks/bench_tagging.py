"""Tagger speed: sentences per second, training and decoding, of lstmkit's BiLSTM-CRF against the
same tagger on ``torch.nn.LSTM`` (packed sequences: what one writes without lstmkit) and against
lstmkit's BiLSTM with a softmax output (what the CRF costs).

Every model has the same word embedding, character CNN, hidden size and output layer; the
sentences have Brown-like lengths (1 + Poisson(21), a few long ones). Each repetition times every
model once, in turn (interleaved, so a noisy machine's slow phases hit all alike); the figures
are medians over the repetitions, and ratios against the ``torch.nn.LSTM`` tagger.

    python benchmarks/bench_tagging.py [--tags 12] [--reps 5] [--batches 10] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from lstmkit.cli.arguments import positive_int
from lstmkit.layers import CRF
from lstmkit.models import CharCNN, SequenceTagger
from lstmkit.models.inputs import TokenEmbedding

VOCAB, CHARS, EMBEDDING, HIDDEN, MAX_CHARS = 40_000, 80, 100, 128, 12


class TorchTagger(nn.Module):
    """The BiLSTM-CRF on ``torch.nn.LSTM`` with packed sequences, otherwise as lstmkit's tagger."""

    def __init__(self, num_tags: int):
        super().__init__()
        self.embedding = TokenEmbedding(VOCAB, EMBEDDING)
        self.char_encoder = CharCNN(CHARS, filters=50)
        self.rnn = nn.LSTM(EMBEDDING + 50, HIDDEN, batch_first=True, bidirectional=True)
        self.project = nn.Linear(2 * HIDDEN, num_tags)
        self.crf = CRF(num_tags)

    def forward(self, words, lengths, *, chars, char_lengths, targets=None):
        x = torch.cat([self.embedding(words), self.char_encoder(chars, char_lengths)], -1)
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        y, _ = nn.utils.rnn.pad_packed_sequence(self.rnn(packed)[0], batch_first=True, total_length=x.shape[1])
        emissions = self.project(y)
        return emissions, None if targets is None else self.crf(emissions, targets, lengths)

    @torch.no_grad()
    def decode(self, words, lengths, **chars):
        return self.crf.decode(self(words, lengths, **chars)[0], lengths)[0]


def batch(B: int, num_tags: int, generator: torch.Generator) -> dict:
    lengths = (1 + torch.poisson(torch.full((B,), 21.0), generator=generator)).long()
    T = int(lengths.max())
    valid = torch.arange(T) < lengths[:, None]
    words = torch.randint(2, VOCAB, (B, T), generator=generator) * valid
    char_lengths = torch.randint(1, MAX_CHARS + 1, (B, T), generator=generator) * valid
    chars = torch.randint(1, CHARS, (B, T, MAX_CHARS), generator=generator) * (
        torch.arange(MAX_CHARS) < char_lengths[..., None])
    tags = torch.randint(0, num_tags, (B, T), generator=generator) * valid
    return {"words": words, "lengths": lengths, "chars": chars, "char_lengths": char_lengths, "tags": tags}


def models(num_tags: int) -> dict[str, nn.Module]:
    torch.manual_seed(0)
    out = {"nn.LSTM + CRF": TorchTagger(num_tags)}
    for output in ("crf", "softmax"):
        out[f"lstmkit + {output}"] = SequenceTagger("lstm", VOCAB, HIDDEN, num_tags, embedding_size=EMBEDDING,
                                                    output=output, char_encoder=CharCNN(CHARS, filters=50))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tags", type=positive_int, default=12, help="tag set size (12 universal, 190 Brown)")
    parser.add_argument("--reps", type=positive_int, default=5, help="interleaved repetitions (median taken)")
    parser.add_argument("--batches", type=positive_int, default=10, help="batches per timing")
    parser.add_argument("--threads", type=positive_int, default=2, help="torch threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    train_batches = [batch(32, args.tags, g) for _ in range(args.batches)]
    decode_batches = [batch(256, args.tags, g) for _ in range(max(1, args.batches // 4))]
    chars = lambda b: {"chars": b["chars"], "char_lengths": b["char_lengths"]}     # noqa: E731
    tagger = models(args.tags)
    optimisers = {name: torch.optim.Adam(m.parameters(), lr=1e-3) for name, m in tagger.items()}
    times = {name: {"train": [], "decode": []} for name in tagger}
    for rep in range(args.reps + 1):                      # the first repetition warms up
        for name, model in tagger.items():
            model.train()
            start = time.perf_counter()
            for b in train_batches:
                _, loss = model(b["words"], b["lengths"], targets=b["tags"], **chars(b))
                optimisers[name].zero_grad()
                loss.backward()
                optimisers[name].step()
            train = time.perf_counter() - start
            model.eval()
            start = time.perf_counter()
            for b in decode_batches:
                model.decode(b["words"], b["lengths"], **chars(b))
            if rep:
                times[name]["train"].append(32 * len(train_batches) / train)
                times[name]["decode"].append(256 * len(decode_batches) / (time.perf_counter() - start))
    peer = {k: statistics.median(v) for k, v in times["nn.LSTM + CRF"].items()}
    print(f"{args.tags} tags, batches of 32 (training) and 256 (decoding), {args.threads} threads, "
          f"median of {args.reps}")
    print("| tagger | training sentences/s | vs nn.LSTM | decoding sentences/s | vs nn.LSTM |")
    print("|---|---|---|---|---|")
    for name, t in times.items():
        tr, de = statistics.median(t["train"]), statistics.median(t["decode"])
        print(f"| {name} | {tr:.0f} | {tr / peer['train']:.2f} | {de:.0f} | {de / peer['decode']:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
