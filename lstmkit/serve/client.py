"""A Python client of ``lstmkit serve`` (httpx).

>>> client = Client("http://127.0.0.1:8000", token="...")               # doctest: +SKIP
>>> client.predict("sentiment-rotten_tomatoes-...", [{"text": "a triumph"}])  # doctest: +SKIP
[{'label': 'fresh', ...}]
"""

from __future__ import annotations

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

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
