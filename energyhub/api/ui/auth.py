"""Who is asking: the API key from `Authorization: Bearer` or from the login cookie.

The login form stores the key in an HttpOnly, SameSite=Strict cookie scoped to /ui (Secure when
served over HTTPS): scripts cannot read it and other sites' pages cannot send it. Form posts from
another origin are refused as well.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from energyhub.api.deps import ConnDep
from energyhub.api.errors import ApiError, bad_input
from energyhub.api.keys import ApiKey, find_key
from energyhub.api.ui.render import HtmlRoute, page

COOKIE = "energyhub_key"
MAX_FORM_BYTES = 4096
CHALLENGE = {"WWW-Authenticate": "Bearer"}

router = APIRouter(prefix="/ui", route_class=HtmlRoute, include_in_schema=False)


def _token(request: Request) -> str | None:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return request.cookies.get(COOKIE) or None


async def ui_key(request: Request, conn: ConnDep) -> ApiKey:
    """The caller's active key (header first, then cookie), or 401: the login page."""
    token = _token(request)
    if token is None:
        raise ApiError(401, "log in with an API key", headers=CHALLENGE)
    key = await find_key(conn, token)
    if key is None:
        raise ApiError(401, "unknown or revoked API key", headers=CHALLENGE)
    return key


UiKey = Annotated[ApiKey, Depends(ui_key)]


async def same_origin(request: Request) -> None:
    """403 for a form posted from another site (an `Origin` that is not this host)."""
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.headers.get("host"):
        raise ApiError(403, f"a form posted from {origin} is refused: post from this site")


async def form(request: Request) -> dict[str, str]:
    """The url-encoded form fields (first value of each); 415 or 413 for other bodies."""
    kind = request.headers.get("content-type", "").partition(";")[0].strip()
    if kind != "application/x-www-form-urlencoded":
        raise ApiError(415, f"send an application/x-www-form-urlencoded form, not {kind!r}")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise ApiError(413, f"the form is {len(body)} bytes, more than {MAX_FORM_BYTES}")
    try:
        fields = parse_qs(body.decode(), max_num_fields=20)
    except (UnicodeDecodeError, ValueError) as exc:
        raise bad_input("body", "form", f"not a readable form: {exc}") from None
    return {name: values[0] for name, values in fields.items()}


Form = Annotated[dict[str, str], Depends(form)]


def _next(target: str | None) -> str:
    """Only a path under /ui: a login never redirects to another site."""
    if target and target.startswith("/ui") and "//" not in target and "\\" not in target:
        return target
    return "/ui"


@router.get("/login")
async def login_form(next: str | None = None) -> Response:
    return page("login.html", message=None, next=_next(next))


@router.post("/login", dependencies=[Depends(same_origin)])
async def login(request: Request, conn: ConnDep, fields: Form) -> Response:
    """Check the key and keep it in the cookie; back to `next` (a /ui path)."""
    token = fields.get("key", "").strip()
    target = _next(fields.get("next"))
    if not token or await find_key(conn, token) is None:
        message = "unknown or revoked API key" if token else "enter an API key"
        return page("login.html", 401, CHALLENGE, message=message, next=target)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE,
        token,
        path="/ui",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout", dependencies=[Depends(same_origin)])
async def logout() -> Response:
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE, path="/ui", httponly=True, samesite="strict")
    return response
