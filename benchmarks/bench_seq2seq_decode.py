"""Decoding speed of a trained seq2seq run: sources per second, greedy against beam search, in
batches of ``--batch`` sources sorted by length (as ``evaluate`` decodes), on the run's test split.
Medians of ``--reps`` interleaved repetitions.

    python benchmarks/bench_seq2seq_decode.py runs/seq2seq-cmudict-... --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from lstmkit.runs import load_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="a seq2seq run directory")
    parser.add_argument("--sources", type=int, default=2000, help="test sources decoded per repetition")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--beams", type=int, nargs="+", default=[5])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    loaded = load_run(args.run)
    task, fitted, model = loaded.task, loaded.fitted, loaded.model
    prepared = task.prepare(fitted)
    index = fitted.source_index
    sources = [task._encode_source(s, index) for s, _ in prepared.extra["splits"]["test"][:args.sources]]
    sides = {"greedy": 0, **{f"beam {k}": k for k in args.beams}}
    times: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(args.reps):
        for name, beam in sides.items():
            start = time.perf_counter()
            task._decode(model, sources, beam=beam, batch_size=args.batch)
            times[name].append(time.perf_counter() - start)
    print(f"{len(sources)} test sources, batches of {args.batch}, {args.threads} thread(s), median of {args.reps}")
    print("| decoding | sources/s |\n|---|---|")
    for name, values in times.items():
        print(f"| {name} | {len(sources) / statistics.median(values):,.0f} |")


if __name__ == "__main__":
    main()
