"""Real-time factor of streaming speech sessions through ``lstmkit serve``, one and many at a time.

Each locust user is one live client: it opens a session of a forward-only CTC run, sends one
synthesised digit string (a test voice of the digits corpus) as 16-bit PCM binary frames of
``--chunk-ms`` of audio on the session's WebSocket, reads the partial transcript after each
frame and the final one after ``{"end": true}``, and starts over. The server hears the audio
(log-mel features), steps the recurrent stack from the carried state (concurrent sessions'
steps batched) and advances the prefix beam search. Real-time factor per session = the seconds
from the first frame to the final transcript / the audio's seconds (below 1: faster than real
time; a client that sends as fast as it can, so this is the server's processing, not a paced
live stream). One server process on 127.0.0.1, bounded in time.

    python benchmarks/bench_speech_sessions.py CTC_RUN [--sessions 1 16] [--seconds 20] [--chunk-ms 500]
"""

from __future__ import annotations

from bench_serve import TOKEN, served  # noqa: I001 - gevent's monkey patching first

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402
import numpy as np  # noqa: E402
from locust import User, constant, events, task  # noqa: E402
from locust.env import Environment  # noqa: E402

SETTINGS: dict = {}
FACTORS: list[float] = []


class SpeechUser(User):
    wait_time = constant(0)

    @task
    def utterance(self):
        import httpx
        from websockets.sync.client import connect
        pcm, chunk = SETTINGS["pcm"][self.environment.runner.user_count % len(SETTINGS["pcm"])], SETTINGS["chunk"]
        start, error = time.perf_counter(), None
        try:
            answer = httpx.post(f"{self.host}/v1/models/{SETTINGS['model']}/sessions", json={},
                                headers=SETTINGS["headers"], timeout=60)
            sid = answer.json()["session"]
            url = self.host.replace("http", "ws", 1) + f"/v1/sessions/{sid}/stream"
            with connect(url, additional_headers=SETTINGS["headers"], open_timeout=60) as socket:
                start = time.perf_counter()
                for at in range(0, len(pcm), chunk):
                    socket.send(pcm[at:at + chunk].tobytes())
                    if "error" in json.loads(socket.recv(timeout=60)):
                        raise RuntimeError("a step was refused")
                socket.send(json.dumps({"end": True}))
                final = json.loads(socket.recv(timeout=60))
                if not final.get("final"):
                    raise RuntimeError(f"no final transcript: {final}")
            elapsed = time.perf_counter() - start
            FACTORS.append(elapsed / (len(pcm) / SETTINGS["rate"]))
            httpx.delete(f"{self.host}/v1/sessions/{sid}", headers=SETTINGS["headers"], timeout=60)
        except Exception as exc:                        # a failure is counted, the load goes on
            error = exc
        events.request.fire(request_type="WS", name="utterance", response_time=1000 * (time.perf_counter() - start),
                            response_length=len(pcm), exception=error, context={})


def _measure(host: str, sessions: int, seconds: float) -> dict:
    environment = Environment(user_classes=[SpeechUser], host=host, events=events)
    runner = environment.create_local_runner()
    runner.start(sessions, spawn_rate=sessions)
    while runner.user_count < sessions:
        gevent.sleep(0.05)
    gevent.sleep(2.0)
    environment.stats.reset_all()
    FACTORS.clear()
    gevent.sleep(seconds)
    runner.quit()
    entry = environment.stats.entries[("utterance", "WS")]
    factors = sorted(FACTORS)
    return {"sessions": sessions, "utterances": len(factors), "failures": entry.num_failures,
            "rtf_p50": statistics.median(factors) if factors else float("nan"),
            "rtf_p90": factors[int(0.9 * (len(factors) - 1))] if factors else float("nan")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="run directory of a forward-only CTC run on audio (configs/ctc_digits_streaming.yaml)")
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per row")
    parser.add_argument("--chunk-ms", type=int, default=500, help="audio per WebSocket frame")
    parser.add_argument("--utterances", type=int, default=8, help="distinct test utterances the clients send")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the server")
    args = parser.parse_args(argv)
    from lstmkit.data.speech import SAMPLE_RATE, DigitsRecipe, synthesize
    recipe = DigitsRecipe(train=1, valid=1, test=args.utterances, seed=0)
    pcm = [(np.clip(synthesize(u), -1, 1 - 2 ** -15) * 32768).astype("<i2") for u in recipe.utterances()["test"]]
    SETTINGS.update(model=Path(args.run).name, headers={"Authorization": f"Bearer {TOKEN}"}, pcm=pcm,
                    chunk=SAMPLE_RATE * args.chunk_ms // 1000, rate=SAMPLE_RATE)
    rows = []
    with served(str(Path(args.run).resolve()), max_batch=64, threads=args.threads) as host:
        for sessions in args.sessions:
            rows.append(_measure(host, sessions, args.seconds))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    seconds = statistics.mean(len(p) / SAMPLE_RATE for p in pcm)
    print(f"server: 1 process, {args.threads} torch thread(s), batching on; {args.chunk_ms} ms frames; utterances "
          f"of {seconds:.1f} s on average; {args.seconds:g} s per row")
    print("| concurrent sessions | utterances | real-time factor p50 | p90 | failures |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['sessions']} | {r['utterances']} | {r['rtf_p50']:.3f} | {r['rtf_p90']:.3f} | {r['failures']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
