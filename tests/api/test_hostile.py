"""Hostile and careless requests, each answered with a 4xx whose `errors[]` names the field.

Every case here once ended in a 500 or in a 4xx with an empty `errors[]` (issue 20); each is sent
to the app over the real database and must leave it unchanged.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pandas as pd
import psycopg
import pytest
from fastapi import FastAPI
from starlette.requests import Request

from energyhub.api.deps import ConnDep
from energyhub.api.errors import handle_error
from energyhub.api.size_limit import duplicate_key, too_deep
from energyhub.store.db import connect
from tests.api.conftest import World, as_key
from tests.api.test_plans import body as plan_body


@pytest.fixture
def world(shared_world: World) -> World:
    """One world for the module: a refused request changes nothing (each test checks so)."""
    return shared_world


def named(response: httpx.Response, status: int, field: str, location: str | None = None) -> None:
    """The response is `status` JSON whose errors[] has an entry for `field`."""
    assert response.status_code == status, response.text
    errors = response.json()["errors"]
    assert any(e["field"] == field for e in errors), response.text
    if location is not None:
        assert any(e["location"] == location for e in errors if e["field"] == field)
    assert response.json()["detail"]


async def rows(world: World, table: str) -> int:
    async with connect(world.url) as conn:
        cur = await conn.execute(f"SELECT count(*) FROM {table}")
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize("value", ["b01\x00", "b01\x1b[2J", "\x00"])
async def test_control_characters_in_a_text_filter(client: httpx.AsyncClient, value: str) -> None:
    named(await client.get("/alerts", params={"site": value}), 422, "site", "query")
    named(await client.get("/plans", params={"site_id": value}), 422, "site_id", "query")


@pytest.mark.parametrize(
    "period", ["0001", "9999", "9999-12", "9999-12-31", "0001-01-01", "２０２６", "2026-١٠"]
)
async def test_carbon_periods_at_the_ends_of_the_calendar(
    client: httpx.AsyncClient, period: str
) -> None:
    named(await client.get("/carbon/b01", params={"period": period}), 422, "period", "query")


@pytest.mark.parametrize(
    ("rules", "field"),
    [
        ('{"limit": {"limit_kw": Infinity}}', "limit.limit_kw"),
        ('{"limit": {"limit_kw": NaN}}', "limit.limit_kw"),
        ('{"night_base": {"usual_kw": 1e400}}', "night_base.usual_kw"),
        ('{"ingest": {"max_rejects_per_min": 1e400}}', "ingest.max_rejects_per_min"),
        ('{"silence": {"meters": ["main\\u0000"]}}', "silence.meters.0"),
        ('{"soc": {"hysteresis_pct": false}}', "soc.hysteresis_pct"),
        ('{"limit": {"enabled": 1}}', "limit.enabled"),
    ],
)
async def test_rules_that_the_database_cannot_hold(
    client: httpx.AsyncClient, world: World, rules: str, field: str
) -> None:
    before = await rows(world, "alert_rules")
    response = await client.put(
        "/alerts/rules/b02", content=rules, headers={"Content-Type": "application/json"}
    )
    named(response, 422, field, "body")
    assert await rows(world, "alert_rules") == before


@pytest.mark.parametrize("site_id", ["shanghai", "acme-bio"])
async def test_rules_of_a_city_or_an_enterprise_name_the_site(
    client: httpx.AsyncClient, site_id: str
) -> None:
    named(await client.get(f"/alerts/rules/{site_id}"), 422, "site_id", "path")
    named(await client.put(f"/alerts/rules/{site_id}", json={}), 422, "site_id", "path")


def _with_step(step: timedelta, steps: int = 2) -> dict[str, Any]:
    document = plan_body()
    start = pd.Timestamp("2026-11-20T00:00:00+08:00")
    document["inputs"]["ts"] = [(start + i * step).isoformat() for i in range(steps)]
    document["inputs"]["columns"] = {
        name: values[:steps] + [values[0]] * (steps - len(values))
        for name, values in document["inputs"]["columns"].items()
    }
    return document


@pytest.mark.parametrize(
    "step",
    [timedelta(milliseconds=500), timedelta(microseconds=1), timedelta(days=36525), timedelta(0)],
)
async def test_plan_steps_outside_what_storage_holds(
    client: httpx.AsyncClient, world: World, step: timedelta
) -> None:
    before = await rows(world, "plans")
    named(await client.post("/plans", json=_with_step(step)), 422, "inputs.ts", "body")
    assert await rows(world, "plans") == before


@pytest.mark.parametrize("value", ["Infinity", "-Infinity", "NaN", "1e400", "1e300"])
async def test_plan_inputs_that_are_not_finite_or_too_large(
    client: httpx.AsyncClient, world: World, value: str
) -> None:
    document = plan_body()
    name = next(iter(document["inputs"]["columns"]))
    text = httpx.Request("POST", "/", json=document).content.decode()
    first = text.index("[", text.index(f'"{name}"'))
    text = text[: first + 1] + value + text[text.index(",", first) :]
    before = await rows(world, "plans")
    response = await client.post(
        "/plans", content=text, headers={"Content-Type": "application/json"}
    )
    named(response, 422, f"inputs.columns.{name}.0", "body")
    assert await rows(world, "plans") == before


async def test_a_reject_reason_with_control_characters(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.post(f"/plans/{world.plans['b01']}/reject", json={"reason": "no\x00pe"})
    named(response, 422, "reason", "body")


@pytest.mark.parametrize("depth", [100_000, 3_000, 65])
async def test_deep_json_names_the_body(client: httpx.AsyncClient, depth: int) -> None:
    nested = "[" * depth + "]" * depth
    response = await client.post(
        "/plans", content=nested, headers={"Content-Type": "application/json"}
    )
    named(response, 422, "body", "body")


async def test_deep_json_inside_inputs_names_inputs(client: httpx.AsyncClient) -> None:
    nested = "[" * 3000 + "]" * 3000
    text = '{"level": "building", "site_id": "b01", "inputs": ' + nested + "}"
    response = await client.post(
        "/plans", content=text, headers={"Content-Type": "application/json"}
    )
    named(response, 422, "inputs", "body")


async def test_a_key_given_twice_names_the_key(client: httpx.AsyncClient, world: World) -> None:
    """The parser would keep the later value unseen (b02 planned where b01 was asked)."""
    before = await rows(world, "plans")
    text = '{"level": "building", "site_id": "b01", "site_id": "b02", "inputs": {}}'
    response = await client.post(
        "/plans", content=text, headers={"Content-Type": "application/json"}
    )
    named(response, 422, "site_id", "body")
    assert "given twice" in response.json()["detail"]
    padded = text.replace('"inputs": {}', '"inputs": {"pad": "' + "x" * (3 << 19) + '"}')
    response = await client.post(  # 1.5 MiB: checked in a worker thread, the same answer
        "/plans", content=padded, headers={"Content-Type": "application/json"}
    )
    named(response, 422, "site_id", "body")
    assert await rows(world, "plans") == before


@pytest.mark.parametrize(
    ("body", "key"),
    [
        (b'{"a": 1, "b": {"a": 2}}', None),  # the same key in two objects is fine
        (b'{"a": 1, "b": [{"x": 1}, {"x": 2, "x": 3}]}', "x"),
        (b'{"a" :1,\n "a"\t: 2}', "a"),
        (b'{"\\u0061": 1, "a": 2}', "a"),  # the same key, escaped once
        (b'{"a": ', None),  # not JSON: the route's parse names it
        (b"[1, 2]", None),
    ],
)
def test_duplicate_keys_are_found_at_any_depth(body: bytes, key: str | None) -> None:
    assert duplicate_key(body) == key


async def test_brackets_inside_strings_are_not_depth(client: httpx.AsyncClient) -> None:
    response = await client.post(
        f"/plans/{2**62}/reject", json={"reason": "[" * 450 + "{" * 450 + '\\\\"[['}
    )
    assert response.status_code == 404, response.text  # parsed: only then is the plan looked up


async def _chunks(total: int, size: int = 1 << 20) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        part = min(size, total - sent)
        sent += part
        yield b" " * part


@pytest.mark.parametrize("declared", [True, False])
async def test_a_body_over_the_limit_names_the_body(
    client: httpx.AsyncClient, declared: bool
) -> None:
    total = 8 * 1024 * 1024 + 1
    headers = {"Content-Type": "application/json"}
    if declared:
        response = await client.post("/plans", content=b" " * total, headers=headers)
    else:
        response = await client.post("/plans", content=_chunks(total), headers=headers)
        assert "content-length" not in response.request.headers
    named(response, 413, "body", "body")


async def test_a_malformed_body_names_the_body(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/plans", content=b'{"level": ', headers={"Content-Type": "application/json"}
    )
    named(response, 422, "body", "body")


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/alerts", {"since": "0001-01-01T00:00:00+00:00"}, "since"),
        ("/alerts", {"limit": "99999999999999999999"}, "limit"),
        ("/plans", {"before_id": str(2**63)}, "before_id"),
        ("/sites/b01/load", {"start": "9999-12-31T23:59:59-23:59"}, "start"),
        ("/carbon/b01", {"period": "2026", "factor_year": str(2**70)}, "factor_year"),
        ("/sites/b01/load", {"start": "0.5"}, "start"),  # not seconds since 1970
        ("/alerts", {"until": "1700000000"}, "until"),
        # until before since was an empty list, as if no alert had opened
        ("/alerts", {"since": "2026-12-06T00:00:00Z", "until": "2026-12-05T00:00:00Z"}, "until"),
        (
            "/sites/b01/savings",
            {"start": "2026-12-06T00:00:00Z", "end": "2026-12-05T00:00:00Z"},
            "end",
        ),
    ],
)
async def test_numbers_and_times_beyond_storage(
    client: httpx.AsyncClient, path: str, params: dict[str, str], field: str
) -> None:
    named(await client.get(path, params=params), 422, field, "query")


async def test_a_viewer_refused_changes_nothing(client: httpx.AsyncClient, world: World) -> None:
    before = await rows(world, "alert_rules")
    response = await client.put(
        "/alerts/rules/b01",
        json={"limit": {"limit_kw": 100}},
        headers=as_key(world, "viewer", "b01"),
    )
    assert response.status_code == 403
    assert await rows(world, "alert_rules") == before


async def database_error(world: World, query: str, params: tuple[object, ...]) -> Exception:
    """The error PostgreSQL (or psycopg on its behalf) raises for this query."""
    async with connect(world.url) as conn:
        try:
            await conn.execute(query, params)
        except psycopg.DataError as exc:
            return exc
    raise AssertionError(f"{query} ran")


def request_to(path: str, query: bytes, path_params: dict[str, str]) -> Request:
    scope = {"type": "http", "method": "GET", "path": path, "query_string": query, "headers": [],
             "path_params": path_params}  # fmt: skip
    return Request(scope)


@pytest.mark.parametrize(
    ("query", "params", "raw_query", "field"),
    [
        ("SELECT %s::text", ("b01\x00",), b"site=b01%00&limit=5", "site"),
        ("SELECT %s::int4", (2**40,), b"status=open&limit=1099511627776", None),
        ("SELECT %s::int4", (2**40,), b"limit=99999999999999999999&status=open", "limit"),
    ],
)
async def test_a_database_error_that_comes_through_names_the_parameter(
    world: World, query: str, params: tuple[object, ...], raw_query: bytes, field: str | None
) -> None:
    """What the types missed and PostgreSQL refused: a 422 naming the suspect parameters (those
    PostgreSQL cannot hold, else every one), and one log line, never a 500."""
    exc = await database_error(world, query, params)
    response = await handle_error(request_to("/alerts", raw_query, {}), exc)
    assert response.status_code == 422
    document = json.loads(bytes(response.body))
    assert document["detail"].startswith("a value the database cannot hold: ")
    fields = [e["field"] for e in document["errors"]]
    assert fields == ([field] if field else ["status", "limit"])


@pytest.mark.parametrize(
    ("body", "named_key"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "body"),
        (b'{"level": "b", "inputs": ' + b"[" * 3000 + b"]" * 3000 + b"}", "inputs"),
        (b'{"a": {"b": ' + b"[" * 40 + b"]" * 40 + b"}}", "a"),
        (b'{"reason": "' + b"[" * 450 + b'\\"' + b"{" * 450 + b'"}', None),
        (b'{"x": "\\\\", "y": ' + b"[" * 33 + b"]" * 33 + b"}", "y"),
        (b"[" * 32 + b"]" * 32, None),
    ],
)
def test_depth_is_measured_outside_strings(body: bytes, named_key: str | None) -> None:
    assert too_deep(body) == named_key


async def test_plan_pages_of_sites_without_a_battery(app: FastAPI, world: World) -> None:
    """b02 has no battery: its plan vs actual and its /ui page answer (pandas 3.1 once failed)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ui.test") as browser:
        login = await browser.post("/ui/login", data={"key": world.token(), "next": "/ui"})
        assert login.status_code == 303
        for site in ("b02", "expo"):
            page = await browser.get(f"/ui/plans/{world.plans[site]}")
            assert page.status_code == 200, page.text[-500:]
            assert site in page.text
    headers = as_key(world, "admin", "shanghai")
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        actual = await client.get(f"/plans/{world.plans['b02']}/actual", headers=headers)
    assert actual.status_code == 200
    assert all(step["soc"] == [] for step in actual.json()["steps"])


