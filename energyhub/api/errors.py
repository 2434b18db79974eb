"""HTTP errors in one place: every error is JSON naming the bad field; never a stack trace.

energyhub's own errors map to 4xx here and only here; anything unexpected is logged with its
traceback and answered with a bare 500.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from energyhub.errors import DatabaseUnavailableError, EnergyhubError
from energyhub.optimize.errors import PlanInputError
from energyhub.plans.errors import PlanNotFoundError, PlanStateError

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
    errors: list[FieldError] = Field(default_factory=list)


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
    loc = [str(part) for part in error.get("loc", ())]
    location = loc[0] if loc and loc[0] in LOCATIONS else "body"
    path = loc[1:] if loc and loc[0] in LOCATIONS else loc
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    return FieldError(location=location, field=".".join(path) or location, message=message)


def from_energyhub(exc: EnergyhubError) -> ApiError:
    """The HTTP meaning of energyhub's own errors."""
    if isinstance(exc, PlanNotFoundError):
        return not_found(f"plan {exc.plan_id}")
    if isinstance(exc, PlanStateError):
        return ApiError(409, str(exc))
    if isinstance(exc, PlanInputError):
        field = f"inputs.{exc.column}" if exc.column else "inputs"
        return bad_input("body", field, str(exc))
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
    return ApiError(500, "internal error; the server log has the details")


async def _handle(request: Request, exc: Exception) -> JSONResponse:
    error = as_api_error(exc)
    if error.status == 500:
        log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return _response(error)


def install(app: FastAPI) -> None:
    """Register the handler that turns every error into ErrorPublic JSON.

    A database outage (psycopg.OperationalError, the pool's timeout included) is expected: it is
    handled like the others. Left to the catch-all `Exception` handler it is answered the same,
    but Starlette then re-raises it and uvicorn logs a traceback for every request of the outage.
    """
    expected = (ApiError, RequestValidationError, StarletteHTTPException, EnergyhubError)
    for kind in (*expected, psycopg.OperationalError):
        app.add_exception_handler(kind, _handle)
    app.add_exception_handler(Exception, _handle)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI documentation of the error statuses a route can answer."""
    meaning = {
        401: "No or unknown API key (send `Authorization: Bearer <key>`)",
        403: "The key's role may not do this",
        404: "Unknown id, or outside the key's site scope",
        409: "The plan's status does not allow this",
        422: "Bad input: the message names the parameter (and a limit, how to page)",
        503: "The database is unavailable",
    }
    return {s: {"model": ErrorPublic, "description": meaning[s]} for s in statuses}
