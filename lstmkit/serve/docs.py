"""The API docs page (Swagger UI) served offline: its script and style come from npm
``swagger-ui-dist``'s tarball, which the README's set-up fetches into ``.venv/share/lstmkit``;
no page of the server loads anything from a CDN."""

from __future__ import annotations

import tarfile

from fastapi import FastAPI, HTTPException
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response

from ..data.datasets import MissingDataPackage, fetched_file

__all__ = ["add_docs"]

_TGZ = "swagger-ui-dist-5.35.0.tgz"
_FETCH = "npm pack swagger-ui-dist@5.35.0 --pack-destination {dir}"
_ASSETS = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css", "favicon-32x32.png": "image/png"}


def _assets() -> dict[str, bytes] | str:
    """The page's files read from the tarball, or why they cannot be."""
    try:
        path = fetched_file("api docs", _TGZ, _FETCH)
        with tarfile.open(path, "r:gz") as tar:
            return {name: tar.extractfile(f"package/{name}").read() for name in _ASSETS}
    except MissingDataPackage as error:
        return str(error)
    except (tarfile.TarError, OSError, KeyError, AttributeError) as error:
        return f"{_TGZ} is not a complete swagger-ui-dist tarball ({error}); fetch it again: {_FETCH.format(dir='.')}"


def add_docs(app: FastAPI) -> None:
    """``GET /docs``: Swagger UI over ``/openapi.json`` (its "Authorize" button takes the bearer
    token), with its assets under ``/docs/assets/``."""
    assets = _assets()

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        if isinstance(assets, str):
            raise HTTPException(404, f"the API docs page is not installed: {assets}")
        return get_swagger_ui_html(openapi_url=app.openapi_url, title=f"{app.title}: API",
                                   swagger_js_url="/docs/assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs/assets/swagger-ui.css",
                                   swagger_favicon_url="/docs/assets/favicon-32x32.png")

    @app.get("/docs/assets/{name}", include_in_schema=False)
    def asset(name: str) -> Response:
        if isinstance(assets, str) or name not in _ASSETS:
            raise HTTPException(404, f"no asset {name!r}")
        return Response(assets[name], media_type=_ASSETS[name], headers={"Cache-Control": "max-age=86400"})
