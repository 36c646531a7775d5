"""Benchmark every cell of lstmkit against ``torch.nn.LSTM`` (and ``nn.GRU``/``nn.RNN``).

For each shape (T, B, I, H) every model runs forward (no grad, "inference") and forward +
backward ("training") in float32, interleaved in one process: each repetition times every
model once, in turn, so slow phases of a noisy machine hit all of them alike. The figures are
medians over the repetitions after warm-up, and ratios of medians against ``torch.nn.LSTM`` on
the same shape. Memory is what autograd keeps for the backward pass (the saved tensors, the
part of training memory that grows with T·B), measured with saved-tensor hooks.

    lstmkit bench [--shapes 100,64,128,256 ...] [--cells lstm gru ...] [--reps 7] [--threads 2]
    python benchmarks/bench_engine.py  (the same)
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence

import torch
from torch import nn

import lstmkit
from lstmkit import cells
from lstmkit.cli.arguments import non_negative_int, positive_int

__all__ = ["SHAPES", "run", "format_table", "main"]

#: (T, B, I, H) of the issue: large, long, small and very long/narrow.
SHAPES = [(100, 64, 128, 256), (500, 32, 64, 128), (50, 16, 32, 64), (1000, 8, 8, 64)]
TORCH_BASELINES = {"gru": nn.GRU, "elman": nn.RNN}


def _saved_bytes(fn: Callable[[], torch.Tensor]) -> int:
    """Bytes of the distinct storages autograd saves for backward while ``fn`` builds its graph."""
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor):
        if t.device.type == "cpu" and t.numel():
            st = t.untyped_storage()
            storages[st.data_ptr()] = st.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    del out
    return sum(storages.values())


def fast_cells() -> list[str]:
    """The registered cells with a fast form (an engine kernel, or the minimal RNNs' compiled
    scan): what the benchmark times unless told otherwise."""
    out = []
    for name in cells.names():
        try:
            lstmkit.Recurrent(cells.make(name, 2, 2), engine="fast")
        except (ValueError, RuntimeError):          # a reference-only cell, or no engine at all
            continue
        out.append(name)
    return out


def _models(shape, names: Sequence[str]) -> dict[str, nn.Module]:
    T, B, I, H = shape
    torch.manual_seed(0)
    models: dict[str, nn.Module] = {"nn.LSTM": nn.LSTM(I, H, batch_first=True)}
    for name in names:
        if name in TORCH_BASELINES and f"nn.{TORCH_BASELINES[name].__name__}" not in models:
            models[f"nn.{TORCH_BASELINES[name].__name__}"] = TORCH_BASELINES[name](I, H, batch_first=True)
        models[name] = lstmkit.Recurrent(cells.make(name, I, H), engine="fast")
    return models


def run(shapes: Sequence[tuple[int, int, int, int]] = SHAPES, names: Sequence[str] | None = None, *,
        reps: int = 7, warmup: int = 2, threads: int | None = 2, progress: Callable[[str], None] | None = None
        ) -> list[dict]:
    """Time every model on every shape; one row per (shape, model) with medians, ratios and memory."""
    names = list(names or fast_cells())
    if threads:
        torch.set_num_threads(threads)
    rows = []
    for shape in shapes:
        T, B, I, H = shape
        models = _models(shape, names)
        x = torch.randn(B, T, I)

        def infer(m):
            with torch.no_grad():
                m(x)

        def train(m):
            xx = x.detach().requires_grad_()
            y = m(xx)[0]
            y.sum().backward()

        times = {(name, mode): [] for name in models for mode in ("infer", "train")}
        for rep in range(warmup + reps):
            for name, m in models.items():
                for mode, fn in (("infer", infer), ("train", train)):
                    start = time.perf_counter()
                    fn(m)
                    if rep >= warmup:
                        times[name, mode].append(time.perf_counter() - start)
            if progress:
                progress(f"shape {shape}: repetition {rep + 1}/{warmup + reps}")
        memory = {name: _saved_bytes(lambda m=m: m(x.detach().requires_grad_())[0]) for name, m in models.items()}
        med = {k: statistics.median(v) for k, v in times.items()}
        for name in models:
            base = f"nn.{TORCH_BASELINES[name].__name__}" if name in TORCH_BASELINES else None
            rows.append({
                "shape": shape, "model": name,
                "infer_ms": 1e3 * med[name, "infer"], "train_ms": 1e3 * med[name, "train"],
                "infer_vs_lstm": med[name, "infer"] / med["nn.LSTM", "infer"],
                "train_vs_lstm": med[name, "train"] / med["nn.LSTM", "train"],
                "train_vs_torch_same": (med[name, "train"] / med[base, "train"]) if base else None,
                "saved_mb": memory[name] / 2**20, "saved_vs_lstm": memory[name] / memory["nn.LSTM"],
            })
    return rows


def format_table(rows: list[dict]) -> str:
    """A markdown table of :func:`run`'s rows."""
    head = ("| shape (T,B,I,H) | model | inference ms | training ms | inference / nn.LSTM | training / nn.LSTM "
            "| training / same nn | saved MB (/ nn.LSTM) |\n|---|---|---:|---:|---:|---:|---:|---:|")
    lines = [head]
    for r in rows:
        same = f"{r['train_vs_torch_same']:.2f}" if r["train_vs_torch_same"] is not None else ""
        lines.append(f"| {','.join(map(str, r['shape']))} | {r['model']} | {r['infer_ms']:.1f} | {r['train_ms']:.1f} "
                     f"| {r['infer_vs_lstm']:.2f} | {r['train_vs_lstm']:.2f} | {same} "
                     f"| {r['saved_mb']:.1f} ({r['saved_vs_lstm']:.2f}) |")
    return "\n".join(lines)


def _shape(text: str) -> tuple[int, int, int, int]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 4 or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected T,B,I,H as four positive ints, got {text!r}")
    return values  # type: ignore[return-value]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lstmkit bench", description=__doc__.split("\n\n")[0],
                                     epilog="example: lstmkit bench --cells lstm gru --shapes 50,16,32,64 --reps 9")
    parser.add_argument("--shapes", nargs="+", type=_shape, default=SHAPES, metavar="T,B,I,H",
                        help="shapes to time (default: the four of the performance guide's table)")
    parser.add_argument("--cells", nargs="+", choices=cells.names(), default=None, metavar="CELL",
                        help="cells to time (default: every cell with a fast form)")
    parser.add_argument("--reps", type=positive_int, default=7, help="timed repetitions per model (default 7)")
    parser.add_argument("--warmup", type=non_negative_int, default=2, help="untimed repetitions first (default 2)")
    parser.add_argument("--threads", type=positive_int, default=2, help="torch.set_num_threads (default 2)")
    args = parser.parse_args(argv)
    if args.reps < 1:
        parser.error("--reps must be at least 1")
    from . import _engine
    if _engine.load() is None:
        parser.exit(1, f"lstmkit bench: the fast engine is unavailable ({_engine.load_error()})\n")
    started = time.perf_counter()
    rows = run(args.shapes, args.cells, reps=args.reps, warmup=args.warmup, threads=args.threads,
               progress=lambda msg: print(msg, flush=True))
    print(format_table(rows))
    print(f"\n{args.reps} timed repetitions after {args.warmup} warm-up, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}, {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
