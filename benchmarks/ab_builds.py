"""Two checkouts of lstmkit timed call by call: is an engine change faster, slower or neither?

Whole benchmark runs on a noisy machine drift by more than most engine changes (the same build
20-30% apart an hour later), and a ratio to ``nn.LSTM`` in each run takes out only part of it.
Here each checkout runs in a worker process of its own (its own extension build), and every
forward + backward call of one is followed by the same call of the other, order alternating;
the figure is the median of the paired ratios, new / old.

    python benchmarks/ab_builds.py OLD_TREE NEW_TREE [--cells lstm gru] [--shapes T,B,I,H ...] [--pairs 15]

A tree is a checkout's root (``git worktree add /tmp/old HEAD~1``). The first call of each
worker builds its extension (a minute or two).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHAPES = ["100,64,128,256", "500,32,64,128", "50,16,32,64", "1000,8,8,64"]
CELLS = ["lstm", "elman", "gru", "gru_cho"]


def worker() -> None:
    """Read ``CELL T,B,I,H`` lines; answer each with the seconds of one forward + backward call."""
    import torch

    import lstmkit
    from lstmkit import cells
    torch.set_num_threads(int(os.environ.get("AB_THREADS", "2")))
    made = {}
    print("ready", flush=True)
    for line in sys.stdin:
        name, shape = line.split()
        if (name, shape) not in made:
            T, B, I, H = (int(v) for v in shape.split(","))
            torch.manual_seed(0)
            layer = lstmkit.Recurrent(cells.make(name, I, H), engine="fast")
            x = torch.randn(B, T, I, requires_grad=True)

            def call(layer=layer, x=x):
                y, _ = layer(x)
                y.sum().backward()
            call()
            call()
            made[(name, shape)] = call
        start = time.perf_counter()
        made[(name, shape)]()
        print(time.perf_counter() - start, flush=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("old", type=Path, help="the checkout before the change")
    parser.add_argument("new", type=Path, help="the checkout after it")
    parser.add_argument("--cells", nargs="+", default=CELLS)
    parser.add_argument("--shapes", nargs="+", default=SHAPES, metavar="T,B,I,H")
    parser.add_argument("--pairs", type=int, default=15, help="paired calls per cell and shape (default 15)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads per worker (default 2)")
    args = parser.parse_args(argv)
    workers = {}
    for label, tree in (("old", args.old), ("new", args.new)):
        env = dict(os.environ, PYTHONPATH=str(tree.resolve()), AB_THREADS=str(args.threads),
                   TORCH_EXTENSIONS_DIR=tempfile.mkdtemp(prefix=f"lstmkit-ab-{label}-"))
        workers[label] = subprocess.Popen([sys.executable, __file__, "--worker"], stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, text=True, env=env)
    for process in workers.values():
        if process.stdout.readline().strip() != "ready":
            raise SystemExit("ab_builds: a worker did not start (see its error above)")

    def timed(label: str, name: str, shape: str) -> float:
        workers[label].stdin.write(f"{name} {shape}\n")
        workers[label].stdin.flush()
        return float(workers[label].stdout.readline())

    ratios = []
    print("| shape | cell | old ms | new ms | new / old |\n|---|---|---:|---:|---:|")
    for shape in args.shapes:
        for name in args.cells:
            old, new = [], []
            for i in range(args.pairs):
                order = ("old", "new") if i % 2 == 0 else ("new", "old")
                times = {label: timed(label, name, shape) for label in order}
                old.append(times["old"])
                new.append(times["new"])
            ratio = statistics.median(b / a for a, b in zip(old, new))
            ratios.append(ratio)
            print(f"| {shape} | {name} | {statistics.median(old) * 1e3:.2f} | {statistics.median(new) * 1e3:.2f} "
                  f"| {ratio:.3f} |", flush=True)
    print(f"\nnew / old: median {statistics.median(ratios):.3f}, range {min(ratios):.2f}-{max(ratios):.2f} "
          f"over {len(ratios)} cases")
    for process in workers.values():
        process.stdin.close()
        process.wait()
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--worker"]:
        worker()
    else:
        sys.exit(main(sys.argv[1:]))
