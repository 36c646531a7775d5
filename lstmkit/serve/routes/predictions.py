"""The served models and their stateless predictions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, Field

from ..server import Server

__all__ = ["router", "PredictRequest", "PredictResponse"]


class PredictRequest(BaseModel):
    model_config = {"extra": "forbid"}
    records: list[Any] = Field(min_length=1, description="input records, each as the model's task reads it "
                                                         "(GET /v1/models shows the schema)")
    decode: dict[str, Any] | None = Field(None, description="decoding settings for these records, keys of the run's "
                                                            "config's decode section (beam, n_best, max_length...), "
                                                            "for the tasks that decode with a beam")


class PredictResponse(BaseModel):
    model: str = Field(description="the run that predicted")
    predictions: list[dict[str, Any]] = Field(description="one output per record, in order")


def router(server: Server) -> APIRouter:
    routes = APIRouter(dependencies=[Depends(server.authorised())])
    model_name = server.model_name

    @routes.get("/v1/models", summary="the served models with their input and output schemas")
    def list_models() -> dict:
        return {"models": [server.describe(name) for name in server.models]}

    @routes.get("/v1/models/{name}", summary="one served model")
    def show_model(name: str = model_name) -> dict:
        return server.describe(name)

    @routes.post("/v1/models/{name}/predict", response_model=PredictResponse, summary="stateless predictions")
    def predict(body: PredictRequest, name: str = model_name) -> dict:
        model = server.served(name)
        try:
            out = model.predict(body.records, decode=body.decode or {})
        except (ValueError, TypeError) as error:
            raise HTTPException(422, str(error)) from None
        server.metrics.predicted.labels(name).inc(len(body.records))
        return {"model": name, "predictions": out}

    return routes
