"""The xLSTM's cells against NX-AI's ``xlstm`` package, training (forward + backward), float32.

- sLSTM: lstmkit's engine kernel against xlstm's vanilla PyTorch backend (the one that runs off
  CUDA) on the same weights; xlstm's cell takes the input's projection, so its timing includes
  ``x W_ih^T`` as lstmkit's does.
- mLSTM: lstmkit's chunkwise form against its own step loop and against xlstm's chunkwise and
  parallel (quadratic) backends at growing T; and the peak memory of one training step at
  T 4,096, B 8, H 256 (4 heads), measured in a fresh process each.

Medians of interleaved repetitions.

    python benchmarks/bench_xlstm.py [--threads 2] [--reps 5] [--skip-memory]
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys

import torch

import lstmkit
from lstmkit import cells
from timing import interleaved_medians

SLSTM_SHAPES = [(256, 32, 128, 128, 4), (100, 64, 128, 256, 4), (1000, 8, 64, 64, 4)]   # T, B, I, H, heads
MLSTM_LENGTHS = [64, 256, 1024]
MLSTM_SHAPE = (8, 64, 128, 4)                                                             # B, I, H, heads


def _train_step(forward, parameters):
    def call():
        for p in parameters:
            p.grad = None
        forward().sum().backward()
    return call


def _xlstm_slstm(ours):
    from xlstm.blocks.slstm.cell import sLSTMCell, sLSTMCellConfig
    H, K = ours.hidden_size, ours.heads
    d = H // K
    config = sLSTMCellConfig(hidden_size=H, num_heads=K, backend="vanilla", dtype="float32", input_shape="BSGNH",
                             output_shape="BSH", enable_automatic_mixed_precision=False)
    theirs = sLSTMCell(config)
    with torch.no_grad():
        theirs._recurrent_kernel_.copy_(ours.weight_hh.permute(1, 0, 2, 3).reshape(K, 4 * d, d))
        theirs._bias_.copy_(ours.bias)
    return theirs


def slstm_rows(reps: int) -> None:
    print("| T, B, I, H, heads | lstmkit ms | xlstm vanilla ms | xlstm / lstmkit |")
    print("|---|---:|---:|---:|")
    for T, B, I, H, K in SLSTM_SHAPES:
        torch.manual_seed(0)
        cell = cells.make("slstm", I, H, heads=K)
        layer = lstmkit.Recurrent(cell)
        theirs = _xlstm_slstm(cell)
        x = torch.randn(B, T, I)
        ours_call = _train_step(lambda: layer(x)[0], list(cell.parameters()))
        theirs_call = _train_step(lambda: theirs(x @ cell.weight_ih.T)[0],
                                  [cell.weight_ih, *theirs.parameters()])
        a, b = interleaved_medians(ours_call, theirs_call, reps=reps, calls=1, warmup=1)
        print(f"| {T}, {B}, {I}, {H}, {K} | {1e3 * a:.1f} | {1e3 * b:.1f} | {b / a:.1f} |", flush=True)


def mlstm_rows(reps: int) -> None:
    from xlstm.blocks.mlstm import backends
    B, I, H, K = MLSTM_SHAPE
    print(f"\nmLSTM, B {B}, I {I}, H {H}, {K} heads, chunk 64")
    print("| T | chunkwise ms | step loop ms | loop / chunkwise | xlstm chunkwise ms | xlstm parallel ms |")
    print("|---:|---:|---:|---:|---:|---:|")
    for T in MLSTM_LENGTHS:
        torch.manual_seed(0)
        cell = cells.make("mlstm", I, H, heads=K)
        x = torch.randn(B, T, I)
        params = list(cell.parameters())
        chunkwise = _train_step(lambda: lstmkit.Recurrent(cell)(x)[0], params)
        loop = _train_step(lambda: lstmkit.Recurrent(cell, engine="reference")(x)[0], params)

        def theirs(backend, gate_shape):
            """xlstm's backend on the same projection; its gates as it takes them: (B, K, T) or (B, K, T, 1)."""
            def forward():
                q, k, v, o, i, f = cell._split(torch.nn.functional.linear(x, cell.weight_ih, cell.bias))
                heads = [t.transpose(1, 2) for t in (q, k * math.sqrt(H // K), v)]
                gates = [t.transpose(1, 2).reshape(gate_shape) for t in (i, f)]
                h = backend(*heads, *gates)
                return torch.sigmoid(o) * h.reshape(B, K, T, -1).transpose(1, 2)
            return _train_step(forward, params)

        chunked = theirs(lambda *a: backends.chunkwise_simple(*a, chunk_size=64), (B, K, T))
        parallel = theirs(backends.parallel_stabilized_simple, (B, K, T, 1))
        c, lp = interleaved_medians(chunkwise, loop, reps=reps, calls=1, warmup=1)
        c2, tc = interleaved_medians(chunkwise, chunked, reps=reps, calls=1, warmup=1)
        c3, tp = interleaved_medians(chunkwise, parallel, reps=reps, calls=1, warmup=1)
        c = min(c, c2, c3)
        print(f"| {T} | {1e3 * c:.1f} | {1e3 * lp:.1f} | {lp / c:.1f} | {1e3 * tc:.1f} | {1e3 * tp:.1f} |", flush=True)


# the peak resident memory of this process (VmHWM, kiB: unlike getrusage's ru_maxrss it is not
# inherited from the parent through fork and exec)
MEMORY_PROBE = """
import json, re, sys, torch, lstmkit
from lstmkit import cells
def peak():
    with open("/proc/self/status") as status:
        return int(re.search(r"VmHWM:\\s+(\\d+)", status.read()).group(1))
T, engine = int(sys.argv[1]), sys.argv[2]
torch.manual_seed(0)
cell = cells.make("mlstm", 256, 256, heads=4)
x = torch.randn(8, T, 256, requires_grad=True)
before = peak()
y, _ = lstmkit.Recurrent(cell, engine=engine)(x)
y.square().mean().backward()
print(json.dumps({"before": before, "peak": peak()}))
"""


def memory_rows() -> None:
    print("\nmLSTM training step's peak memory above the process before it (MiB), B 8, I 256, H 256, 4 heads")
    print("| T | chunkwise | step loop |")
    print("|---:|---:|---:|")
    for T in (1024, 4096):
        row = []
        for engine in ("auto", "reference"):
            if engine == "reference" and T > 1024:
                row.append("not run (over 3 GiB)")
                continue
            out = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(T), engine], capture_output=True, text=True,
                                 check=True)
            probe = json.loads(out.stdout.strip().splitlines()[-1])
            row.append(f"{(probe['peak'] - probe['before']) / 1024:.0f}")
        print(f"| {T} | {row[0]} | {row[1]} |", flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"forward + backward, float32, {args.threads} threads, median of {args.reps} interleaved repetitions")
    slstm_rows(args.reps)
    mlstm_rows(args.reps)
    if not args.skip_memory:
        memory_rows()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
