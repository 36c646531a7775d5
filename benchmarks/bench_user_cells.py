"""User-written cells in training (forward and backward, float32): a cell written as a ``UserCell``
against the built-in kernel of the same maths and against its own reference loop, and the zoo's
cells against the same cells in torchrecurrent (its own layers, a Python loop over its cells).
Interleaved repetitions, medians; ratios in one run.

    python benchmarks/bench_user_cells.py [--part written|zoo|all] [--reps 5] [--threads 2]
"""

from __future__ import annotations

import argparse

import torch

from lstmkit import cells
from lstmkit.bench import SHAPES
from lstmkit.cells.examples import WrittenGRU, WrittenLSTM, WrittenPeephole
from lstmkit.cli.arguments import positive_int
from lstmkit.layers import Recurrent

from timing import interleaved_medians

WRITTEN = {"peephole": WrittenPeephole, "gru": WrittenGRU, "lstm": WrittenLSTM}
#: lstmkit's name -> torchrecurrent's layer class name and options (torchrecurrent's layers loop over their cell)
ZOO = {"indrnn": ("IndRNN", {"nonlinearity": "relu"}), "janet": ("JANET", {}), "ligru": ("LiGRU", {}),
       "cornn": ("coRNN", {}), "unicornn": ("UnICORNN", {}), "br": ("BR", {}), "nbr": ("NBR", {}),
       "fastrnn": ("FastRNN", {}), "fastgrnn": ("FastGRNN", {"nonlinearity": "sigmoid"}), "star": ("STAR", {}),
       "cfn": ("CFN", {}), "antisymmetric_rnn": ("AntisymmetricRNN", {}),
       "gated_antisymmetric_rnn": ("GatedAntisymmetricRNN", {}), "ugrnn": ("UGRNN", {})}
ZOO_SHAPES = [(100, 64, 128, 256), (1000, 8, 8, 64)]


def _train_step(layer, x):
    def call():
        layer.zero_grad(set_to_none=True)
        out = layer(x)
        y = out[0] if isinstance(out, tuple) else out
        y.sum().backward()
    return call


def written(args) -> None:
    print("| cell | T, B, I, H | written ms | built-in ms | written / built-in | reference loop ms | loop / written |")
    print("|---|---|---|---|---|---|---|")
    for name, cls in WRITTEN.items():
        for T, B, I, H in SHAPES:
            torch.manual_seed(0)
            mine, builtin = cls(I, H), cells.make(name, I, H)
            builtin.load_state_dict(mine.state_dict())
            x = torch.randn(B, T, I, requires_grad=True)
            a, b = interleaved_medians(_train_step(Recurrent(mine), x), _train_step(Recurrent(builtin), x),
                                       reps=args.reps, calls=args.calls, warmup=1)
            _, r = interleaved_medians(_train_step(Recurrent(mine), x),
                                       _train_step(Recurrent(mine, engine="reference"), x), reps=3, calls=1, warmup=1)
            print(f"| {name} | {T}, {B}, {I}, {H} | {1e3 * a:.1f} | {1e3 * b:.1f} | {a / b:.2f} | {1e3 * r:.0f} | "
                  f"{r / a:.1f} |", flush=True)


def zoo(args) -> None:
    import torchrecurrent

    print("| cell | T, B, I, H | lstmkit ms | torchrecurrent ms | torchrecurrent / lstmkit |")
    print("|---|---|---|---|---|")
    for name, (theirs_name, options) in ZOO.items():
        for T, B, I, H in ZOO_SHAPES:
            torch.manual_seed(0)
            theirs = getattr(torchrecurrent, theirs_name)(I, H, batch_first=True, **options)
            mine = cells.make(name, I, H, **options)
            mine.load_state_dict({k.removeprefix("cells.0."): v for k, v in theirs.state_dict().items()})
            x = torch.randn(B, T, I, requires_grad=True)
            a, b = interleaved_medians(_train_step(Recurrent(mine), x), _train_step(theirs, x),
                                       reps=args.reps, calls=args.calls, warmup=1)
            print(f"| {name} | {T}, {B}, {I}, {H} | {1e3 * a:.1f} | {1e3 * b:.1f} | {b / a:.1f} |", flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["written", "zoo", "all"], default="all")
    parser.add_argument("--reps", type=positive_int, default=5, help="interleaved repetitions (median taken)")
    parser.add_argument("--calls", type=positive_int, default=2, help="calls per timing")
    parser.add_argument("--threads", type=positive_int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"training step (forward + backward), float32, {args.threads} threads, median of {args.reps}")
    if args.part in ("written", "all"):
        written(args)
    if args.part in ("zoo", "all"):
        zoo(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
