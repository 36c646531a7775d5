"""A page to try the served models in a browser, ``GET /ui``: a card per model that runs its
task through the server's own routes (text streamed from the OpenAI completions route as it is
generated, a sentence tagged, a series forecast drawn, an audio file transcribed live through a
speech session, any other record predicted). Its three files ship in the package (``page/``):
no CDN, works offline. The page itself holds no data, so it is served without a token; every
call it makes sends the token the person enters (or gives in the address's fragment,
``/ui#token=...``, which browsers never send to a server)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse, RedirectResponse

__all__ = ["add_ui"]

PAGE = Path(__file__).with_name("page")
_FILES = {"index.html": "text/html", "page.js": "text/javascript", "page.css": "text/css"}
# the page loads nothing from elsewhere and runs no inline script
_POLICY = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; "
           "object-src 'none'; base-uri 'none'; frame-ancestors 'none'")


def add_ui(app: FastAPI) -> None:
    @app.get("/ui", include_in_schema=False)
    def ui() -> RedirectResponse:
        return RedirectResponse("/ui/")

    @app.get("/ui/{name:path}", include_in_schema=False)
    def page(name: str) -> FileResponse:
        name = name or "index.html"
        if name not in _FILES:
            raise HTTPException(404, f"no page file {name!r}")
        return FileResponse(PAGE / name, media_type=_FILES[name],
                            headers={"Content-Security-Policy": _POLICY, "Cache-Control": "no-cache"})
