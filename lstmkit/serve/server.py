"""What the routes of one application share: the served runs, their streams and step batchers,
the session store, the metrics and the bearer tokens, with the lookups every route makes (a
model by name, a session of a token) answering the HTTP error a client should see."""

from __future__ import annotations

import time
from typing import Any

from fastapi import Depends, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.security import HTTPBearer
from pydantic import ValidationError

from ..runs.records import problems
from ..runs.stream import opens
from .auth import token_matches
from .metrics import Metrics
from .models import ServedModel
from .sessions import Session, SessionStore, StepBatcher

__all__ = ["Server"]


class Server:
    """The state behind the routes of one application (see :func:`lstmkit.serve.create_app`)."""

    def __init__(self, models: dict[str, ServedModel], tokens: list[str], *, max_sessions: int, idle_timeout: float,
                 max_batch: int, max_wait: float, max_body: int = 1 << 20, clock=time.monotonic,
                 replica: str | None = None):
        self.models, self.tokens, self.clock, self.idle_timeout = models, tokens, clock, idle_timeout
        self.max_body = max_body                      # bytes of a request body, and of a WebSocket message
        self.metrics = Metrics()
        self.model_name = PathParam(description="a served model's name", json_schema_extra={"enum": sorted(models)})
        self.store = SessionStore(max_sessions=max_sessions, idle_timeout=idle_timeout, clock=clock, replica=replica)
        self.metrics.active.set_function(lambda: len(self.store))
        self.streams = {name: opens(m.run, m.lock) for name, m in models.items()}
        self.batchers: dict[str, StepBatcher] = {}
        for name, stream in self.streams.items():
            if stream is not None:
                self.batchers[name] = StepBatcher(stream.advance, max_batch=max_batch, max_wait=max_wait)
                self.batchers[name].on_batch = self.metrics.batch_sizes.labels(name).observe

    # who asks ---------------------------------------------------------------------------------
    def token_of(self, request: Request) -> str:
        """The bearer token of a request (or a WebSocket before its handshake); 401 without one of ours."""
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        token = token_matches(given.strip(), self.tokens) if scheme.lower() == "bearer" and given.strip() else None
        if token is None:
            raise HTTPException(401, "expected the header Authorization: Bearer TOKEN with a token of this server",
                                headers={"WWW-Authenticate": "Bearer"})
        return token

    def authorised(self):
        """The dependency of the routes that need a token; HTTPBearer puts the scheme in the
        OpenAPI schema (the docs' Authorize button). A coroutine, so that FastAPI runs it on the
        event loop rather than through its thread pool, a hop per request for a dictionary lookup."""
        async def dependency(request: Request, _: Any = Depends(HTTPBearer(auto_error=False))) -> str:
            return self.token_of(request)
        return dependency

    # what they ask for ------------------------------------------------------------------------
    def served(self, name: str) -> ServedModel:
        if name not in self.models:
            raise HTTPException(404, f"no model {name!r}; this server has {sorted(self.models)}")
        return self.models[name]

    def describe(self, name: str) -> dict:
        out = self.served(name).describe()
        stream = self.streams[name]
        out["sessions"] = stream is not None
        if stream is not None:
            out["session_start_schema"] = stream.start_input.model_json_schema()
            out["session_step_schema"] = stream.step_input.model_json_schema()
        return out

    def stream_of(self, name: str):
        served = self.served(name)
        if self.streams[name] is None:
            raise HTTPException(409, f"model {name!r} (task {served.task.name!r}) has no streaming sessions; "
                                     "use POST /v1/models/NAME/predict")
        return self.streams[name]

    def session_of(self, sid: str, token: str) -> Session:
        try:
            return self.store.get(sid, token)
        except KeyError:
            raise HTTPException(404, "no such session (closed, expired, or made with another token)") from None

    @staticmethod
    def parsed(schema, record: Any, where: str):
        """``record`` validated by ``schema``; 422 naming ``where`` and the fields otherwise."""
        try:
            return schema.model_validate(record)
        except ValidationError as error:
            raise HTTPException(422, f"{where}: {problems(error, 5)}") from None

    async def run_steps(self, session: Session, records: list) -> list[dict]:
        """A session's parsed step records in order, one request of the session at a time."""
        stream, outputs = self.streams[session.model], []
        async with session.lock:
            for record in records:
                try:
                    session.state, output = await stream.update(session.state, record,
                                                                self.batchers[session.model].submit)
                except ValueError as error:          # refused before the record changed the state
                    raise HTTPException(422, str(error)) from None
                outputs.append(output)
            session.steps += len(records)
            session.last_used = self.clock()
        return outputs
