"""The server's HTTP plumbing: JSON without NaN, the request-body limit, and the access log and
metrics of every request."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from fastapi import Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from ..runs import json_output
from .metrics import Metrics

__all__ = ["FiniteJSON", "BodyLimit", "Refused", "Observe", "http_errors", "access_log"]

access_log = logging.getLogger("lstmkit.serve.access")


class FiniteJSON(JSONResponse):
    """JSON without NaN or Infinity (non-finite figures are null)."""

    def render(self, content: Any) -> bytes:
        return json_output.dumps(content).encode()


class Refused(Exception):
    """A request refused with ``status``, in the error format of the protocol that answers it
    (OpenAI's names the ``param`` and a ``code``; the Open Inference Protocol's the message only)."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code


class BodyLimit:
    """ASGI middleware: 413 for a body over ``limit`` bytes, by its Content-Length or as it streams in."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await self._refuse(send)
        seen = 0
        refused = False

        async def limited_receive():
            nonlocal seen, refused
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit and not refused:
                    refused = True                 # answer now; the application sees the client leave
                    await self._refuse(send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message):
            if not refused:
                await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not refused:
                raise

    async def _refuse(self, send):
        body = json.dumps({"detail": f"request body larger than {self.limit} bytes"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


async def http_errors(request: Request, error: HTTPException):
    """FastAPI's answer to an HTTP error, but a body too deeply nested to parse is a 422 that says
    so (FastAPI answers 400 "There was an error parsing the body" without naming anything)."""
    if isinstance(error.__cause__, RecursionError):
        return FiniteJSON({"detail": [{"type": "json_invalid", "loc": ["body"],
                                       "msg": "JSON nested too deeply to read"}]}, status_code=422)
    return await http_exception_handler(request, error)


class Observe:
    """ASGI middleware: counts, times and logs (one JSON line) every HTTP request. Plain ASGI,
    since Starlette's ``BaseHTTPMiddleware`` runs each request through a task and memory
    streams of its own, a cost every session step would pay."""

    def __init__(self, app, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        status = 500

        async def sending(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            seconds = time.perf_counter() - start
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(scope["method"], route, str(status)).inc()
            self.metrics.latency.labels(route).observe(seconds)
            if access_log.isEnabledFor(logging.INFO):
                client = scope.get("client")
                access_log.info(json.dumps({"time": round(time.time(), 3), "method": scope["method"],
                                            "path": scope["path"], "status": status, "ms": round(1000 * seconds, 2),
                                            "client": client[0] if client else None}))
