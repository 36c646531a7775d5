"""The quickstart demo: why bidirectional recurrent networks exist, in under a minute on a CPU.

The target at step t is (x[t-2] + x[t+5]) / 2 (docs/classic_tasks.md §2.10). A forward LSTM cannot know
x[t+5] when it must answer; a bidirectional LSTM can. Both train on the same variable-length
batches; the script prints their test error beside the best a forward model could do.

    python -m lstmkit.demo [--steps 300] [--hidden 32] [--seed 0]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

import lstmkit
from lstmkit.cli.arguments import positive_int
from lstmkit.data.synthetic import brnn_surrogate

TASK = dict(length=50, min_length=30, target="regression", d_p=2, d_f=5)


class Tagger(nn.Module):
    """A recurrent network and a linear read-out at every step."""

    def __init__(self, rnn: nn.Module, features: int):
        super().__init__()
        self.rnn = rnn
        self.head = nn.Linear(features, 1)

    def forward(self, x, lengths):
        h, _ = self.rnn(x, lengths=lengths)                                 # (B, T, F)
        return self.head(h)                                                 # (B, T, 1)


def masked_mse(pred, y, lengths):
    valid = lstmkit.valid_steps(lengths, y.shape[1]).unsqueeze(-1)                 # (B, T, 1)
    return ((pred - y) ** 2 * valid).sum() / valid.sum()


def train(model: nn.Module, *, steps: int, batch: int, seed: int, lr: float = 1e-2) -> list[float]:
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for step in range(steps):
        x, y, lengths = brnn_surrogate(batch, seed=seed * 100_003 + step, **TASK)
        loss = masked_mse(model(x, lengths), y, lengths)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
    return losses


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(prog="lstmkit demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=positive_int, default=300, help="training batches per model (default 300)")
    parser.add_argument("--hidden", type=positive_int, default=32, help="hidden units per direction (default 32)")
    parser.add_argument("--batch", type=positive_int, default=64, help="sequences per batch (default 64)")
    parser.add_argument("--seed", type=int, default=0, help="seed for weights and data (default 0)")
    args = parser.parse_args(argv)

    H = args.hidden
    torch.manual_seed(args.seed)
    models = {
        "forward LSTM": Tagger(lstmkit.build_rnn("lstm", 1, H, gate_bias={"f": 1.0}), H),
        "bidirectional LSTM": Tagger(lstmkit.build_rnn("lstm", 1, H, bidirectional=True, gate_bias={"f": 1.0}),
                                     2 * H),
    }
    x_test, y_test, len_test = brnn_surrogate(512, seed=10**9 + args.seed, **TASK)
    # The best a forward model can do is know x[t-2] exactly and guess E[x[t+5]] = 0.
    past_only = nn.functional.pad(x_test[:, :-2], (0, 0, 2, 0)) / 2         # (B, T, 1): x[t-2] / 2
    floor = masked_mse(past_only, y_test, len_test).item()
    print(f"task: y[t] = (x[t-2] + x[t+5]) / 2, x ~ U[-1, 1], lengths 30..50; {args.steps} batches of {args.batch}")
    results = {}
    for name, model in models.items():
        start = time.perf_counter()
        train(model, steps=args.steps, batch=args.batch, seed=args.seed)
        with torch.no_grad():
            mse = masked_mse(model(x_test, len_test), y_test, len_test).item()
        results[name] = mse
        print(f"  {name:<20} test MSE {mse:.4f}   ({time.perf_counter() - start:.1f} s)")
    print(f"  {'forward floor':<20} test MSE {floor:.4f}   (exact past, future unknown)")
    if results["bidirectional LSTM"] < floor:
        print("The bidirectional LSTM beats what any forward model can reach: it sees x[t+5].")
    else:
        print("The bidirectional LSTM has not passed the forward floor yet: train longer (--steps).")
    return {**results, "forward floor": floor}


if __name__ == "__main__":
    main()
