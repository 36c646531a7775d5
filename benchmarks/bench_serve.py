"""Load benchmark of ``lstmkit serve`` with locust: streaming sessions against a stateless
server that re-reads each session's whole text at every step, on 127.0.0.1 only, bounded in
time.

For each number of concurrent sessions (``--sessions``), locust users each hold one session
of a language model and send one step (one word read, its log-probability returned) after the
other, with no pause:

- ``stream``: ``POST /v1/sessions/ID/steps``, one recurrent step from the session's state;
- ``websocket``: the same step as one message on the session's WebSocket;
- ``stateless P``: ``POST /v1/models/NAME/predict`` with the session's last P words, the
  prefix a stateless server re-reads at every step (PyTorch serving without session state).

Each runs for ``--seconds``, once against a server that batches concurrent sessions' steps
(``--max-batch 64``) and once against one that runs them one by one (``--max-batch 1``).
Reported: step latency percentiles (p50, p95, p99, ms), steps per second, failures. The floor
is the in-process cost of the same step (``LanguageModel.step`` at batch 1, no HTTP).

    python benchmarks/bench_serve.py RUN_DIR [--sessions 1 16 64 256] [--seconds 10] [--prefixes 100 1000]
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import contextlib  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402
from locust import HttpUser, User, constant, events, task  # noqa: E402
from locust.env import Environment  # noqa: E402

TOKEN = "bench-token-" + "x" * 24
WORDS = ("the company said it expects to report a loss in the third quarter because of lower sales "
         "and higher costs of its new products").split()
SETTINGS: dict = {}


def _words():
    return itertools.cycle(WORDS)


class StreamUser(HttpUser):
    wait_time = constant(0)

    def on_start(self):
        self.words = _words()
        prefix = " ".join(next(self.words) for _ in range(SETTINGS["prefix"]))
        answer = self.client.post(f"/v1/models/{SETTINGS['model']}/sessions", json={"start": {"prefix": prefix}},
                                  headers=SETTINGS["headers"], name="open")
        self.sid = answer.json()["session"]

    @task
    def step(self):
        self.client.post(f"/v1/sessions/{self.sid}/steps", json={"steps": [{"text": next(self.words)}]},
                         headers=SETTINGS["headers"], name="step")

    def on_stop(self):
        self.client.delete(f"/v1/sessions/{self.sid}", headers=SETTINGS["headers"], name="close")


class StatelessUser(HttpUser):
    wait_time = constant(0)

    def on_start(self):
        self.words = _words()
        self.text = [next(self.words) for _ in range(SETTINGS["prefix"])]

    @task
    def step(self):
        self.text = self.text[1:] + [next(self.words)]
        self.client.post(f"/v1/models/{SETTINGS['model']}/predict", json={"records": [" ".join(self.text)]},
                         headers=SETTINGS["headers"], name="step")


class WebSocketUser(User):
    wait_time = constant(0)

    def on_start(self):
        import httpx
        from websockets.sync.client import connect
        self.words = _words()
        prefix = " ".join(next(self.words) for _ in range(SETTINGS["prefix"]))
        answer = httpx.post(f"{self.host}/v1/models/{SETTINGS['model']}/sessions", json={"start": {"prefix": prefix}},
                            headers=SETTINGS["headers"], timeout=60)
        self.sid = answer.json()["session"]
        url = self.host.replace("http", "ws", 1) + f"/v1/sessions/{self.sid}/stream"
        self.socket = connect(url, additional_headers=SETTINGS["headers"], open_timeout=60)

    @task
    def step(self):
        start = time.perf_counter()
        error = None
        try:
            self.socket.send(json.dumps({"text": next(self.words)}))
            answer = json.loads(self.socket.recv(timeout=60))
            if "error" in answer:
                error = RuntimeError(answer["error"])
        except Exception as exc:                       # a failure is counted, the load goes on
            error = exc
        events.request.fire(request_type="WS", name="step", response_time=1000 * (time.perf_counter() - start),
                            response_length=0, exception=error, context={})

    def on_stop(self):
        self.socket.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def served(run: str | list[str], *, max_batch: int, threads: int):
    """``lstmkit serve`` of ``run`` (one or several run directories) on a free loopback port with
    the token ``TOKEN``, ready; yields its base URL and stops it on leaving."""
    with tempfile.TemporaryDirectory() as folder:
        token_file = Path(folder) / "token"
        token_file.write_text(TOKEN + "\n")
        token_file.chmod(0o600)
        port = _free_port()
        server = _server(run, port, token_file, max_batch, threads)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.terminate()
            server.wait(timeout=60)


def _server(run: str | list[str], port: int, token_file: Path, max_batch: int, threads: int) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    runs = [run] if isinstance(run, str) else run
    server = subprocess.Popen([sys.executable, "-m", "lstmkit", "serve", *runs, "--port", str(port), "--token-file",
                               str(token_file), "--max-batch", str(max_batch), "--max-sessions", "2000"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    import httpx
    for _ in range(600):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        gevent.sleep(0.1)
    server.kill()
    raise RuntimeError("the server did not become ready in 60 s")


def _load(user, host: str, users: int, seconds: float) -> dict:
    environment = Environment(user_classes=[user], host=host, events=events)
    environment.stats.reset_all()
    runner = environment.create_local_runner()
    runner.start(users, spawn_rate=users)
    while runner.user_count < users:
        gevent.sleep(0.05)
    gevent.sleep(1.0)                                 # sessions opened: measure from here
    environment.stats.reset_all()
    start = time.perf_counter()
    gevent.sleep(seconds)
    entry = environment.stats.get("step", "WS" if user is WebSocketUser else "POST")
    elapsed = time.perf_counter() - start
    result = {"steps": entry.num_requests, "failures": entry.num_failures, "steps_per_s": entry.num_requests / elapsed,
              **{f"p{q}": entry.get_response_time_percentile(q / 100) for q in (50, 95, 99)}}
    runner.quit()
    return result


def _floor(run: str) -> float:
    """Steps per second of the same model in process: one token at batch 1 from a carried state."""
    import torch

    from lstmkit.runs import load_run
    torch.set_num_threads(1)
    model = load_run(run).model
    token, state = torch.tensor([0]), None
    with torch.no_grad():
        for _ in range(50):
            _, state = model.step(token, state)
        start = time.perf_counter()
        for _ in range(500):
            _, state = model.step(token, state)
    return 500 / (time.perf_counter() - start)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="run directory of a language model")
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 16, 64, 256])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per configuration")
    parser.add_argument("--prefixes", type=int, nargs="+", default=[100, 1000], help="words a stateless step re-reads")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the server")
    args = parser.parse_args(argv)
    run = str(Path(args.run).resolve())
    SETTINGS.update(model=Path(run).name, headers={"Authorization": f"Bearer {TOKEN}"}, prefix=args.prefixes[0])
    rows = []
    for max_batch in (64, 1):
        with served(run, max_batch=max_batch, threads=args.threads) as host:
            for users in args.sessions:
                forms = [("stream", StreamUser, args.prefixes[0]), ("websocket", WebSocketUser, args.prefixes[0])]
                if max_batch == 1:
                    forms += [(f"stateless {p}", StatelessUser, p) for p in args.prefixes]
                for form, user, prefix in forms:
                    SETTINGS["prefix"] = prefix
                    result = _load(user, host, users, args.seconds)
                    rows.append({"form": form, "batching": max_batch > 1, "sessions": users, **result})
                    print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    floor = _floor(run)
    print(f"server: 1 process, {args.threads} torch thread(s); {args.seconds:g} s per row; floor (in process, one "
          f"step at batch 1): {floor:,.0f} steps/s")
    print("| form | batching | sessions | steps/s | p50 ms | p95 ms | p99 ms | failures |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['form']} | {'yes' if r['batching'] else 'no'} | {r['sessions']} | {r['steps_per_s']:,.0f} | "
              f"{r['p50']:.0f} | {r['p95']:.0f} | {r['p99']:.0f} | {r['failures']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
