"""Templates and HTML answers: pages, and errors as pages with the JSON API's status codes."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request, Response
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, StrictUndefined

from energyhub.api.errors import ApiError, as_api_error
from energyhub.numbers import coverage_percent, number

env = Environment(
    loader=PackageLoader("energyhub.api.ui", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def local(ts: datetime | None, zone: ZoneInfo) -> str:
    """A time in the site's zone with its UTC offset; a dash for none."""
    return ts.astimezone(zone).isoformat(sep=" ", timespec="minutes") if ts is not None else "—"


env.filters["local"] = local
env.filters["number"] = number
env.filters["coverage_percent"] = coverage_percent
TITLES = {
    401: "Log in",
    403: "Not allowed",
    404: "Not found",
    409: "Conflict",
    413: "Too large",
    415: "Unsupported form",
    422: "Bad input",
    503: "Unavailable",
}


def page(
    name: str, status: int = 200, headers: dict[str, str] | None = None, **context: Any
) -> HTMLResponse:
    """A rendered template; every value is escaped unless it is markup made by the charts."""
    html = env.get_template(name).render(**context)
    return HTMLResponse(html, status_code=status, headers=headers)


def login_target(request: Request) -> str:
    """Where to come back to after logging in: this page for a GET, else the tree."""
    return request.url.path if request.method == "GET" else "/ui"


def error_page(request: Request, error: ApiError) -> HTMLResponse:
    """The API's status and message as a page; a 401 is the login form."""
    if error.status == 401:
        return page(
            "login.html", 401, error.headers, message=error.detail, next=login_target(request)
        )
    title = TITLES.get(error.status, "Error")
    return page("error.html", error.status, error.headers, title=title, error=error)


class HtmlRoute(APIRoute):
    """A route whose errors answer as pages (same statuses as the JSON API); a 500 is left to
    the app's handler, which logs it."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:
                error = as_api_error(exc)
                if error.status == 500:
                    raise
                return error_page(request, error)

        return handle
