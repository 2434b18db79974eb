"""/docs (Swagger UI) and /redoc (ReDoc) from script and styles installed with fastapi-offline:
they work on a site without internet. The app comes from `offline_app`."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html
from fastapi.responses import HTMLResponse
from fastapi_offline import FastAPIOffline

ASSETS = "/docs-assets"
"""Where the pages load Swagger UI's and ReDoc's files from."""
REDOC_POLICY = "img-src 'self' data:"
"""ReDoc's side menu shows its maker's logo from a CDN: the browser is told not to ask for it."""


def offline_app(**kwargs: Any) -> FastAPI:
    """FastAPI with /docs and /redoc that load nothing from outside this server."""
    app = FastAPIOffline(
        static_url=ASSETS,
        redoc_url=None,
        swagger_ui_parameters={"validatorUrl": None},  # no badge fetched from the internet
        **kwargs,
    )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        page = get_redoc_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{ASSETS}/favicon.png",
            with_google_fonts=False,
        )
        page.headers["Content-Security-Policy"] = REDOC_POLICY
        return page

    return app
