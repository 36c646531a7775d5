"""Load benchmark of the protocols real clients speak, beside lstmkit's own routes on the same
models: OpenAI streaming completions against a WebSocket session generating the same tokens, and
the Open Inference Protocol's ``/v2/.../infer`` against ``/v1/.../predict``. One server process
on 127.0.0.1, locust in this process, bounded in time.

- ``openai stream``: ``POST /openai/v1/completions`` with ``stream: true``, ``--tokens`` tokens
  per request; tokens per second over all clients and the time to the first token;
- ``websocket generate``: one ``{"generate": N}`` message per request on a session's WebSocket;
- ``v2 infer`` / ``v1 predict``: one record per request (a classifier's sequence of 20 steps, a
  language model's 20-word text), requests per second and latency percentiles.

    python benchmarks/bench_protocols.py --lm LM_RUN --classifier CLASSIFIER_RUN [--clients 1 16 64] [--seconds 8]
"""

from __future__ import annotations

from bench_serve import TOKEN, WORDS, served  # noqa: I001 - gevent's monkey patching first

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402
import numpy as np  # noqa: E402
from locust import HttpUser, User, constant, events, task  # noqa: E402
from locust.env import Environment  # noqa: E402

SETTINGS: dict = {}
PROMPT = " ".join(WORDS[:6])
TEXT = " ".join(WORDS[:20])


def _fire(name: str, kind: str, seconds: float, error=None, length: int = 0) -> None:
    events.request.fire(request_type=kind, name=name, response_time=1000 * seconds, response_length=length,
                        exception=error, context={})


class OpenAIStreamUser(HttpUser):
    wait_time = constant(0)

    @task
    def complete(self):
        start, first, tokens, error = time.perf_counter(), None, 0, None
        try:
            with self.client.post("/openai/v1/completions", stream=True, catch_response=True, name="openai",
                                  headers=SETTINGS["headers"],
                                  json={"model": SETTINGS["lm"], "prompt": PROMPT, "max_tokens": SETTINGS["tokens"],
                                        "stream": True}) as answer:
                for line in answer.iter_lines():
                    if line.startswith(b"data: {"):
                        tokens += 1
                        first = first or time.perf_counter()
                answer.success()
            tokens = max(tokens - 1, 0)                 # the last chunk carries the finish reason only
        except Exception as exc:                        # a failure is counted, the load goes on
            error = exc
        _fire("first token", "SSE", (first or time.perf_counter()) - start, error)
        _fire("tokens", "SSE", time.perf_counter() - start, error, tokens)


class WebSocketGenerateUser(User):
    wait_time = constant(0)

    def on_start(self):
        import httpx
        from websockets.sync.client import connect
        answer = httpx.post(f"{self.host}/v1/models/{SETTINGS['lm']}/sessions", json={"start": {"prefix": PROMPT}},
                            headers=SETTINGS["headers"], timeout=60)
        url = self.host.replace("http", "ws", 1) + f"/v1/sessions/{answer.json()['session']}/stream"
        self.socket = connect(url, additional_headers=SETTINGS["headers"], open_timeout=60)

    @task
    def generate(self):
        start, error, tokens = time.perf_counter(), None, 0
        try:
            self.socket.send(json.dumps({"generate": SETTINGS["tokens"]}))
            answer = json.loads(self.socket.recv(timeout=60))
            tokens = len(answer.get("tokens", []))
            if "error" in answer:
                error = RuntimeError(answer["error"])
        except Exception as exc:
            error = exc
        _fire("tokens", "WS", time.perf_counter() - start, error, tokens)

    def on_stop(self):
        self.socket.close()


class RequestUser(HttpUser):
    """One stateless request after the other: ``SETTINGS["path"]`` with ``SETTINGS["body"]``."""

    wait_time = constant(0)

    @task
    def request(self):
        self.client.post(SETTINGS["path"], json=SETTINGS["body"], headers=SETTINGS["headers"], name="request")


def _measure(user, host: str, clients: int, seconds: float) -> dict:
    environment = Environment(user_classes=[user], host=host, events=events)
    runner = environment.create_local_runner()
    runner.start(clients, spawn_rate=clients)
    while runner.user_count < clients:
        gevent.sleep(0.05)
    gevent.sleep(1.0)                                   # connections and sessions opened: measure from here
    environment.stats.reset_all()
    start = time.perf_counter()
    gevent.sleep(seconds)
    elapsed = time.perf_counter() - start
    out = {}
    for entry in environment.stats.entries.values():
        out[entry.name] = {"requests": entry.num_requests, "failures": entry.num_failures,
                           "per_s": entry.num_requests / elapsed, "units_per_s": entry.total_content_length / elapsed,
                           **{f"p{q}": entry.get_response_time_percentile(q / 100) for q in (50, 99)}}
    runner.quit()
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lm", required=True, help="run directory of a language model")
    parser.add_argument("--classifier", required=True, help="run directory of a sequence classifier")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per row")
    parser.add_argument("--tokens", type=int, default=20, help="tokens generated per request")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the server")
    args = parser.parse_args(argv)
    lm, classifier = (str(Path(p).resolve()) for p in (args.lm, args.classifier))
    from lstmkit.runs import load_run
    features = load_run(classifier).fitted.features
    x = np.random.default_rng(0).normal(size=(20, features)).round(3)
    SETTINGS.update(lm=Path(lm).name, headers={"Authorization": f"Bearer {TOKEN}"}, tokens=args.tokens)
    requests = {Path(classifier).name: ({"records": [{"x": x.tolist()}]},
                                        {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 20, features],
                                                     "data": x.ravel().tolist()}]}),
                Path(lm).name: ({"records": [TEXT]}, {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1],
                                                                   "data": [TEXT]}]})}
    rows = []
    with served([lm, classifier], max_batch=64, threads=args.threads) as host:
        for clients in args.clients:
            for form, user in (("openai stream", OpenAIStreamUser), ("websocket generate", WebSocketGenerateUser)):
                rows.append({"form": form, "clients": clients, **_measure(user, host, clients, args.seconds)})
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
            for model, (v1, v2) in requests.items():
                for form, path, body in (("v2 infer", f"/v2/models/{model}/infer", v2),
                                         ("v1 predict", f"/v1/models/{model}/predict", v1)):
                    SETTINGS.update(path=path, body=body)
                    rows.append({"form": form, "model": model, "clients": clients,
                                 **_measure(RequestUser, host, clients, args.seconds)})
                    print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    print(f"server: 1 process, {args.threads} torch thread(s), batching on; {args.seconds:g} s per row; "
          f"{args.tokens} tokens per generation request")
    print("| form | model | clients | requests/s | tokens/s | p50 ms | p99 ms | first token p50 / p99 ms | failures |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        entry, first = r.get("tokens") or r.get("request"), r.get("first token")
        tokens = f"{entry['units_per_s']:,.0f}" if "tokens" in r else ""
        latency = f"{first['p50']:.0f} / {first['p99']:.0f}" if first else ""
        print(f"| {r['form']} | {r.get('model', Path(lm).name)} | {r['clients']} | {entry['per_s']:,.1f} | {tokens} | "
              f"{entry['p50']:.0f} | {entry['p99']:.0f} | {latency} | {entry['failures']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
