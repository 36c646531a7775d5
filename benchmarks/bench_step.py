"""One streaming step: ``Recurrent.step`` of every registered cell against the nearest PyTorch
cell (``torch.nn.LSTMCell`` for the LSTM family, ``GRUCell`` for the GRUs, ``RNNCell`` for Elman)
at batch 1 and 32, no grad, 1 thread (what a server's session step and a language model's
generation run). Interleaved repetitions, medians, ratios against the torch cell (below 1:
lstmkit's step is faster). A cell with more maths than its torch peer (peepholes, layer norm,
gate recurrence) is slower for that reason; the column "how" says which path stepped it.

    python benchmarks/bench_step.py [--reps 7] [--calls 2000] [--hidden 200] [--cells lstm gru ...]
"""

from __future__ import annotations

import argparse

import torch

from lstmkit import cells
from lstmkit.cli.arguments import positive_int
from lstmkit.layers import Recurrent

from timing import interleaved_medians

PEERS = {"gru": torch.nn.GRUCell, "gru_cho": torch.nn.GRUCell, "elman": torch.nn.RNNCell}   # else LSTMCell


def _how(layer: Recurrent, x: torch.Tensor, state) -> str:
    if layer.cell.fused_step(x, state) is not None:
        return "torch fused op"
    return "engine" if layer.uses_engine() else "reference"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=positive_int, default=7, help="interleaved repetitions (median taken)")
    parser.add_argument("--calls", type=positive_int, default=2000, help="steps per timing")
    parser.add_argument("--hidden", type=positive_int, default=200, help="hidden units (= input size)")
    parser.add_argument("--cells", nargs="+", default=cells.names(), choices=cells.names(), help="cells to time")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    H = args.hidden
    print(f"one step, hidden {H}, input {H}, no grad, 1 thread, median of {args.reps}")
    print("| cell | batch | how | lstmkit µs | torch cell | torch µs | ratio |")
    print("|---|---|---|---|---|---|---|")
    with torch.no_grad():
        for name in args.cells:
            peer_class = PEERS.get(name, torch.nn.LSTMCell)
            for batch in (1, 32):
                torch.manual_seed(0)
                layer, peer = Recurrent(cells.make(name, H, H)), peer_class(H, H)
                x = torch.randn(batch, H)
                state = layer.init_state(batch)
                hx = (state[0], torch.zeros_like(state[0])) if peer_class is torch.nn.LSTMCell else state[0]
                a, b = interleaved_medians(lambda: layer.step(x, state), lambda: peer(x, hx), reps=args.reps,
                                           calls=args.calls, warmup=args.calls // 10)
                print(f"| {name} | {batch} | {_how(layer, x, state)} | {1e6 * a:.1f} | {peer_class.__name__} | "
                      f"{1e6 * b:.1f} | {a / b:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
