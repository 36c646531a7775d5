"""Training speed of the minimal RNNs (minGRU, minLSTM): their parallel scan against their own
step loop and against ``torch.nn.GRU`` / ``torch.nn.LSTM`` of the same hidden size, forward +
backward, float32, on the minGRU paper's comparison shape (1000, 64, 10, 100) and the engine
benchmark's four shapes (T, B, I, H); medians of interleaved repetitions.

    python benchmarks/bench_minimal.py [--threads 2] [--reps 5]
"""

from __future__ import annotations

import argparse

import torch

import lstmkit
from lstmkit import cells
from timing import interleaved_medians

SHAPES = [(1000, 64, 10, 100), (100, 64, 128, 256), (500, 32, 64, 128), (50, 16, 32, 64), (1000, 8, 8, 64)]


def _train_step(module, x):
    def call():
        module.zero_grad(set_to_none=True)
        y, _ = module(x)
        y.sum().backward()
    return call


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"forward + backward ms, float32, {args.threads} threads, median of {args.reps} interleaved repetitions")
    print("| cell | T, B, I, H | scan | step loop | loop / scan | torch peer | peer / scan |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, peer in (("mingru", torch.nn.GRU), ("minlstm", torch.nn.LSTM)):
        for T, B, I, H in SHAPES:
            torch.manual_seed(0)
            cell = cells.make(name, I, H)
            x = torch.randn(B, T, I)
            scan = _train_step(lstmkit.Recurrent(cell), x)
            loop = _train_step(lstmkit.Recurrent(cell, engine="reference"), x)
            other = _train_step(peer(I, H, batch_first=True), x)
            calls = max(1, 2000 // T)
            s, lp = interleaved_medians(scan, loop, reps=args.reps, calls=calls, warmup=1)
            s2, p = interleaved_medians(scan, other, reps=args.reps, calls=calls, warmup=1)
            s = min(s, s2)
            print(f"| `{name}` | {T}, {B}, {I}, {H} | {1e3 * s:.1f} | {1e3 * lp:.1f} | {lp / s:.1f} | "
                  f"{peer.__name__} {1e3 * p:.1f} | {p / s:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
