"""HTTP errors in one place: every error is JSON naming the bad field; never a stack trace.

energyhub's own errors map to 4xx here and only here; anything unexpected is logged with its
traceback and answered with a bare 500. Every 4xx names at least one field: the parameter at
fault, or the part of the request (the `Authorization` header, the path, the body) that is.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from energyhub.errors import CONTROL, DatabaseUnavailableError, EnergyhubError, StoredSiteError
from energyhub.optimize.errors import PlanInputError
from energyhub.plans.errors import PlanNotFoundError, PlanSiteError, PlanStateError

log = logging.getLogger(__name__)

LOCATIONS = ("query", "path", "body", "header")


class FieldError(BaseModel):
    """One bad input: where it was, which field, what is wrong."""

    location: str = Field(examples=["query"])
    field: str = Field(examples=["step"])
    message: str = Field(examples=["step must be one of 1m, 5m, 15m, 1h, 1d, got '7m'"])


class ErrorPublic(BaseModel):
    """Every error response: a one-line message and, for bad input, the fields at fault."""

    detail: str = Field(examples=["step: step must be one of 1m, 5m, 15m, 1h, 1d, got '7m'"])
    errors: list[FieldError] = Field(
        default_factory=list, description="One entry per bad input; at least one in every 4xx."
    )


class ApiError(Exception):
    """An HTTP error raised at the API edge."""

    def __init__(
        self,
        status: int,
        detail: str,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status = status
        self.detail = detail
        self.errors = errors or []
        self.headers = headers
        super().__init__(detail)


def bad_input(location: str, field: str, message: str) -> ApiError:
    """A 422 naming one parameter."""
    return ApiError(
        422, f"{field}: {message}", [FieldError(location=location, field=field, message=message)]
    )


def not_found(what: str) -> ApiError:
    return ApiError(404, f"no {what}")


def _response(error: ApiError) -> JSONResponse:
    body = ErrorPublic(detail=error.detail, errors=error.errors)
    return JSONResponse(body.model_dump(), status_code=error.status, headers=error.headers)


def _field_error(error: dict[str, Any]) -> FieldError:
    if error.get("type") == "json_invalid":  # loc is ("body", offset): the body is at fault
        reason = (error.get("ctx") or {}).get("error", "invalid")
        at = error.get("loc", ("body", "?"))[-1]
        return FieldError(location="body", field="body", message=f"not JSON: {reason} at {at}")
    loc = [str(part) for part in error.get("loc", ())]
    location = loc[0] if loc and loc[0] in LOCATIONS else "body"
    path = loc[1:] if loc and loc[0] in LOCATIONS else loc
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    value = error.get("input")
    first_word = message.split(" ", 1)[0]
    if isinstance(value, dict) and first_word in value:  # a check across fields names its first
        path = [*path, first_word]  # ("serial_last (1) is before serial_first (10)")
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        shown = repr(value) if len(repr(value)) <= 60 else f"{repr(value)[:57]}..."
        if "got " not in message:
            message = f"{message}, got {shown}"
    return FieldError(location=location, field=".".join(path) or location, message=message)


def from_energyhub(exc: EnergyhubError) -> ApiError:
    """The HTTP meaning of energyhub's own errors."""
    if isinstance(exc, PlanNotFoundError):
        return not_found(f"plan {exc.plan_id}")
    if isinstance(exc, PlanStateError | PlanSiteError):
        return ApiError(409, str(exc))
    if isinstance(exc, PlanInputError):
        field = f"inputs.{exc.column}" if exc.column else "inputs"
        return bad_input("body", field, str(exc))
    if isinstance(exc, StoredSiteError):  # the stored data, not the request, is at fault
        return ApiError(409, str(exc))
    if isinstance(exc, DatabaseUnavailableError):
        return ApiError(503, "the database is unavailable; try again later")
    return ApiError(400, str(exc))


