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

__all__ = ["FiniteJSON", "BodyLimit", "Refused", "observe", "http_errors", "access_log"]

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


def observe(metrics: Metrics):
    """The middleware that counts, times and logs (one JSON line) every request."""

    async def middleware(request: Request, call_next):
        start = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            seconds = time.perf_counter() - start
            route = getattr(request.scope.get("route"), "path", "unmatched")
            metrics.requests.labels(request.method, route, str(status)).inc()
            metrics.latency.labels(route).observe(seconds)
            access_log.info(json.dumps({"time": round(time.time(), 3), "method": request.method,
                                        "path": request.url.path, "status": status, "ms": round(1000 * seconds, 2),
                                        "client": request.client.host if request.client else None}))

    return middleware
