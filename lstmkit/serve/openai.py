"""OpenAI-compatible text completions (``/openai/v1``) for the served runs that generate text.

The clients people already have speak OpenAI's completions API (the ``openai`` package, LangChain,
the tools built for vLLM or llama.cpp): ``POST /openai/v1/completions`` and ``GET
/openai/v1/models`` answer them, with the same bearer tokens (the client's ``api_key``) and
errors in OpenAI's shape (``{"error": {"message", "type", "param", "code"}}``). A run generates
through its task's ``generator`` (:meth:`lstmkit.runs.Run.generator`); the text of a completion
with a ``seed`` is the text ``lstmkit generate`` prints with the same seed and settings (choice
``i`` of ``n`` uses ``seed + i``). Fields OpenAI has and lstmkit does not (``best_of``,
``frequency_penalty``, ``logit_bias``...) are refused by name, never ignored.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field, field_validator, model_validator
from starlette.exceptions import HTTPException

from .._checks import SEED_MAX
from .http import Refused
from .server import Server

__all__ = ["CompletionRequest", "StopScanner", "openai_app", "MAX_N", "MAX_TOKENS", "MAX_STOPS"]

MAX_N = 16                      # choices per prompt
MAX_TOKENS = 2048               # tokens per choice
MAX_STOPS = 4                   # stop sequences, as OpenAI allows
MAX_LOGPROBS = 5                # alternatives per token, as OpenAI allows


class StreamOptions(BaseModel):
    model_config = {"extra": "forbid"}
    include_usage: bool = Field(False, description="a last chunk with the token counts")


class CompletionRequest(BaseModel):
    """The fields of OpenAI's completions request that lstmkit serves (any other is refused)."""

    model_config = {"extra": "forbid", "allow_inf_nan": False}
    model: str = Field(description="a served run's name (GET /openai/v1/models)")
    prompt: str | list[str] = Field("", description="text to continue, or a list of them (empty: a sentence start)")
    max_tokens: int = Field(16, ge=1, le=MAX_TOKENS, description="tokens to generate per choice")
    temperature: float = Field(1.0, ge=0.0, le=2.0, description="sampling temperature (0: the most probable token)")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="nucleus sampling: the most probable tokens of this mass")
    n: int = Field(1, ge=1, le=MAX_N, description="choices per prompt")
    stop: str | list[str] | None = Field(None, description=f"up to {MAX_STOPS} sequences that end a choice "
                                                           "(not included in its text)")
    seed: int | None = Field(None, ge=0, le=SEED_MAX, description="the same seed, the same text (choice i: seed + i)")
    logprobs: int | None = Field(None, ge=0, le=MAX_LOGPROBS, description="each token's log-probability and "
                                                                           "this many most probable alternatives")
    echo: bool = Field(False, description="the prompt before the completion in each choice's text")
    stream: bool = Field(False, description="server-sent events, a chunk per token, then [DONE]")
    stream_options: StreamOptions | None = None

    @field_validator("prompt")
    @classmethod
    def _prompts(cls, value):
        if isinstance(value, list) and not value:
            raise ValueError("expected a string or a non-empty list of strings")
        return value

    @field_validator("stop")
    @classmethod
    def _stops(cls, value):
        stops = [value] if isinstance(value, str) else value or []
        if len(stops) > MAX_STOPS or any(not s for s in stops):
            raise ValueError(f"expected up to {MAX_STOPS} non-empty strings")
        return stops

    @model_validator(mode="after")
    def _combination(self):
        if self.echo and self.logprobs is not None:
            raise ValueError("echo with logprobs (the prompt's own log-probabilities) is not supported: ask "
                             "lstmkit predict for them")
        if self.stream_options is not None and not self.stream:
            raise ValueError("stream_options needs stream: true")
        return self


class StopScanner:
    """Text released as it is generated, up to the first of ``stops``: a tail that could still
    become a stop sequence is held back until it cannot."""

    def __init__(self, stops: list[str]):
        self.stops, self.pending = stops, ""

    def feed(self, text: str) -> tuple[str, bool]:
        """The text that may be released now, and whether a stop sequence was met (then nothing
        from it on is released)."""
        self.pending += text
        hits = [at for at in (self.pending.find(s) for s in self.stops) if at >= 0]
        if hits:
            out, self.pending = self.pending[:min(hits)], ""
            return out, True
        hold = max((k for s in self.stops for k in range(len(s) - 1, 0, -1) if self.pending.endswith(s[:k])),
                   default=0)
        out = self.pending[:len(self.pending) - hold]
        self.pending = self.pending[len(out):]
        return out, False

    def flush(self) -> str:
        """What was held back, at the end of the text."""
        out, self.pending = self.pending, ""
        return out


def _error(status: int, message: str, *, param: str | None = None, code: str | None = None,
           kind: str = "invalid_request_error", headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": code}},
                        status_code=status, headers=headers)


