"""``lstmkit serve``: trained runs behind HTTP (needs the ``[serve]`` extra: FastAPI, uvicorn,
prometheus-client, httpx). :func:`create_app` builds the application, :class:`Client` calls it."""

from .app import create_app
from .auth import load_tokens
from .client import Client, ServerError
from .models import ServedModel, load_models
from .proxy import haproxy_config, write_haproxy

__all__ = ["create_app", "load_tokens", "load_models", "ServedModel", "Client", "ServerError", "haproxy_config",
           "write_haproxy"]
