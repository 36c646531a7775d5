"""A Python client of ``lstmkit serve`` (httpx).

>>> client = Client("http://127.0.0.1:8000", token="...")               # doctest: +SKIP
>>> client.predict("RUN_NAME", [{"text": "a triumph"}])  # doctest: +SKIP
[{'label': 'fresh', ...}]
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx

__all__ = ["Client", "ServerError"]


class ServerError(RuntimeError):
    """An answer other than 2xx: ``status`` and the server's ``detail``."""

    def __init__(self, status: int, detail: Any):
        self.status, self.detail = status, detail
        super().__init__(f"lstmkit serve answered {status}: {detail}")


class Client:
    """Calls of one server with one token; a context manager (the connection pool is closed at exit)."""

    def __init__(self, url: str, token: str, *, timeout: float = 30.0, transport: httpx.BaseTransport | None = None):
        self._timeout = timeout
        self._http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout,
                                  transport=transport)

    def _call(self, method: str, path: str, **kwargs) -> Any:
        response = self._http.request(method, path, **kwargs)
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise ServerError(response.status_code, detail)
        return response.json()

    def ready(self) -> bool:
        return self._http.get("/readyz").status_code == 200

    def models(self) -> list[dict]:
        """The served models with their input and output schemas."""
        return self._call("GET", "/v1/models")["models"]

    def predict(self, model: str, records: list) -> list[dict]:
        """One prediction per record (each as ``lstmkit predict`` reads a JSON line)."""
        return self._call("POST", f"/v1/models/{model}/predict", json={"records": records})["predictions"]

    def open_session(self, model: str, *, start: dict | None = None, state: dict | None = None) -> str:
        """A new session of ``model`` (its id): started from ``start`` (the task's session start,
        e.g. ``{"prefix": "the company"}``), or resumed from an exported ``state``."""
        body = {"start": start or {}} if state is None else {"state": state}
        return self._call("POST", f"/v1/models/{model}/sessions", json=body)["session"]

    def steps(self, session: str, steps: list[dict]) -> list[dict]:
        """Run step records in a session, in order: one output each."""
        return self._call("POST", f"/v1/sessions/{session}/steps", json={"steps": steps})["outputs"]

    def export_session(self, session: str) -> dict:
        """A session's state (``{"model", "state"}``), for :meth:`open_session` on another replica."""
        return self._call("GET", f"/v1/sessions/{session}/state")

    def close_session(self, session: str) -> None:
        response = self._http.delete(f"/v1/sessions/{session}")
        if response.status_code >= 400:
            raise ServerError(response.status_code, response.json().get("detail"))

    @contextmanager
    def stream(self, session: str) -> Iterator[Callable[[dict], dict]]:
        """A WebSocket to a session: ``with client.stream(sid) as step: step({"generate": 5})``
        sends a step record and returns its output (``ServerError`` for a refused record)."""
        from websockets.sync.client import connect
        url = str(self._http.base_url).replace("http", "ws", 1).rstrip("/") + f"/v1/sessions/{session}/stream"
        with connect(url, additional_headers={"Authorization": self._http.headers["Authorization"]},
                     open_timeout=self._timeout) as socket:
            def step(record: dict) -> dict:
                socket.send(json.dumps(record))
                answer = json.loads(socket.recv(timeout=self._timeout))
                if "error" in answer and "status" in answer:
                    raise ServerError(answer["status"], answer["error"])
                return answer
            yield step

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