async def test_refused_requests_leave_the_log_quiet(
    client: httpx.AsyncClient, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """Refusals are the client's business: none writes a warning, an error or a traceback."""
    caplog.set_level(logging.INFO)
    json_type = {"Content-Type": "application/json"}
    answers = [
        await client.get("/alerts", params={"site": "b01\x00"}),
        await client.get("/carbon/b01", params={"period": "0001"}),
        await client.put(
            "/alerts/rules/b02", content='{"limit": {"limit_kw": NaN}}', headers=json_type
        ),
        await client.post("/plans", content=b"[" * 100_000, headers=json_type),
        await client.post("/plans", content=_chunks(9 * 1024 * 1024), headers=json_type),
        await client.get("/alerts/rules/shanghai"),
        await client.get("/plans/0"),
        await client.get("/sites/b01", headers={"Authorization": "Bearer nope"}),
    ]
    assert all(400 <= a.status_code < 500 for a in answers), [a.status_code for a in answers]
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    assert loud == [], [r.getMessage() for r in loud]


async def test_a_database_error_in_a_route_is_a_422_without_a_traceback(
    app: FastAPI, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    """A route whose value PostgreSQL refuses (a type without its bound, added here for the
    test): the whole stack answers 422 naming the parameter, and logs one line, no traceback."""

    @app.get("/test-unbounded")
    async def unbounded(value: int, conn: ConnDep) -> dict[str, int]:
        await conn.execute("SELECT %s::int4", (value,))
        return {"value": value}

    caplog.set_level(logging.INFO)
    response = await client.get("/test-unbounded", params={"value": 2**40})
    named(response, 422, "value", "query")
    assert "integer out of range" in response.json()["detail"]
    lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 1 and not lines[0].exc_info
    assert (await client.get("/test-unbounded", params={"value": 5})).json() == {"value": 5}


@pytest.mark.parametrize("raw", [b"\xff", b'{"reason": "\xc3"}', b"\xfe\xff\x00{"])
async def test_a_body_that_is_not_utf8_names_the_body(
    client: httpx.AsyncClient, raw: bytes
) -> None:
    response = await client.post(
        f"/plans/{2**62}/reject", content=raw, headers={"Content-Type": "application/json"}
    )
    named(response, 422, "body", "body")
    assert "not UTF-8" in response.json()["detail"]


async def test_a_wrong_method_lists_every_allowed_one(client: httpx.AsyncClient) -> None:
    response = await client.delete("/alerts/rules/b01")
    named(response, 405, "method", "path")
    assert response.headers["allow"] == "GET, PUT"


async def test_a_single_valued_parameter_given_twice_names_it(client: httpx.AsyncClient) -> None:
    """The framework would keep one of the values without a word: the request is refused."""
    response = await client.get("/carbon/b01", params=[("period", "2025"), ("period", "2026")])
    named(response, 422, "period", "query")
    assert "given 2 times (2025, 2026)" in response.json()["detail"]
    named(await client.get("/alerts?site=b01&site=b02"), 422, "site", "query")
    assert (await client.get("/carbon/b01", params={"period": "2026"})).status_code == 200


async def test_a_404_names_the_declared_parameter_not_an_unknown_one(
    client: httpx.AsyncClient,
) -> None:
    """An unknown query parameter with the same value as `site_id` was named by the 404 too
    (schemathesis: `?*\\x01=null&site_id=null`); the route ignores it, so no error is about it."""
    response = await client.get("/plans", params=[("zzz", "nowhere"), ("site_id", "nowhere")])
    assert response.status_code == 404, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["site_id"]


@pytest.mark.parametrize("site_id", ["nowhere", "b99"])
async def test_a_plan_for_an_unknown_site_names_the_body_site_id(
    client: httpx.AsyncClient, world: World, site_id: str
) -> None:
    """The 404 named `path` (the fallback): the site is the body's `site_id`, and the path
    /plans has no parameter."""
    before = await rows(world, "plans")
    response = await client.post("/plans", json=plan_body() | {"site_id": site_id})
    named(response, 404, "site_id", "body")
    assert [e["field"] for e in response.json()["errors"]] == ["site_id"]
    assert f"no site '{site_id}'" in response.json()["detail"]
    assert await rows(world, "plans") == before


async def test_a_backtest_of_an_enterprise_says_what_it_is(client: httpx.AsyncClient) -> None:
    """It said "no park or building 'acme-bio' in the site file", which names acme-bio."""
    response = await client.get("/sites/acme-bio/forecast/backtest", params={"days": 1})
    named(response, 422, "site_id", "path")
    assert response.json()["detail"] == (
        "site_id: 'acme-bio' is an enterprise (a tenant of building 'b01'): backtest the "
        "building or its park"
    )
