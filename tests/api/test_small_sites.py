"""The smallest sites a site file allows: a park of one building without meters or assets, and a
park without buildings. A city without parks is refused with the path named. Every GET of the API
and every page answers them without a server error, and each refusal names its field."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from energyhub.api.app import create_app
from energyhub.api.keys import create_key
from energyhub.errors import SiteFileError
from energyhub.sites import parse_site
from energyhub.store.db import connect
from tests.api.conftest import settings_for
from tests.scheduler.conftest import prepare_db

SITES = ("sc", "one", "b1", "empty")


def site_doc() -> dict[str, Any]:
    building = {"id": "b1", "class": "lab", "floor_area_m2": 100}
    return {"version": 1, "timezone": "Asia/Shanghai", "city": {"id": "sc", "parks": [
        {"id": "one", "grid": {"import_max_kw": 100}, "buildings": [building]},
        {"id": "empty", "grid": {"import_max_kw": 100}},
    ]}}  # fmt: skip


def test_a_city_without_parks_is_refused_by_path() -> None:
    for city, problem in (({"id": "sc", "parks": []}, "city.parks: must not be empty, got []"),
                          ({"id": "sc"}, "city.parks: is required")):  # fmt: skip
        with pytest.raises(SiteFileError) as caught:
            parse_site({"version": 1, "city": city}, "site.yaml")
        assert caught.value.problems == [problem]


@pytest.fixture
async def client(pg_url: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    await prepare_db(pg_url, parse_site(site_doc(), "small.yaml"))
    site_file = tmp_path / "small.yaml"
    site_file.write_text(yaml.safe_dump(site_doc()))
    async with connect(pg_url) as conn:
        _, token = await create_key(conn, "admin", "sc", "admin@sc")
    app = create_app(settings_for(pg_url, site_file=site_file))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://api", headers=headers
        ) as c:
            yield c


async def test_every_get_answers_the_smallest_sites(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    paths = ["/ui", "/ui/plans"]
    for path, operations in spec["paths"].items():
        if "get" in operations and "{" not in path.replace("{site_id}", ""):
            paths += [path.replace("{site_id}", s) for s in SITES] if "{site_id}" in path else [path]
    paths += [f"/ui/sites/{s}{page}" for s in SITES for page in ("", "/carbon", "/load-chart")]
    paths += [f"/sites/{s}/forecast?source=now" for s in SITES]
    paths += [f"/carbon/{s}?period=2026-11" for s in SITES]
    answered = {}
    for path in paths:
        answer = await client.get(path)
        answered[path] = answer.status_code
        assert answer.status_code < 500, (path, answer.text[:300])
        if answer.status_code >= 400 and not path.startswith("/ui"):
            assert answer.json()["errors"][0]["field"], (path, answer.text)
    assert answered["/sites/b1/load"] == answered["/sites/empty/savings"] == 200
    assert answered["/ui/sites/empty"] == answered["/ui/sites/b1"] == 200
    assert answered["/sites/sc/forecast/backtest"] == 422
