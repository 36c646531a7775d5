"""Data-parallel training against one process on the same machine: ``lstmkit train CONFIG`` with
P processes of T threads each and a batch of b per process, against one process with P·T
threads and a batch of P·b (the same global batches, so the same model: see
tests/test_distributed.py). Interleaved repetitions, the median of each side's training time
(``train_seconds`` of the run: its epochs, validation and checkpoints), and the ratio.

    python benchmarks/bench_ddp.py CONFIG [--processes 2] [--threads 1] [--reps 3] [--set KEY=VALUE ...]

The batch size b is the config's ``data.batch_size`` (after ``--set``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from lstmkit.cli.arguments import positive_int
from lstmkit.runs.config import config_yaml
from lstmkit.runs import load_config


def _train(config: Path, run_dir: Path, overrides: list[str]) -> dict:
    command = [sys.executable, "-m", "lstmkit", "train", str(config), "--run-dir", str(run_dir)]
    for override in overrides:
        command += ["--set", override]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"bench_ddp: {' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return json.loads((run_dir / "metrics.json").read_text())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path, help="a run config (YAML)")
    parser.add_argument("--processes", type=positive_int, default=2, help="processes of the data-parallel side")
    parser.add_argument("--threads", type=positive_int, default=1, help="torch threads per process")
    parser.add_argument("--reps", type=positive_int, default=3, help="interleaved repetitions (median taken)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config overrides for both sides")
    args = parser.parse_args(argv)
    config = load_config(args.config, args.overrides)
    b, P, T = config.data.batch_size, args.processes, args.threads
    sides = {f"1 process x {P * T} threads, batch {P * b}": [f"data.batch_size={P * b}", f"trainer.threads={P * T}"],
             f"{P} processes x {T} threads, batch {b} each": [f"trainer.devices={P}", f"trainer.threads={T}"]}
    seconds = {side: [] for side in sides}
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "config.yaml"
        base.write_text(config_yaml(config) + "\n")
        for rep in range(args.reps):
            for k, (side, overrides) in enumerate(sides.items()):
                metrics = _train(base, Path(tmp) / f"run-{rep}-{k}", ["trainer.progress_bar=false", *overrides])
                seconds[side].append(metrics["train_seconds"])
                results[side] = metrics
                print(f"  rep {rep + 1}, {side}: {metrics['train_seconds']:.1f} s", file=sys.stderr)
    print(f"{args.config} ({config.task}, {config.optim.epochs} epochs), median of {args.reps}")
    print("| side | training s | valid loss | speed-up |")
    print("|---|---|---|---|")
    first = statistics.median(next(iter(seconds.values())))
    for side, values in seconds.items():
        median = statistics.median(values)
        loss = results[side]["valid"].get("loss", float("nan"))
        print(f"| {side} | {median:.1f} | {loss:.6g} | {first / median:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
