"""The HTTP application of ``lstmkit serve`` (FastAPI): predictions and streaming sessions of
trained runs.

Every route but ``/healthz``, ``/readyz``, ``/openapi.json``, the docs page ``/docs`` and the page to try the
models ``/ui`` (:mod:`.ui`: it holds no data; its calls send the token) needs ``Authorization: Bearer TOKEN``. Request bodies larger than ``max_body`` bytes get 413 before they are read whole;
records that a task's ``predict`` schema refuses get 422 with the record and the field named.
Runs that generate text also answer OpenAI's completions API under ``/openai/v1``
(:mod:`.openai`), and every task with a tensor form the Open Inference Protocol under ``/v2``
(:mod:`.inference`). Each request is counted in the Prometheus metrics (``/metrics``) and written as one JSON line to
the ``lstmkit.serve.access`` logger. The routes know no task: a run's task gives its schemas,
its predictions and its streaming sessions (``Task.stream``).
"""

from __future__ import annotations

import time

from fastapi import FastAPI
from starlette.exceptions import HTTPException

from .docs import add_docs
from .http import BodyLimit, FiniteJSON, Observe, http_errors
from .inference import inference_app
from .models import ServedModel
from .openai import openai_app
from .proxy import REPLICA
from .routes import health, predictions, sessions
from .routes.predictions import PredictRequest, PredictResponse
from .server import Server
from .ui import add_ui

__all__ = ["create_app", "PredictRequest", "PredictResponse"]


def create_app(models: dict[str, ServedModel], tokens: list[str], *, max_body: int = 1 << 20,
               max_sessions: int = 1000, idle_timeout: float = 300.0, max_batch: int = 64, max_wait: float = 0.0,
               clock=time.monotonic, replica: str | None = None) -> FastAPI:
    """The application over ``models`` (by name), accepting the bearer ``tokens``. At most
    ``max_sessions`` sessions live at once, each dropped after ``idle_timeout`` idle seconds;
    concurrent sessions' steps run in batches of up to ``max_batch``: the steps that arrive while
    a batch runs form the next one, and a step may wait ``max_wait`` seconds more for others.
    ``replica`` names this server among several behind a proxy: it starts every session id
    (:func:`lstmkit.serve.proxy.haproxy_config` routes on it)."""
    if replica is not None and not REPLICA.fullmatch(replica):
        raise ValueError(f"create_app: argument 'replica' expected 1 to 16 lowercase letters and digits, got {replica!r}")
    if not tokens:
        raise ValueError("create_app: argument 'tokens' expected at least one token, got none")
    server = Server(models, tokens, max_sessions=max_sessions, idle_timeout=idle_timeout, max_batch=max_batch,
                    max_wait=max_wait, max_body=max_body, clock=clock, replica=replica)
    app = FastAPI(title="lstmkit serve", version="1", docs_url=None, redoc_url=None,
                  description="Predictions of trained lstmkit runs. Send `Authorization: Bearer TOKEN`.",
                  default_response_class=FiniteJSON)
    app.state.server = server
    app.add_exception_handler(HTTPException, http_errors)
    add_docs(app)
    add_ui(app)
    app.add_middleware(BodyLimit, limit=max_body)       # inside `Observe`, which counts and logs its 413s
    app.add_middleware(Observe, metrics=server.metrics)
    for routes in (health, predictions, sessions):
        app.include_router(routes.router(server))
    app.mount("/openai/v1", openai_app(server))         # OpenAI's clients, in OpenAI's error format
    app.mount("/v2", inference_app(server))              # the Open Inference Protocol (KServe v2, Triton)
    return app
