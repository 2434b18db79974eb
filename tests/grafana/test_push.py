"""`energyhub grafana push` against a local server speaking Grafana's documented HTTP API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from energyhub.cli import app
from energyhub.grafana import files
from energyhub.store.embedded import free_port
from tests.grafana.fake_grafana import FakeGrafana, serving

TOKEN = "glsa_test_token"  # noqa: S105 (the fake Grafana's token)
DB_URL = "postgresql://grafana_reader:reader-secret@timescaledb:5432/energyhub"
UIDS = [d.uid for d in files.dashboards()]
DASHBOARD_SAVES = [("POST", "/api/dashboards/db")] * len(UIDS)


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    with serving(FakeGrafana(TOKEN)) as server:
        yield server


def _push(url: str, *extra: str, token: str = TOKEN) -> tuple[int, str]:
    args = ["grafana", "push", "--url", url, "--token", token, "--db-url", DB_URL, *extra]
    result = CliRunner().invoke(app, args)
    return result.exit_code, result.output


def _requests(grafana: FakeGrafana, prefix: str = "") -> list[tuple[str, str]]:
    return [(c.method, c.path.removeprefix(prefix)) for c in grafana.calls]


def test_first_push_creates_datasource_folder_and_dashboards(grafana: FakeGrafana) -> None:
    code, output = _push(grafana.url)
    assert code == 0, output
    assert _requests(grafana) == [
        ("GET", "/api/datasources/uid/energyhub-pg"),
        ("POST", "/api/datasources"),
        ("GET", "/api/folders/energyhub"),
        ("POST", "/api/folders"),
        *DASHBOARD_SAVES,
    ]
    assert all(c.authorization == f"Bearer {TOKEN}" for c in grafana.calls)
    created = grafana.calls[1].body
    assert created["uid"] == "energyhub-pg"
    assert created["type"] == "grafana-postgresql-datasource"
    assert created["url"] == "timescaledb:5432"
    assert created["user"] == "grafana_reader"
    assert created["jsonData"]["database"] == "energyhub"
    assert created["jsonData"]["timescaledb"] is True
    assert created["secureJsonData"] == {"password": "reader-secret"}
    assert grafana.calls[3].body == {"title": "energyhub", "uid": "energyhub"}
    saves = [c.body for c in grafana.calls[4:]]
    assert [s["dashboard"]["uid"] for s in saves] == UIDS
    assert all(s["folderUid"] == "energyhub" and s["overwrite"] is True for s in saves)
    assert all(s["dashboard"]["id"] is None for s in saves)
    assert f"{grafana.url}/connections/datasources/edit/energyhub-pg" in output
    assert f"{grafana.url}/dashboards/f/energyhub/energyhub" in output
    for uid in UIDS:
        assert f"{grafana.url}/d/{uid}/" in output


def test_second_push_updates_the_same_objects(grafana: FakeGrafana) -> None:
    assert _push(grafana.url)[0] == 0
    grafana.calls.clear()
    code, output = _push(grafana.url, "--no-timescaledb")
    assert code == 0, output
    assert _requests(grafana) == [
        ("GET", "/api/datasources/uid/energyhub-pg"),
        ("PUT", "/api/datasources/uid/energyhub-pg"),
        ("GET", "/api/folders/energyhub"),
        *DASHBOARD_SAVES,
    ]
    assert list(grafana.datasources) == ["energyhub-pg"]
    assert grafana.datasources["energyhub-pg"]["jsonData"]["timescaledb"] is False
    assert list(grafana.folders) == ["energyhub"]
    assert sorted(grafana.dashboards) == sorted(UIDS)
    assert {d["version"] for d in grafana.dashboards.values()} == {2}
    assert "folder 'energyhub' unchanged" in output


def test_a_renamed_folder_gets_its_title_back(grafana: FakeGrafana) -> None:
    grafana.folders["energyhub"] = {
        "id": 7, "uid": "energyhub", "title": "Energy", "url": "/dashboards/f/energyhub/energy",
        "version": 3,
    }  # fmt: skip
    assert _push(grafana.url)[0] == 0
    update = next(c for c in grafana.calls if c.method == "PUT")
    assert update.path == "/api/folders/energyhub"
    assert update.body == {"title": "energyhub", "overwrite": True}
    assert grafana.folders["energyhub"]["title"] == "energyhub"


def test_push_under_a_sub_path() -> None:
    with serving(FakeGrafana(TOKEN, sub_path="/grafana")) as grafana:
        code, output = _push(grafana.url + "/")
    assert code == 0, output
    assert all(c.path.startswith("/grafana/api/") for c in grafana.calls)
    assert f"{grafana.url}/d/{UIDS[0]}/" in output


def test_a_refused_token_is_a_one_line_error(grafana: FakeGrafana) -> None:
    code, output = _push(grafana.url, token="wrong")  # noqa: S106 (a refused token)
    assert code == 2
    assert "datasource energyhub-pg: Grafana answered Unauthorized" in output
    assert "Traceback" not in output
    assert not grafana.datasources


def test_a_name_taken_by_another_datasource_is_reported(grafana: FakeGrafana) -> None:
    grafana.datasources["other"] = {"uid": "other", "name": "energyhub", "id": 1, "version": 1}
    code, output = _push(grafana.url)
    assert code == 2
    assert "data source with the same name already exists" in output


def test_an_unreachable_grafana_is_a_one_line_error() -> None:
    code, output = _push(f"http://127.0.0.1:{free_port()}")
    assert code == 2
    assert "cannot reach Grafana" in output


def test_bad_urls_are_refused_before_any_request() -> None:
    assert "expected http(s)://host" in _push("ftp://grafana")[1]
    result = CliRunner().invoke(
        app,
        ["grafana", "push", "--url", "http://x", "--token", "t", "--db-url", "mysql://h/db"],
    )
    assert result.exit_code == 2
    assert "expected postgresql://" in result.output


@pytest.mark.parametrize(
    ("url", "db_url", "named"),
    [
        ("http://[::1", DB_URL, "--url: expected http(s)://host[:port][/path], got 'http://[::1'"),
        ("http://grafana:99999", DB_URL, "got 'http://grafana:99999' (Port out of range"),
        ("http://x", "postgresql://u:secret@[::1/db", "got 'postgresql://u:***@[::1/db'"),
        ("http://x", "postgresql://u:secret@h:99999/db", "got 'postgresql://u:***@h:99999/db'"),
        ("http://x", "host=h dbname=d password=secret", "got 'host=h dbname=d password=***'"),
    ],
)
def test_urls_that_do_not_parse_are_named_not_a_traceback(
    url: str, db_url: str, named: str
) -> None:
    result = CliRunner().invoke(
        app, ["grafana", "push", "--url", url, "--token", "t", "--db-url", db_url]
    )
    assert result.exit_code == 2, result.output
    assert named in result.output
    assert "secret" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
