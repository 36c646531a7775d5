"""The HTTP application of ``lstmkit serve`` (FastAPI): stateless predictions of trained runs.

Every route but ``/healthz``, ``/readyz`` and ``/openapi.json`` needs ``Authorization: Bearer
TOKEN``. Request bodies larger than ``max_body`` bytes get 413 before they are read whole;
records that a task's ``predict`` schema refuses get 422 with the record and the field named.
Each request is counted in the Prometheus metrics (``/metrics``) and written as one JSON line to
the ``lstmkit.serve.access`` logger.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from pydantic import BaseModel, Field

from ..train import json_output
from .auth import token_matches
from .models import ServedModel

__all__ = ["create_app", "PredictRequest", "PredictResponse"]

access_log = logging.getLogger("lstmkit.serve.access")


class PredictRequest(BaseModel):
    records: list[Any] = Field(min_length=1, description="input records, each as the model's task reads it "
                                                         "(GET /v1/models shows the schema)")


class PredictResponse(BaseModel):
    model: str = Field(description="the run that predicted")
    predictions: list[dict[str, Any]] = Field(description="one output per record, in order")


class _FiniteJSON(JSONResponse):
    """JSON without NaN or Infinity (non-finite figures are null)."""

    def render(self, content: Any) -> bytes:
        return json_output.dumps(content).encode()


class _BodyLimit:
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


def create_app(models: dict[str, ServedModel], tokens: list[str], *, max_body: int = 1 << 20) -> FastAPI:
    """The application over ``models`` (by name), accepting the bearer ``tokens``."""
    if not tokens:
        raise ValueError("create_app: argument 'tokens' expected at least one token, got none")
    app = FastAPI(title="lstmkit serve", version="1", docs_url=None, redoc_url=None,
                  description="Predictions of trained lstmkit runs. Send `Authorization: Bearer TOKEN`.",
                  default_response_class=_FiniteJSON)
    app.state.ready = True
    registry = CollectorRegistry()
    requests = Counter("lstmkit_requests", "HTTP requests", ["method", "route", "status"], registry=registry)
    latency = Histogram("lstmkit_request_seconds", "request latency", ["route"], registry=registry,
                        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
    predicted = Counter("lstmkit_predicted_records", "records predicted", ["model"], registry=registry)

    app.add_middleware(_BodyLimit, limit=max_body)      # inside `observe`, which counts and logs its 413s

    @app.middleware("http")
    async def observe(request: Request, call_next):
        start = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            seconds = time.perf_counter() - start
            route = getattr(request.scope.get("route"), "path", "unmatched")
            requests.labels(request.method, route, str(status)).inc()
            latency.labels(route).observe(seconds)
            access_log.info(json.dumps({"time": round(time.time(), 3), "method": request.method,
                                        "path": request.url.path, "status": status, "ms": round(1000 * seconds, 2),
                                        "client": request.client.host if request.client else None}))

    def authorised(request: Request) -> str:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        token = token_matches(given.strip(), tokens) if scheme.lower() == "bearer" and given.strip() else None
        if token is None:
            raise HTTPException(401, "expected the header Authorization: Bearer TOKEN with a token of this server",
                                headers={"WWW-Authenticate": "Bearer"})
        return token

    def served(name: str) -> ServedModel:
        if name not in models:
            raise HTTPException(404, f"no model {name!r}; this server has {sorted(models)}")
        return models[name]

    @app.get("/healthz", summary="liveness")
    def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", summary="readiness: models loaded, not shutting down")
    def readyz():
        if not app.state.ready:
            return _FiniteJSON({"status": "stopping"}, status_code=503)
        return {"status": "ready", "models": len(models)}

    @app.get("/metrics", summary="Prometheus metrics", dependencies=[Depends(authorised)])
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/models", summary="the served models with their input and output schemas",
             dependencies=[Depends(authorised)])
    def list_models() -> dict:
        return {"models": [m.describe() for m in models.values()]}

    @app.get("/v1/models/{name}", summary="one served model", dependencies=[Depends(authorised)])
    def show_model(name: str) -> dict:
        return served(name).describe()

    @app.post("/v1/models/{name}/predict", response_model=PredictResponse, summary="stateless predictions",
              dependencies=[Depends(authorised)])
    def predict(name: str, body: PredictRequest) -> dict:
        model = served(name)
        try:
            out = model.predict(body.records)
        except (ValueError, TypeError) as error:
            raise HTTPException(422, str(error)) from None
        predicted.labels(name).inc(len(body.records))
        return {"model": name, "predictions": out}

    return app
