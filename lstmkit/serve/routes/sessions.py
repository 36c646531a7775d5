"""Streaming sessions: open (or resume) one, run its steps over HTTP or a WebSocket, export its
state, close it."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, WebSocket, WebSocketDisconnect
from fastapi.responses import Response
from pydantic import BaseModel, Field, model_validator

from ...runs import json_output
from ..server import Server
from ..sessions import StoreFull

__all__ = ["router"]


class SessionRequest(BaseModel):
    model_config = {"extra": "forbid"}
    start: dict[str, Any] | None = Field(None, description="how the session starts, as the model's task reads it "
                                                           "(GET /v1/models: session_start_schema); none: empty")
    state: dict[str, Any] | None = Field(None, description="or the state exported by GET /v1/sessions/ID/state, to "
                                                           "resume a session of another replica")

    @model_validator(mode="after")
    def _start_or_state(self):
        if self.start is not None and self.state is not None:
            raise ValueError("expected either 'start' (a new session) or 'state' (a resumed one), got both")
        return self


class SessionResponse(BaseModel):
    session: str = Field(description="the session's id: keep it secret, it is all a client of the same token needs")
    model: str
    output: dict[str, Any] = Field(description="what reading the start gave")


class StepsRequest(BaseModel):
    model_config = {"extra": "forbid"}
    steps: list[Any] = Field(min_length=1, max_length=1000, description="step records, run in order "
                                                                        "(GET /v1/models: session_step_schema)")


class StepsResponse(BaseModel):
    session: str
    outputs: list[dict[str, Any]] = Field(description="one output per step record, in order")


def router(server: Server) -> APIRouter:
    routes = APIRouter()
    authorised = server.authorised()
    model_name = server.model_name

    @routes.post("/v1/models/{name}/sessions", response_model=SessionResponse, status_code=201,
                 summary="open a streaming session (or resume an exported one)")
    async def open_session(body: SessionRequest, name: str = model_name, token: str = Depends(authorised)) -> dict:
        stream = server.stream_of(name)
        try:
            if body.state is not None:
                state, output = stream.restore(body.state), {"resumed": True}
            else:
                state, output = await stream.start(server.parsed(stream.start_input, body.start or {}, "start"),
                                                   server.batchers[name].submit)
            session = server.store.add(name, token, state)
        except StoreFull as error:
            raise HTTPException(429, str(error), headers={"Retry-After": str(max(1, round(server.idle_timeout)))}) \
                from None
        except ValueError as error:
            raise HTTPException(422, str(error)) from None
        return {"session": session.id, "model": name, "output": output}

    @routes.post("/v1/sessions/{sid}/steps", response_model=StepsResponse, summary="run steps of a session")
    async def session_steps(sid: str, body: StepsRequest, token: str = Depends(authorised)) -> dict:
        session = server.session_of(sid, token)
        stream = server.streams[session.model]
        records = [server.parsed(stream.step_input, r, f"steps.{i}") for i, r in enumerate(body.steps)]
        return {"session": sid, "outputs": await server.run_steps(session, records)}

    @routes.websocket("/v1/sessions/{sid}/stream")
    async def session_stream(websocket: WebSocket, sid: str) -> None:
        """The same steps over a WebSocket: each message a step record (JSON), each answer its
        output, or ``{"error": ..., "status": 422}`` for a record that is refused."""
        try:
            token = server.token_of(websocket)
            session = server.session_of(sid, token)
        except HTTPException as error:              # before accept: the handshake is refused (HTTP 403)
            await websocket.close(code=4000 + error.status_code, reason=str(error.detail)[:120])
            return
        stream = server.streams[session.model]
        await websocket.accept()
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                try:
                    server.session_of(sid, token)                 # closed or expired since: the socket ends too
                except HTTPException:
                    await websocket.close(code=4404, reason="the session was closed or has expired")
                    return
                text = message.get("text")
                binary_step = getattr(stream, "binary_step", None)
                if text is None and message.get("bytes") is not None and binary_step is not None:
                    text = json.dumps(binary_step(message["bytes"]))        # a stream that reads binary frames
                if text is None:
                    await websocket.send_text(json.dumps({"error": "step: expected a text frame holding JSON, got "
                                                                   "a binary frame", "status": 422}))
                    continue
                if len(text.encode()) > server.max_body:
                    await websocket.send_text(json.dumps({"error": f"step: message larger than {server.max_body} "
                                                                   "bytes", "status": 413}))
                    continue
                try:
                    record = server.parsed(stream.step_input, json.loads(text), "step")
                    [output] = await server.run_steps(session, [record])
                except (HTTPException, ValueError, RecursionError) as error:
                    detail = error.detail if isinstance(error, HTTPException) else (
                        "step: JSON nested too deeply" if isinstance(error, RecursionError)
                        else f"step: not JSON ({error})")
                    status = error.status_code if isinstance(error, HTTPException) else 422
                    await websocket.send_text(json.dumps({"error": detail, "status": status}))
                    continue
                await websocket.send_text(json_output.dumps(output))
        except WebSocketDisconnect:
            return

    @routes.get("/v1/sessions/{sid}/state", summary="a session's state, to resume it elsewhere")
    async def export_session(sid: str, token: str = Depends(authorised)) -> dict:
        session = server.session_of(sid, token)
        async with session.lock:
            return {"model": session.model, "state": server.streams[session.model].export(session.state)}

    @routes.delete("/v1/sessions/{sid}", status_code=204, summary="close a session")
    async def close_session(sid: str, token: str = Depends(authorised)) -> Response:
        try:
            server.store.remove(sid, token)
        except KeyError:
            raise HTTPException(404, "no such session (closed, expired, or made with another token)") from None
        return Response(status_code=204)

    return routes
