"""A global forecaster's session update (one new observation -> the new forecast quantiles)
against re-running ``predict`` on the whole history, at a history of 500 observations; medians of
interleaved repetitions, in process (no HTTP), on any ``global_forecast`` run given: one that
reads a window (``configs/global_forecast_m3.yaml``: an update reads the window again) or whole
histories (``configs/global_forecast_m3_whole.yaml``: an update steps the carried state once).

    python benchmarks/bench_global_sessions.py RUN [--history 500] [--threads 1]
"""

from __future__ import annotations

import argparse
import asyncio
import threading

import numpy as np
import torch

from lstmkit.runs import load_run
from lstmkit.runs.stream import opens
from timing import interleaved_medians


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--history", type=int, default=500)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    run = load_run(args.run)
    stream = opens(run, threading.Lock())
    fitted = run.fitted
    group = next(iter(fitted.groups))
    rng = np.random.default_rng(0)
    values = (100 + 10 * rng.random(args.history + 1)).tolist()
    static = {name: known[0] for name, known in fitted.static.items() if name != "group"}
    record = {"history": values[:args.history], "start": 1, "group": group, "static": static}

    async def submit(state, item):
        return stream.advance([state], [item])[0]

    loop = asyncio.new_event_loop()                   # one loop, as the server's sessions run in
    state, _ = loop.run_until_complete(stream.start(stream.start_input.model_validate(record), submit))
    step = stream.step_input.model_validate({"values": values[args.history:]})
    whole = {**record, "history": values}

    def update():
        return loop.run_until_complete(stream.update(state, step, submit))

    def predict():
        return run.predict([whole])

    np.testing.assert_allclose(update()[1]["forecast"], predict()[0]["forecast"], rtol=1e-5)
    ours, theirs = interleaved_medians(update, predict, reps=args.reps, calls=50, warmup=5)
    reads = f"window {fitted.window}" if fitted.context == "window" else f"whole histories, anchor {fitted.anchor}"
    print(f"history {args.history}, {reads}, {type(stream).__name__}, {args.threads} thread(s): session update "
          f"{ours * 1e3:.2f} ms, predict on the whole history {theirs * 1e3:.2f} ms: {theirs / ours:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
