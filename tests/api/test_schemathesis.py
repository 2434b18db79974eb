"""Schemathesis over every operation of /openapi.json: no server error, no schema violation, and
every 4xx names the field at fault in `errors[]`.

Cases are drawn with Hypothesis (positive and negative, with and without the world's real ids),
then sent through the in-process client (so the app's lifespan and pool live in the test's event
loop) with keys of every role and of sites at three levels, each response checked by schemathesis
and by `names_a_field`. A stateful pass follows the links a client follows: create a plan →
read it and its schedule → approve it → approve it again. And the `schemathesis` command line runs
against the API served by uvicorn, as a developer would run it.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
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

from energyhub.api.app import create_app
from tests.api.conftest import World, as_key, settings_for
from tests.api.test_plans import body as plan_body
from tests.api.test_ui_browser import served

__all__ = ["served"]  # the fixture, imported to be used here

EXAMPLES = 10
"""Cases per operation and mode: enough to hit every parameter's edges, bounded in time."""

POSITIVE_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
NEGATIVE_CHECKS = [not_a_server_error, negative_data_rejection]
KEYS = [("admin", "shanghai"), ("viewer", "b01"), ("manager", "b01"), ("operator", "acme-bio")]
"""Keys the cases take turns with: every role, at city, building and enterprise level."""
REQUEST_PARTS = {"body", "Authorization", "path", "query", "method", "Content-Type", "Accept"}
"""What an error may name besides a parameter or a body field: the part of the request."""


def draw(strategy: Any, n: int) -> list[Any]:
    """Up to `n` cases of the strategy; none for an operation with nothing to negate. Quiet:
    Hypothesis printed "You can reproduce this failure by adding @seed(...)" for each of those
    (/health, /metrics, ...), lines that stood in every failure's captured output although
    nothing had failed there."""
    cases: list[Any] = []

    @settings(
        max_examples=n,
        database=None,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
    )
    @given(strategy)
    def collect(case: Any) -> None:
        cases.append(case)

    try:
        collect()
    except Unsatisfiable:  # nothing to negate in an operation without parameters
        return []
    return cases


def fields_of(raw: dict[str, Any], path: str, method: str) -> set[str]:
    """Names an error of this operation may give: its parameters, its body's top-level fields."""
    operation = raw["paths"][path][method.lower()]
    names = {p["name"] for p in operation.get("parameters", [])}
    ref = (
        operation.get("requestBody", {})
        .get("content", {})
        .get("application/json", {})
        .get("schema", {})
        .get("$ref")
    )
    if ref:
        names |= set(raw["components"]["schemas"][ref.rpartition("/")[2]].get("properties", {}))
    return names | REQUEST_PARTS


def names_a_field(response: httpx.Response, known: set[str]) -> str | None:
    """None if the response is no 4xx, or a JSON 4xx whose errors[] names fields of the
    operation; else what is wrong."""
    if not 400 <= response.status_code < 500:
        return None
    try:
        errors = response.json().get("errors")
    except ValueError:
        return f"a {response.status_code} that is not JSON: {response.text[:200]!r}"
    if not errors:
        return f"a {response.status_code} with an empty errors[]: {response.text[:300]}"
    for error in errors:
        field = str(error.get("field", ""))  # a path: a key sent with a "." in it is whole
        if field not in known and field.split(".")[0] not in known:
            return f"a {response.status_code} naming {error.get('field')!r}, not one of {known}"
    return None


async def send(client: httpx.AsyncClient, case: Any, key: dict[str, str]) -> httpx.Response:
    """Send with a key, unless the case is about a missing Authorization header."""
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


CONFORMANCE_TIMEOUT_S = 600
"""1,284 requests and their generation took 47 s on a quiet machine and 199 s at load average 6
on the 2 shared cores (228 s with 25 examples per mode); under the suite's 300 s pytest-timeout a
busy run was stopped with a stack dump instead of a finding."""


@pytest.mark.slow
@pytest.mark.timeout(CONFORMANCE_TIMEOUT_S)
async def test_openapi_conformance(client: httpx.AsyncClient, app: FastAPI, world: World) -> None:
    raw = (await client.get("/openapi.json")).json()
    schema = schemathesis.openapi.from_dict(raw)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as bare:
        failures, sent = await run_all(bare, schema, raw, world)
        chain = await stateful(bare, app, world)
    await app.state.api.runner.wait_idle()
    assert sent > 400
    assert failures + chain == [], "\n\n".join((failures + chain)[:8])


