"""Request size and depth limits, enforced before a route reads anything: a body over
`ENERGYHUB_API_MAX_BODY_BYTES` is a 413, a query string over `ENERGYHUB_API_MAX_QUERY_BYTES` a
414, a body that is not UTF-8, JSON nested deeper than `MAX_JSON_DEPTH` or JSON with a key given
twice in one object (the parser would keep the last unseen) a 422 — each JSON naming the field,
the size and the limit.

A declared `Content-Length` over the limit is refused at once, unread; a body sent without one
(chunked) is counted as it arrives and refused once it passes the limit, so no request ever holds
more than the limit in memory. A body within the limit is read here whole (the routes read it
whole anyway), its nesting measured without parsing it, and handed on.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import anyio.to_thread
import numpy as np
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from energyhub.api.errors import ErrorPublic, FieldError
from energyhub.json_keys import duplicate_key

MAX_JSON_DEPTH = 32
"""Deepest JSON nesting a body may have: the API's deepest document (a plan's inputs, an alert
rule's meter list) is 4 levels; Python's parser fails near 1,000 and its validators sooner."""

_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_OPEN = np.zeros(256, np.int8)
_OPEN[[ord("["), ord("{")]] = 1
_OPEN[[ord("]"), ord("}")]] = -1
_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


def _too_large(size: str, limit: int) -> str:
    return f"the request body is {size} bytes; the limit is {limit} (ENERGYHUB_API_MAX_BODY_BYTES)"


def _refusal(status: int, location: str, message: str, field: str | None = None) -> JSONResponse:
    error = FieldError(location=location, field=field or location, message=message)
    detail = message if field is None else f"{field}: {message}"
    return JSONResponse(ErrorPublic(detail=detail, errors=[error]).model_dump(), status_code=status)


def too_deep(body: bytes, limit: int = MAX_JSON_DEPTH) -> str | None:
    """None if `body`'s JSON nesting is within `limit`; else the top-level key holding the too
    deep value, or "body" (a too deep array, or a value that is no key's).

    Vectorized over the bytes: escapes are blanked (same length), quotes then toggle "inside a
    string", and brackets outside strings are counted — some 50 ms for 8 MiB."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return None
    plain = _ESCAPE.sub(b"__", body) if b"\\" in body else body
    chars = np.frombuffer(plain, np.uint8)
    inside = (np.cumsum(chars == ord('"'), dtype=np.int32) & 1).astype(bool)
    levels = np.cumsum(np.where(inside, 0, _OPEN[chars]), dtype=np.int32)
    over = np.flatnonzero(levels > limit)
    if over.size == 0:
        return None
    first = int(over[0])
    colons = np.flatnonzero((chars[:first] == ord(":")) & (levels[:first] == 1) & ~inside[:first])
    if colons.size == 0:
        return "body"
    end = plain.rfind(b'"', 0, int(colons[-1]))
    start = plain.rfind(b'"', 0, end)
    key = body[start + 1 : end].decode("utf-8", "replace")[:64] if 0 <= start < end else ""
    return key or "body"


THREAD_ABOVE_BYTES = 1 << 20
"""A body parsed once more for its keys is parsed in a worker thread above this size, so a large
plan's inputs do not hold every other request for as long as the parse takes."""


async def _off_the_loop(check: Callable[[bytes], str | None], body: bytes) -> str | None:
    if len(body) <= THREAD_ABOVE_BYTES:
        return check(body)
    return await anyio.to_thread.run_sync(check, body)


class SizeLimitMiddleware:
    """413 for a body over `max_body_bytes`, 414 for a query string over `max_query_bytes`, 422
    for JSON nested deeper than MAX_JSON_DEPTH."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, max_query_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_query_bytes = max_query_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query = len(scope.get("query_string", b""))
        if query > self.max_query_bytes:
            message = (
                f"the query string is {query} bytes; the limit is {self.max_query_bytes} "
                "(ENERGYHUB_API_MAX_QUERY_BYTES)"
            )
            await _refusal(414, "query", message)(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            message = _too_large(declared.decode(), self.max_body_bytes)
            await _refusal(413, "body", message)(scope, receive, send)
            return
        if declared in (b"", b"0") and b"transfer-encoding" not in headers:
            await self.app(scope, receive, send)  # no body: nothing to read (every GET)
            return
        body = await self._read(receive)
        if body is None:
            message = _too_large(f"more than {self.max_body_bytes}", self.max_body_bytes)
            await _refusal(413, "body", message)(scope, receive, send)
            return
        kind = headers.get(b"content-type", b"").partition(b";")[0].strip().decode("latin-1")
        if kind not in _FORMS:
            try:
                body.decode("utf-8")
            except UnicodeDecodeError as exc:  # FastAPI would answer a bare 400
                message = f"not UTF-8 text: byte 0x{body[exc.start]:02x} at {exc.start}"
                await _refusal(422, "body", message, "body")(scope, receive, send)
                return
        deep = None if kind in _FORMS else too_deep(body)
        if deep is not None:
            message = f"JSON nested deeper than {MAX_JSON_DEPTH} levels"
            await _refusal(422, "body", message, deep)(scope, receive, send)
            return
        twice = None if kind in _FORMS else await _off_the_loop(duplicate_key, body)
        if twice is not None:
            message = "the key is given twice in one JSON object; give it once"
            await _refusal(422, "body", message, twice[:64] or "body")(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read(self, receive: Receive) -> bytes | None:
        """The whole body, or None once it passes the limit (the rest is not read)."""
        parts: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client went away: the route sees an empty body and its disconnect
            part = message.get("body", b"")
            received += len(part)
            if received > self.max_body_bytes:
                return None
            parts.append(part)
            if not message.get("more_body", False):
                break
        return b"".join(parts)


def _replay(body: bytes, receive: Receive) -> Receive:
    """`receive` that gives the body read already, then whatever the client sends next."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed
