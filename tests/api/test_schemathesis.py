"""Schemathesis against /openapi.json: no server error and no schema violation on any route.

Cases are drawn with Hypothesis first, then sent through the same in-process client (so the
app's lifespan and pool live in the test's event loop), each response checked by schemathesis.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.conftest import World

EXAMPLES = 12
"""Cases per operation and mode: enough to hit every parameter's edges, bounded in time."""

POSITIVE_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def draw(strategy: Any, n: int) -> list[Any]:
    cases: list[Any] = []

    @settings(
        max_examples=n,
        database=None,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(case: Any) -> None:
        cases.append(case)

    try:
        collect()
    except Unsatisfiable:  # nothing to negate in an operation without parameters
        return []
    return cases


async def send(client: httpx.AsyncClient, case: Any, key: dict[str, str]) -> httpx.Response:
    """Send with our key, unless the case is about a missing Authorization header."""
    headers = key if "Authorization" in (case.headers or {}) else None
    kwargs = case.as_transport_kwargs(base_url="http://api", headers=headers)
    content = kwargs.get("data")
    return await client.request(
        kwargs["method"],
        kwargs["url"],
        params=kwargs.get("params"),
        headers=kwargs.get("headers"),
        json=kwargs.get("json"),
        content=content.encode() if isinstance(content, str) else content,
    )


@pytest.mark.slow
async def test_openapi_conformance(client: httpx.AsyncClient, app: FastAPI, world: World) -> None:
    raw = (await client.get("/openapi.json")).json()
    schema = schemathesis.openapi.from_dict(raw)
    key = {"Authorization": client.headers["Authorization"]}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as bare:
        failures, sent = await run_all(bare, schema, key, world)
    await app.state.api.runner.wait_idle()
    assert sent > 200
    assert failures == [], "\n\n".join(failures[:5])


async def run_all(
    client: httpx.AsyncClient, schema: Any, key: dict[str, str], world: World
) -> tuple[list[str], int]:
    """Every operation in three modes; the failures found and the number of requests sent."""
    known = {"site_id": "b01", "meter_id": world.meters["b01/main"], "plan_id": world.plans["b01"]}
    failures: list[str] = []
    sent = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        params = {p.name: known[p.name] for p in operation.path_parameters if p.name in known}
        strategies = [
            (operation.as_strategy(GenerationMode.POSITIVE), POSITIVE_CHECKS),
            (
                operation.as_strategy(GenerationMode.POSITIVE, path_parameters=params),
                POSITIVE_CHECKS,
            ),
            (
                operation.as_strategy(GenerationMode.NEGATIVE),
                [not_a_server_error, negative_data_rejection],
            ),
        ]
        for strategy, checks in strategies:
            for case in draw(strategy, EXAMPLES):
                response = await send(client, case, key)
                sent += 1
                try:
                    case.validate_response(response, checks=checks)
                except (
                    AssertionError
                ) as exc:  # schemathesis raises a FailureGroup (an AssertionError)
                    failures.append(f"{case.method} {response.request.url}: {exc}")
    return failures, sent
