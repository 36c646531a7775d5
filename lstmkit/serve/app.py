"""The HTTP application of ``lstmkit serve`` (FastAPI): stateless predictions of trained runs.

Every route but ``/healthz``, ``/readyz``, ``/openapi.json`` and the docs page ``/docs`` needs ``Authorization: Bearer
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

from fastapi import Depends, FastAPI, HTTPException, Request, WebSocket, WebSocketDisconnect
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from pydantic import BaseModel, Field, ValidationError

from ..train import json_output
from ..train.tasks._common import problems
from .auth import token_matches
from .docs import add_docs
from .models import ServedModel
from .sessions import SessionStore, StepBatcher, StoreFull
from .streams import stream_for

__all__ = ["create_app", "PredictRequest", "PredictResponse"]

access_log = logging.getLogger("lstmkit.serve.access")


class PredictRequest(BaseModel):
    records: list[Any] = Field(min_length=1, description="input records, each as the model's task reads it "
                                                         "(GET /v1/models shows the schema)")


class PredictResponse(BaseModel):
    model: str = Field(description="the run that predicted")
    predictions: list[dict[str, Any]] = Field(description="one output per record, in order")


class SessionRequest(BaseModel):
    model_config = {"extra": "forbid"}
    start: dict[str, Any] = Field(default_factory=dict, description="how the session starts, as the model's task "
                                                                    "reads it (GET /v1/models: session_start_schema)")
    state: dict[str, Any] | None = Field(None, description="or the state exported by GET /v1/sessions/ID/state, to "
                                                           "resume a session of another replica")


class SessionResponse(BaseModel):
    session: str = Field(description="the session's id: keep it secret, it is all a client of the same token needs")
    model: str
    output: dict[str, Any] = Field(description="what reading the start gave")


class StepsRequest(BaseModel):
    steps: list[Any] = Field(min_length=1, max_length=1000, description="step records, run in order "
                                                                        "(GET /v1/models: session_step_schema)")


class StepsResponse(BaseModel):
    session: str
    outputs: list[dict[str, Any]] = Field(description="one output per step record, in order")


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


def create_app(models: dict[str, ServedModel], tokens: list[str], *, max_body: int = 1 << 20,
               max_sessions: int = 1000, idle_timeout: float = 300.0, max_batch: int = 64, max_wait: float = 0.0,
               clock=time.monotonic) -> FastAPI:
    """The application over ``models`` (by name), accepting the bearer ``tokens``. At most
    ``max_sessions`` sessions live at once, each dropped after ``idle_timeout`` idle seconds;
    concurrent sessions' steps run in batches of up to ``max_batch``: the steps that arrive while
    a batch runs form the next one, and a step may wait ``max_wait`` seconds more for others."""
    if not tokens:
        raise ValueError("create_app: argument 'tokens' expected at least one token, got none")
    app = FastAPI(title="lstmkit serve", version="1", docs_url=None, redoc_url=None,
                  description="Predictions of trained lstmkit runs. Send `Authorization: Bearer TOKEN`.",
                  default_response_class=_FiniteJSON)
    add_docs(app)
    registry = CollectorRegistry()
    requests = Counter("lstmkit_requests", "HTTP requests", ["method", "route", "status"], registry=registry)
    latency = Histogram("lstmkit_request_seconds", "request latency", ["route"], registry=registry,
                        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
    predicted = Counter("lstmkit_predicted_records", "records predicted", ["model"], registry=registry)
    active = Gauge("lstmkit_active_sessions", "sessions alive", registry=registry)
    batch_sizes = Histogram("lstmkit_step_batch_size", "sessions per batched step", ["model"], registry=registry,
                            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))
    store = SessionStore(max_sessions=max_sessions, idle_timeout=idle_timeout, clock=clock)
    active.set_function(lambda: len(store))
    streams = {name: stream_for(m) for name, m in models.items()}
    model_name = PathParam(description="a served model's name", json_schema_extra={"enum": sorted(models)})
    batchers = {}
    for name, stream in streams.items():
        if stream is not None:
            batchers[name] = StepBatcher(stream.advance, max_batch=max_batch, max_wait=max_wait)
            batchers[name].on_batch = batch_sizes.labels(name).observe

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

    def token_of(request: Request) -> str:         # a Request, or a WebSocket before its handshake
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        token = token_matches(given.strip(), tokens) if scheme.lower() == "bearer" and given.strip() else None
        if token is None:
            raise HTTPException(401, "expected the header Authorization: Bearer TOKEN with a token of this server",
                                headers={"WWW-Authenticate": "Bearer"})
        return token

    def authorised(request: Request, _: Any = Depends(HTTPBearer(auto_error=False))) -> str:
        return token_of(request)             # HTTPBearer: the scheme in the OpenAPI schema (the docs' Authorize)

    def served(name: str) -> ServedModel:
        if name not in models:
            raise HTTPException(404, f"no model {name!r}; this server has {sorted(models)}")
        return models[name]

    @app.get("/healthz", summary="liveness")
    def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", summary="readiness: every model loaded (the server starts listening only then)")
    def readyz() -> dict:
        return {"status": "ready", "models": len(models)}

    @app.get("/metrics", summary="Prometheus metrics", dependencies=[Depends(authorised)])
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    def describe(name: str) -> dict:
        out = models[name].describe()
        stream = streams[name]
        out["sessions"] = stream is not None
        if stream is not None:
            out["session_start_schema"] = stream.start_input.model_json_schema()
            out["session_step_schema"] = stream.step_input.model_json_schema()
        return out

    @app.get("/v1/models", summary="the served models with their input and output schemas",
             dependencies=[Depends(authorised)])
    def list_models() -> dict:
        return {"models": [describe(name) for name in models]}

    @app.get("/v1/models/{name}", summary="one served model", dependencies=[Depends(authorised)])
    def show_model(name: str = model_name) -> dict:
        served(name)
        return describe(name)

    @app.post("/v1/models/{name}/predict", response_model=PredictResponse, summary="stateless predictions",
              dependencies=[Depends(authorised)])
    def predict(body: PredictRequest, name: str = model_name) -> dict:
        model = served(name)
        try:
            out = model.predict(body.records)
        except (ValueError, TypeError) as error:
            raise HTTPException(422, str(error)) from None
        predicted.labels(name).inc(len(body.records))
        return {"model": name, "predictions": out}

    # sessions -------------------------------------------------------------------------------
    def stream_of(name: str):
        served(name)
        if streams[name] is None:
            raise HTTPException(409, f"model {name!r} (task {models[name].task.name!r}) has no streaming sessions; "
                                     "use POST /v1/models/NAME/predict")
        return streams[name]

    def session_of(sid: str, token: str):
        try:
            return store.get(sid, token)
        except KeyError:
            raise HTTPException(404, "no such session (closed, expired, or made with another token)") from None

    def parsed(schema, record: Any, where: str):
        try:
            return schema.model_validate(record)
        except ValidationError as error:
            raise HTTPException(422, f"{where}: {problems(error, 5)}") from None

    async def run_steps(session, records: list) -> list[dict]:
        """A session's parsed step records in order, one request of the session at a time."""
        stream, outputs = streams[session.model], []
        async with session.lock:
            for record in records:
                try:
                    session.state, output = await stream.step(session.state, record, batchers[session.model].submit)
                except ValueError as error:          # refused before the record changed the state
                    raise HTTPException(422, str(error)) from None
                outputs.append(output)
            session.steps += len(records)
            session.last_used = clock()
        return outputs

    @app.post("/v1/models/{name}/sessions", response_model=SessionResponse, status_code=201,
              summary="open a streaming session (or resume an exported one)")
    async def open_session(body: SessionRequest, name: str = model_name, token: str = Depends(authorised)) -> dict:
        stream = stream_of(name)
        try:
            if body.state is not None:
                state, output = stream.restore(body.state), {"resumed": True}
            else:
                state, output = await stream.start(parsed(stream.start_input, body.start, "start"),
                                                   batchers[name].submit)
            session = store.add(name, token, state)
        except StoreFull as error:
            raise HTTPException(429, str(error), headers={"Retry-After": str(max(1, round(idle_timeout)))}) from None
        except ValueError as error:
            raise HTTPException(422, str(error)) from None
        return {"session": session.id, "model": name, "output": output}

    @app.post("/v1/sessions/{sid}/steps", response_model=StepsResponse, summary="run steps of a session")
    async def session_steps(sid: str, body: StepsRequest, token: str = Depends(authorised)) -> dict:
        session = session_of(sid, token)
        stream = streams[session.model]
        records = [parsed(stream.step_input, r, f"steps.{i}") for i, r in enumerate(body.steps)]
        return {"session": sid, "outputs": await run_steps(session, records)}

    @app.websocket("/v1/sessions/{sid}/stream")
    async def session_stream(websocket: WebSocket, sid: str) -> None:
        """The same steps over a WebSocket: each message a step record (JSON), each answer its
        output, or ``{"error": ..., "status": 422}`` for a record that is refused."""
        try:
            token = token_of(websocket)
            session = session_of(sid, token)
        except HTTPException as error:              # before accept: the handshake is refused (HTTP 403)
            await websocket.close(code=4000 + error.status_code, reason=str(error.detail)[:120])
            return
        stream = streams[session.model]
        await websocket.accept()
        try:
            while True:
                message = await websocket.receive_text()
                try:
                    [output] = await run_steps(session, [parsed(stream.step_input, json.loads(message), "step")])
                except (HTTPException, ValueError) as error:
                    detail = error.detail if isinstance(error, HTTPException) else f"step: not JSON ({error})"
                    await websocket.send_text(json.dumps({"error": detail, "status": 422}))
                    continue
                await websocket.send_text(json_output.dumps(output))
        except WebSocketDisconnect:
            return

    @app.get("/v1/sessions/{sid}/state", summary="a session's state, to resume it elsewhere")
    async def export_session(sid: str, token: str = Depends(authorised)) -> dict:
        session = session_of(sid, token)
        async with session.lock:
            return {"model": session.model, "state": streams[session.model].export(session.state)}

    @app.delete("/v1/sessions/{sid}", status_code=204, summary="close a session")
    async def close_session(sid: str, token: str = Depends(authorised)) -> Response:
        try:
            store.remove(sid, token)
        except KeyError:
            raise HTTPException(404, "no such session (closed, expired, or made with another token)") from None
        return Response(status_code=204)

    return app
