"""Liveness, readiness and the Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from ..server import Server

__all__ = ["router"]


def router(server: Server) -> APIRouter:
    routes = APIRouter()

    @routes.get("/healthz", summary="liveness")
    def healthz() -> dict:
        return {"status": "ok"}

    @routes.get("/readyz", summary="readiness: every model loaded and warmed up, the engine loaded (the server listens only then)")
    def readyz() -> dict:
        return {"status": "ready", "models": len(server.models)}

    @routes.get("/metrics", summary="Prometheus metrics", dependencies=[Depends(server.authorised())])
    def metrics() -> Response:
        return Response(server.metrics.latest(), media_type=CONTENT_TYPE_LATEST)

    return routes
