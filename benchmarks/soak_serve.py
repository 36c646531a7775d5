"""Soak test of ``lstmkit serve``: sessions open, step and are abandoned for ``--minutes``, so
that idle expiry has to reclaim them; the server's resident memory is sampled every
``--every`` seconds. A server that leaks sessions or buffers grows; a sound one stays flat.
On 127.0.0.1 only; stops by itself.

    python benchmarks/soak_serve.py RUN_DIR [--minutes 10] [--clients 8] [--idle-timeout 5]
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

TOKEN = "soak-token-" + "x" * 24
WORDS = "the company said it expects to report a loss in the third quarter".split()


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _client(url: str, model: str, stop: threading.Event, counts: dict, lock: threading.Lock) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
        n = 0
        while not stop.is_set():
            n += 1
            answer = http.post(f"/v1/models/{model}/sessions", json={"start": {"prefix": " ".join(WORDS[:5])}})
            key = str(answer.status_code)
            if answer.status_code == 201:
                sid = answer.json()["session"]
                for i in range(20):
                    step = {"text": WORDS[i % len(WORDS)]} if i % 4 else {"generate": 5, "seed": i}
                    key = str(http.post(f"/v1/sessions/{sid}/steps", json={"steps": [step]}).status_code)
                if n % 2:                                    # half are closed, half left to expire
                    http.delete(f"/v1/sessions/{sid}")
            with lock:
                counts[key] = counts.get(key, 0) + 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="run directory of a language model")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--idle-timeout", type=int, default=5)
    parser.add_argument("--every", type=float, default=30.0, help="seconds between memory samples")
    args = parser.parse_args(argv)
    run = Path(args.run).resolve()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as folder:
        token_file = Path(folder) / "token"
        token_file.write_text(TOKEN + "\n")
        token_file.chmod(0o600)
        server = subprocess.Popen([sys.executable, "-m", "lstmkit", "serve", str(run), "--port", str(port),
                                   "--token-file", str(token_file), "--idle-timeout", str(args.idle_timeout)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(1200):
                try:
                    if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            stop, lock, counts = threading.Event(), threading.Lock(), {}
            threads = [threading.Thread(target=_client, args=(url, run.name, stop, counts, lock))
                       for _ in range(args.clients)]
            for t in threads:
                t.start()
            start, samples = time.monotonic(), []
            while time.monotonic() - start < 60 * args.minutes:
                time.sleep(args.every)
                active = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
                sessions = next(float(line.split()[-1]) for line in active.splitlines()
                                if line.startswith("lstmkit_active_sessions "))
                samples.append((time.monotonic() - start, _rss_mib(server.pid), sessions))
                print(f"{samples[-1][0]:6.0f} s  RSS {samples[-1][1]:7.1f} MiB  sessions {sessions:.0f}  "
                      f"answers {dict(sorted(counts.items()))}", flush=True)
            stop.set()
            for t in threads:
                t.join()
        finally:
            server.terminate()
            server.wait(timeout=60)
    first, last = samples[0][1], samples[-1][1]
    print(f"{args.minutes:g} min, {args.clients} clients, idle timeout {args.idle_timeout} s: RSS {first:.1f} -> "
          f"{last:.1f} MiB (max {max(s[1] for s in samples):.1f}); session rounds by last status "
          f"{dict(sorted(counts.items()))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