def _choices(generator, prompt: str, request: CompletionRequest, first_index: int) -> Iterator[dict]:
    """The events of one prompt's choices, in order: ``{"index", "text", "logprobs", "finish",
    "tokens"}`` per generated token (its released text, possibly empty while a stop sequence may
    be starting), ``finish`` set on the last event of each choice."""
    for k in range(request.n):
        scanner = StopScanner(request.stop or [])
        index = first_index + k
        if request.echo:
            yield {"index": index, "text": prompt, "logprobs": None, "finish": None, "tokens": 0}
        emitted, finish = 0, "length"
        seed = None if request.seed is None else min(request.seed + k, SEED_MAX)
        for piece in generator.pieces(prompt, max_tokens=request.max_tokens, temperature=request.temperature,
                                      top_p=None if request.top_p == 1.0 else request.top_p, seed=seed,
                                      top=request.logprobs or 0):
            released, stopped = scanner.feed(piece.text)
            logprobs = None
            if request.logprobs is not None and (released or not stopped):
                logprobs = {"tokens": [piece.text], "token_logprobs": [piece.logprob],
                            "top_logprobs": [piece.top] if request.logprobs else None,
                            "text_offset": [emitted + (len(prompt) if request.echo else 0)]}
            emitted += len(released)
            yield {"index": index, "text": released, "logprobs": logprobs, "finish": None, "tokens": 1}
            if stopped:
                finish = "stop"
                break
        tail = "" if finish == "stop" else scanner.flush()
        yield {"index": index, "text": tail, "logprobs": None, "finish": finish, "tokens": 0}


def _merge(events: list[dict], n_choices: int, logprobs: bool) -> list[dict]:
    """The events of every choice as OpenAI's non-streamed choices."""
    choices = [{"text": "", "index": i, "logprobs": None, "finish_reason": None} for i in range(n_choices)]
    merged = [{"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []} for _ in range(n_choices)]
    for event in events:
        choice = choices[event["index"]]
        choice["text"] += event["text"]
        if event["finish"] is not None:
            choice["finish_reason"] = event["finish"]
        if event["logprobs"] is not None:
            for key, values in event["logprobs"].items():
                merged[event["index"]][key] += values or []
    if logprobs:
        for choice, values in zip(choices, merged):
            choice["logprobs"] = values if values["top_logprobs"] else {**values, "top_logprobs": None}
    return choices


def openai_app(server: Server) -> FastAPI:
    """The OpenAI-compatible application over ``server``'s runs, to mount at ``/openai/v1``."""
    app = FastAPI(title="lstmkit serve: OpenAI-compatible completions", version="1", docs_url=None, redoc_url=None)
    authorised = server.authorised()

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError):
        problem = error.errors()[0]
        where = [str(part) for part in problem["loc"] if part != "body"]
        param = ".".join(where) or None
        if problem["type"] == "extra_forbidden":
            message = (f"{param!r} is not supported by this server (lstmkit serves: "
                       f"{', '.join(CompletionRequest.model_fields)})")
        elif problem["type"] == "json_invalid":
            message = f"the body is not valid JSON ({problem.get('msg')})"
        else:
            message = f"{param or 'body'}: {problem['msg']}"
        return _error(400, message, param=param)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException):
        code = {401: "invalid_api_key", 404: "model_not_found"}.get(error.status_code)
        kind = "invalid_request_error" if error.status_code < 500 else "server_error"
        return _error(error.status_code, str(error.detail), code=code, kind=kind, headers=error.headers)

    @app.exception_handler(Refused)
    async def refused(request: Request, error: Refused):
        return _error(error.status, error.message, param=error.param, code=error.code)

    def generating() -> dict[str, Any]:
        """The served runs whose task generates text."""
        return {name: m for name, m in server.models.items() if m.task.generator is not None}

    @app.get("/models", dependencies=[Depends(authorised)])
    def models() -> dict:
        return {"object": "list", "data": [{"id": name, "object": "model", "created": int(m.checkpoint.stat().st_mtime),
                                            "owned_by": "lstmkit"} for name, m in generating().items()]}

    @app.post("/completions", dependencies=[Depends(authorised)])
    def completions(body: CompletionRequest):
        served = generating().get(body.model)
        if served is None:
            known = sorted(generating())
            if body.model in server.models:
                raise Refused(400, f"model {body.model!r} (task {server.models[body.model].task.name!r}) generates no "
                                    f"text; the models that do: {known}", param="model")
            raise Refused(404, f"no model {body.model!r}; the models that generate text: {known}", param="model",
                           code="model_not_found")
        generator = served.run.generator()
        prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
        ident, created = f"cmpl-{uuid.uuid4().hex}", int(time.time())
        prompt_tokens = sum(generator.count(p) for p in prompts) * body.n
        generated = [0]

        def events() -> Iterator[dict]:
            for i, prompt in enumerate(prompts):
                for event in _choices(generator, prompt, body, i * body.n):
                    generated[0] += event["tokens"]
                    yield event

        def usage() -> dict:
            return {"prompt_tokens": prompt_tokens, "completion_tokens": generated[0],
                    "total_tokens": prompt_tokens + generated[0]}

        head = {"id": ident, "object": "text_completion", "created": created, "model": body.model}
        if not body.stream:
            choices = _merge(list(events()), len(prompts) * body.n, body.logprobs is not None)
            return {**head, "choices": choices, "usage": usage()}

        def sse() -> Iterator[str]:
            for event in events():
                if event["text"] or event["finish"] is not None or event["logprobs"] is not None:
                    choice = {"text": event["text"], "index": event["index"], "logprobs": event["logprobs"],
                              "finish_reason": event["finish"]}
                    yield f"data: {json.dumps({**head, 'choices': [choice]})}\n\n"
            if body.stream_options is not None and body.stream_options.include_usage:
                yield f"data: {json.dumps({**head, 'choices': [], 'usage': usage()})}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(sse(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    return app