def as_api_error(exc: Exception) -> ApiError:
    """Any exception as the ApiError to answer with."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, RequestValidationError):
        errors = [_field_error(e) for e in exc.errors()]
        detail = "; ".join(f"{e.field}: {e.message}" for e in errors) or "invalid request"
        return ApiError(422, detail, errors)
    if isinstance(exc, StarletteHTTPException):
        headers = dict(exc.headers) if exc.headers else None
        return ApiError(exc.status_code, str(exc.detail), headers=headers)
    if isinstance(exc, EnergyhubError):
        return from_energyhub(exc)
    if isinstance(exc, psycopg.OperationalError):  # the pool timed out or the connection broke
        return ApiError(503, "the database is unavailable; try again later")
    if isinstance(exc, psycopg.DataError):  # a value the types let through, PostgreSQL did not
        reason = exc.diag.message_primary or str(exc)
        return ApiError(422, f"a value the database cannot hold: {reason}")
    return ApiError(500, "internal error; the server log has the details")


FALLBACK: dict[int, tuple[str, str]] = {
    400: ("body", "body"),
    401: ("header", "Authorization"),
    403: ("header", "Authorization"),
    405: ("path", "method"),
    406: ("header", "Accept"),
    413: ("body", "body"),
    414: ("query", "query"),
    415: ("header", "Content-Type"),
}
"""The part of a request that a 4xx without a named parameter is about."""


def _parameters(request: Request) -> list[tuple[str, str, str]]:
    """(location, name, value) of the request's path parameters and of the query parameters its
    route declares (an undeclared one is ignored by the route: no error is about it)."""
    path = [("path", k, str(v)) for k, v in request.path_params.items()]
    declared = _declared_query(request)
    return path + [
        ("query", k, v)
        for k, v in request.query_params.multi_items()
        if declared is None or k in declared
    ]


def _declared_query(request: Request) -> set[str] | None:
    """The query parameters the matched route declares, its dependencies' included (None: no
    route matched)."""
    dependant = getattr(request.scope.get("route"), "dependant", None)
    if dependant is None:
        return None
    names: set[str] = set()
    stack = [dependant]
    while stack:
        node = stack.pop()
        names.update(param.alias for param in node.query_params)
        stack.extend(node.dependencies)
    return names


def named_fields(request: Request, error: ApiError) -> list[FieldError]:
    """`error.errors`, or the fields it is about: the parameters whose value its message names
    (a 404's unknown id, a 409's plan), else the part of the request its status is about."""
    if error.errors or not 400 <= error.status < 500:
        return error.errors
    message = error.detail
    params = _parameters(request)
    if error.status == 422 and message.startswith("a value the database cannot hold"):
        suspects = [p for p in params if _unstorable(p[2])] or params
        return [FieldError(location=loc, field=k, message=message) for loc, k, _ in suspects] or [
            FieldError(location="body", field="body", message=message)
        ]
    named = [p for p in params if p[2] and p[2] in message]
    if named:
        return [FieldError(location=loc, field=k, message=message) for loc, k, _ in named]
    location, field = FALLBACK.get(error.status, ("path", "path"))
    return [FieldError(location=location, field=field, message=message)]


def _unstorable(value: str) -> bool:
    """A parameter PostgreSQL may refuse: control characters, or digits beyond bigint."""
    digits = value.lstrip("+-")
    return CONTROL.search(value) is not None or (digits.isdigit() and len(digits) > 18)


async def handle_error(request: Request, exc: Exception) -> JSONResponse:
    error = as_api_error(exc)
    if error.status == 500:
        log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    elif isinstance(exc, psycopg.DataError):  # one line: a bound the types should have had
        log.warning("%s %s: %s", request.method, request.url.path, error.detail)
    error.errors = named_fields(request, error)
    if error.status == 405 and (allowed := _allowed(request)):
        error.headers = {**(error.headers or {}), "Allow": ", ".join(allowed)}
    return _response(error)


def _allowed(request: Request) -> list[str]:
    """Every method the API documents for this path (Starlette names only the first route's)."""
    paths: dict[str, dict[str, Any]] = request.app.openapi()["paths"]
    for template, operations in paths.items():
        if re.fullmatch(re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template)), request.url.path):
            return sorted(method.upper() for method in operations)
    return []


def install(app: FastAPI) -> None:
    """Register the handler that turns every error into ErrorPublic JSON.

    A database outage (psycopg.OperationalError, the pool's timeout included) and a value
    PostgreSQL refuses (psycopg.DataError) are expected: they are handled like the others. Left
    to the catch-all `Exception` handler they are answered the same, but Starlette then re-raises
    them and uvicorn logs a traceback for every such request.
    """
    expected = (ApiError, RequestValidationError, StarletteHTTPException, EnergyhubError)
    for kind in (*expected, psycopg.OperationalError, psycopg.DataError):
        app.add_exception_handler(kind, handle_error)
    app.add_exception_handler(Exception, handle_error)


def responses(
    *statuses: int, meaning_of: dict[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI documentation of the error statuses a route can answer (`meaning_of`: a route's
    own meaning of a status)."""
    meaning = {
        401: "No or unknown API key (send `Authorization: Bearer <key>`)",
        403: "The key's role may not do this",
        404: "Unknown id, or outside the key's site scope",
        409: "The plan's status does not allow this",
        422: "Bad input: the message names the parameter (and a limit, how to page)",
        503: "The database is unavailable",
    }
    meaning.update(meaning_of or {})
    return {s: {"model": ErrorPublic, "description": meaning[s]} for s in statuses}
