"""Inference: an exported layer in ONNX Runtime against the same layer in lstmkit (its engine),
forward only, no grad, on the engine benchmark's shapes. Interleaved repetitions, medians, the
ratio ORT / lstmkit (above 1: lstmkit is faster). Both sides get the same thread count.

    python benchmarks/bench_onnx.py [--cells lstm gru elman peephole] [--reps 7] [--threads 2]
"""

from __future__ import annotations

import argparse

import onnxruntime as ort
import torch

from lstmkit import cells
from lstmkit.bench import SHAPES
from lstmkit.cli.arguments import positive_int
from lstmkit.export import to_onnx
from lstmkit.layers import Recurrent

from timing import interleaved_medians


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", nargs="+", default=["lstm", "gru", "elman", "peephole"])
    parser.add_argument("--reps", type=positive_int, default=7, help="interleaved repetitions (median taken)")
    parser.add_argument("--calls", type=positive_int, default=5, help="calls per timing")
    parser.add_argument("--threads", type=positive_int, default=2, help="threads of both sides")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    print(f"forward, no grad, float32, {args.threads} threads, median of {args.reps}")
    print("| cell | T, B, I, H | lstmkit ms | ONNX Runtime ms | ORT / lstmkit |")
    print("|---|---|---|---|---|")
    for name in args.cells:
        for T, B, I, H in SHAPES:
            torch.manual_seed(0)
            layer = Recurrent(cells.make(name, I, H)).eval()
            session = ort.InferenceSession(to_onnx(layer).SerializeToString(), options,
                                           providers=["CPUExecutionProvider"])
            x, lengths = torch.randn(B, T, I), torch.full((B,), T)
            feeds = {"x": x.numpy(), "lengths": lengths.numpy()}
            with torch.no_grad():
                a, b = interleaved_medians(lambda: layer(x, lengths=lengths), lambda: session.run(None, feeds),
                                           reps=args.reps, calls=args.calls, warmup=1)
            print(f"| {name} | {T}, {B}, {I}, {H} | {1e3 * a:.2f} | {1e3 * b:.2f} | {b / a:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