async def run_all(
    client: httpx.AsyncClient, schema: Any, raw: dict[str, Any], world: World
) -> tuple[list[str], int]:
    """Every operation in four modes; the failures found and the number of requests sent."""
    known_ids = {
        "site_id": "b01",
        "meter_id": world.meters["b01/main"],
        "plan_id": world.plans["b01"],
    }
    keys = itertools.cycle([as_key(world, role, site) for role, site in KEYS])
    failures: list[str] = []
    sent = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        params = {
            p.name: known_ids[p.name] for p in operation.path_parameters if p.name in known_ids
        }
        known = fields_of(raw, operation.path, operation.method)
        strategies = [
            (operation.as_strategy(GenerationMode.POSITIVE), POSITIVE_CHECKS),
            (
                operation.as_strategy(GenerationMode.POSITIVE, path_parameters=params),
                POSITIVE_CHECKS,
            ),
            (operation.as_strategy(GenerationMode.NEGATIVE), NEGATIVE_CHECKS),
            (
                operation.as_strategy(GenerationMode.NEGATIVE, path_parameters=params),
                NEGATIVE_CHECKS,
            ),
        ]
        for strategy, checks in strategies:
            for case in draw(strategy, EXAMPLES):
                response = await send(client, case, next(keys))
                sent += 1
                where = f"{case.method} {response.request.url}"
                try:
                    case.validate_response(response, checks=checks)
                except AssertionError as exc:  # schemathesis raises a FailureGroup
                    failures.append(f"{where}: {exc}")
                sent_keys = set(case.body) if isinstance(case.body, dict) else set()
                problem = names_a_field(response, known | sent_keys)  # an unknown key it sent
                if problem:
                    failures.append(f"{where}: {problem}")
    return failures, sent


async def stateful(client: httpx.AsyncClient, app: FastAPI, world: World) -> list[str]:
    """Create a plan → read it → its schedule → approve → approve again, with the keys whose
    roles may (and one that may not); the failures found."""
    failures: list[str] = []

    def expect(response: httpx.Response, status: int, known: set[str]) -> Any:
        where = f"{response.request.method} {response.request.url}"
        if response.status_code != status:
            failures.append(f"{where}: {response.status_code}, expected {status}: {response.text}")
        problem = names_a_field(response, known)
        if problem:
            failures.append(f"{where}: {problem}")
        return response.json() if response.headers.get("content-type") == "application/json" else {}

    manager, operator = as_key(world, "manager", "b01"), as_key(world, "operator", "b01")
    viewer = as_key(world, "viewer", "b01")
    plan_fields = {"plan_id", *REQUEST_PARTS}
    expect(await client.post("/plans", json=plan_body(), headers=viewer), 403, REQUEST_PARTS)
    created = await client.post("/plans", json=plan_body(), headers=manager)
    plan = expect(created, 202, REQUEST_PARTS)
    location = created.headers.get("location", "")
    if not plan or location != f"/plans/{plan['id']}":
        return [*failures, f"POST /plans: no plan or Location ({location!r})"]
    await app.state.api.runner.wait_idle()
    read = expect(await client.get(location, headers=viewer), 200, plan_fields)
    if read.get("status") != "draft":
        failures.append(f"GET {location}: status {read.get('status')}, expected draft")
    expect(await client.get(f"{location}/schedule", headers=viewer), 200, plan_fields)
    expect(await client.get(f"{location}/actual", headers=viewer), 200, plan_fields)
    expect(await client.post(f"{location}/approve", headers=manager), 403, plan_fields)
    approved = expect(await client.post(f"{location}/approve", headers=operator), 200, plan_fields)
    if approved.get("status") != "approved":
        failures.append(f"POST {location}/approve: status {approved.get('status')}")
    expect(await client.post(f"{location}/approve", headers=operator), 409, plan_fields)
    outside = as_key(world, "operator", "acme-bio")
    expect(await client.get(location, headers=outside), 404, plan_fields)
    admin = as_key(world, "admin", "shanghai")
    for plan_id in world.plans.values():  # a building with a battery, one without, a park
        for view in ("", "/schedule", "/actual"):
            expect(await client.get(f"/plans/{plan_id}{view}", headers=admin), 200, plan_fields)
    return failures


@pytest.mark.slow
def test_the_command_line_runs(served: tuple[str, World], tmp_path: Path) -> None:
    """`schemathesis run` on the served API (the dependency set keeps it working): every
    operation tried, none a server error."""
    base, world = served
    command = Path(sys.executable).parent / "schemathesis"
    started = time.monotonic()
    done = subprocess.run(
        [
            str(command),
            "run",
            f"{base}/openapi.json",
            "--header",
            f"Authorization: Bearer {world.token('admin', 'shanghai')}",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "3",
            "--phases",
            "examples,fuzzing,stateful",
            "--workers",
            "1",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=tmp_path,  # its .schemathesis/ cache lands there, not in the repository
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert "AttributeError" not in output and "TrafficPolice" not in output
    document = create_app(settings_for(world.url)).openapi()
    operations = sum(len(methods) for methods in document["paths"].values())
    assert f"{operations} selected" in output or f"{operations} total" in output, output[-2000:]
    assert time.monotonic() - started < 300
