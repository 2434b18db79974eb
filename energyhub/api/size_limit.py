"""Request size limits, enforced before a route reads anything: a body over
`ENERGYHUB_API_MAX_BODY_BYTES` is a 413 and a query string over `ENERGYHUB_API_MAX_QUERY_BYTES` a
414, each JSON naming the size and the limit.

A declared `Content-Length` over the limit is refused at once, unread; a body sent without one
(chunked) is counted as it arrives and refused once it passes the limit, so no route ever holds
more than the limit in memory.
"""

from __future__ import annotations

from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from energyhub.api.errors import ErrorPublic, FieldError


def _too_large(size: str, limit: int) -> str:
    return f"the request body is {size} bytes; the limit is {limit} (ENERGYHUB_API_MAX_BODY_BYTES)"


def _refusal(status: int, location: str, message: str) -> JSONResponse:
    error = FieldError(location=location, field=location, message=message)
    return JSONResponse(
        ErrorPublic(detail=message, errors=[error]).model_dump(), status_code=status
    )


class SizeLimitMiddleware:
    """413 for a body over `max_body_bytes`, 414 for a query string over `max_query_bytes`."""

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
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            message = _too_large(declared.decode(), self.max_body_bytes)
            await _refusal(413, "body", message)(scope, receive, send)
            return
        await self.app(scope, self._counting(receive), send)

    def _counting(self, receive: Receive) -> Receive:
        """`receive` that stops a body (chunked, or longer than declared) at the limit."""
        received = 0
        limit = self.max_body_bytes

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:  # FastAPI passes an HTTPException from here through
                    raise HTTPException(413, _too_large(f"more than {limit}", limit))
            return message

        return counted
