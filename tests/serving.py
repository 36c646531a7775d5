"""A served set of runs for the server's tests: bearer token, a real ``lstmkit serve`` process."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from lstmkit.serve import Client

TOKEN = "a-test-token-of-32-characters-xx"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """``lstmkit serve RUN`` in a child process on a free loopback port, and a client of it; at
    exit the server gets SIGTERM and ``stderr`` holds what it wrote."""

    def __init__(self, run: Path | list[Path], token_file: Path, *options: str):
        self.runs = run if isinstance(run, list) else [run]
        self.token_file, self.options, self.stderr = token_file, options, ""

    def __enter__(self) -> Client:
        port = free_port()
        command = [sys.executable, "-m", "lstmkit", "serve", *map(str, self.runs), "--port", str(port), "--token-file",
                   str(self.token_file), *self.options]
        self.process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True,
                                        env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.client = Client(self.url, TOKEN, timeout=60)
        deadline = time.monotonic() + 120                           # a loaded CI machine starts it slowly
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited with status {self.process.returncode}: "
                                     f"{self.process.stderr.read()[-2000:]}")
            try:
                if self.client.ready():
                    return self.client
            except Exception:
                time.sleep(0.1)
        raise AssertionError("the server did not become ready in 120 s")

    def __exit__(self, *exc) -> None:
        self.client.close()
        self.process.terminate()
        _, self.stderr = self.process.communicate(timeout=60)


def token_file(folder: Path) -> Path:
    path = folder / "tokens"
    path.write_text(TOKEN + "\n")
    path.chmod(0o600)
    return path


def infer(run: Path, inputs: list[dict]) -> dict:
    """``POST /v2/models/NAME/infer`` of ``run`` served in-process: its outputs by name."""
    from fastapi.testclient import TestClient

    from lstmkit.serve import create_app, load_models
    models = load_models([run])
    with TestClient(create_app(models, [TOKEN])) as client:
        answer = client.post(f"/v2/models/{next(iter(models))}/infer", json={"inputs": inputs},
                             headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200, answer.text
    return {o["name"]: o["data"] for o in answer.json()["outputs"]}
