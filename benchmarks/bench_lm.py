"""Language-model speed: training tokens per second and generation tokens per second (batch 1,
sampling) of lstmkit's :class:`~lstmkit.models.LanguageModel` against the same architecture built
from ``torch.nn.Embedding`` + ``torch.nn.LSTM`` + ``torch.nn.Linear`` (PyTorch's
word_language_model example), and where the time of a training step goes.

Both models: 2 layers of 200 (``--hidden``), a 10,000-word vocabulary, tied weights, dropout
0.2, SGD with clipping, 20 streams in windows of 35 steps with the state carried (detached).
Each repetition times every model once, in turn (interleaved, so a noisy machine's slow phases
hit all alike); figures are medians over the repetitions, ratios against ``nn.LSTM``. The split
of a training step (lstmkit's model) is timed with the forward and backward of its recurrent
layers, its output layer + softmax cross-entropy, and the rest (embedding, dropout, optimiser)
measured apart.

    python benchmarks/bench_lm.py [--reps 5] [--steps 20] [--tokens 200] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from lstmkit.cli.arguments import positive_int
from lstmkit.models import LanguageModel, detach_state, linear_cross_entropy
from lstmkit.models.generation import sample

VOCAB, B, T = 10_000, 20, 35


class TorchLM(nn.Module):
    """PyTorch's word_language_model: Embedding -> dropout -> nn.LSTM (dropout between layers) ->
    dropout -> Linear, tied; the same interface as lstmkit's model."""

    def __init__(self, hidden: int, layers: int, dropout: float = 0.2):
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, hidden)
        self.drop = nn.Dropout(dropout)
        self.rnn = nn.LSTM(hidden, hidden, layers, dropout=dropout, batch_first=True)
        self.decoder = nn.Linear(hidden, VOCAB)
        self.decoder.weight = self.embedding.weight

    def forward(self, tokens, state=None, *, targets=None):
        y, state = self.rnn(self.drop(self.embedding(tokens)), state)
        logits = self.decoder(self.drop(y))
        loss = None if targets is None else F.cross_entropy(logits.flatten(0, 1), targets.flatten())
        return logits, state, loss

    def step(self, tokens, state=None):
        logits, state, _ = self(tokens[:, None], state)
        return logits[:, 0], state


def _detach(state):
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else detach_state(state)


def train_tokens_per_second(model, windows, optimiser) -> float:
    """Training as each library's user writes it: lstmkit's ``LanguageModel.loss`` (the output layer
    and cross-entropy fused), the example's forward with ``F.cross_entropy``."""
    model.train()
    state = None
    start = time.perf_counter()
    for x, y in windows:
        if isinstance(model, LanguageModel):
            loss, state = model.loss(x, y, state)
        else:
            _, state, loss = model(x, state, targets=y)
        state = _detach(state)
        optimiser.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        optimiser.step()
    return len(windows) * B * T / (time.perf_counter() - start)


@torch.no_grad()
def generate_tokens_per_second(model, tokens: int) -> float:
    model.eval()
    generator = torch.Generator().manual_seed(0)
    token, state = torch.zeros(1, dtype=torch.long), None
    start = time.perf_counter()
    for _ in range(tokens):
        logits, state = model.step(token, state)
        token = sample(logits, top_p=0.9, generator=generator)
    return tokens / (time.perf_counter() - start)


def time_split(model: LanguageModel, windows) -> dict[str, float]:
    """Seconds per training step in the recurrent layers, the fused output layer + loss, and the
    rest; and, apart (not part of the step), the same output layer + loss unfused
    (``F.cross_entropy(F.linear(...))``)."""
    parts = {"recurrence": 0.0, "softmax": 0.0}
    unfused = 0.0
    model.train()
    total = time.perf_counter()
    for x, y in windows:
        emb = model.dropout(model._embed(x)).detach().requires_grad_()
        start = time.perf_counter()
        h = emb
        for layer in model.layers:
            h = model.dropout(layer(h)[0])
        hidden = h.detach().requires_grad_()
        parts["recurrence"] += time.perf_counter() - start
        start = time.perf_counter()
        loss = F.cross_entropy(model.decoder(hidden).flatten(0, 1), y.flatten())
        loss.backward()
        unfused += time.perf_counter() - start
        hidden.grad = None
        start = time.perf_counter()
        loss = linear_cross_entropy(hidden.flatten(0, 1), model.decoder.weight, model.decoder.bias, y.flatten())
        loss.backward()
        parts["softmax"] += time.perf_counter() - start
        start = time.perf_counter()
        h.backward(hidden.grad)
        parts["recurrence"] += time.perf_counter() - start
    full = time.perf_counter() - total - unfused
    step = {k: v / len(windows) for k, v in parts.items()}
    step["rest"] = max(0.0, full / len(windows) - sum(step.values()))
    return step, unfused / len(windows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=positive_int, default=5, help="interleaved repetitions (median taken)")
    parser.add_argument("--steps", type=positive_int, default=20, help="training windows per timing")
    parser.add_argument("--tokens", type=positive_int, default=200, help="generated tokens per timing")
    parser.add_argument("--hidden", type=positive_int, default=200, help="hidden units (and embedding size)")
    parser.add_argument("--layers", type=positive_int, default=2, help="LSTM layers")
    parser.add_argument("--threads", type=positive_int, default=2, help="torch threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    windows = [(torch.randint(0, VOCAB, (B, T), generator=g), torch.randint(0, VOCAB, (B, T), generator=g))
               for _ in range(args.steps)]
    torch.manual_seed(0)
    models = {"nn.LSTM": TorchLM(args.hidden, args.layers),
              "lstmkit": LanguageModel("lstm", VOCAB, args.hidden, num_layers=args.layers, dropout=0.2,
                                       tie_weights=True, init_range=0.1)}
    optimisers = {k: torch.optim.SGD(m.parameters(), lr=20) for k, m in models.items()}
    figures = {k: {"train": [], "generate": []} for k in models}
    for rep in range(args.reps + 1):                     # the first repetition warms up
        for name, model in models.items():
            train = train_tokens_per_second(model, windows, optimisers[name])
            generate = generate_tokens_per_second(model, args.tokens)
            if rep:
                figures[name]["train"].append(train)
                figures[name]["generate"].append(generate)
    peer = {k: statistics.median(v) for k, v in figures["nn.LSTM"].items()}
    print(f"{args.layers}x{args.hidden} LSTM, vocabulary {VOCAB:,}, tied, dropout 0.2; training {B} streams x {T} "
          f"steps, generation batch 1 (top-p 0.9); {args.threads} threads, median of {args.reps}")
    print("| model | training tokens/s | vs nn.LSTM | generation tokens/s | vs nn.LSTM |")
    print("|---|---|---|---|---|")
    for name, f in figures.items():
        tr, ge = statistics.median(f["train"]), statistics.median(f["generate"])
        print(f"| {name} | {tr:,.0f} | {tr / peer['train']:.2f} | {ge:,.0f} | {ge / peer['generate']:.2f} |")
    split, unfused = time_split(models["lstmkit"], windows)
    total = sum(split.values())
    print("lstmkit training step: " + ", ".join(f"{k} {1000 * v:.1f} ms ({100 * v / total:.0f}%)"
                                                for k, v in split.items())
          + f"; the softmax unfused (F.linear + F.cross_entropy): {1000 * unfused:.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
