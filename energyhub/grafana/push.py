"""`grafana push`: create or update the datasource, the folder and every dashboard, by uid."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, cast
from urllib.parse import urlsplit, urlunsplit

from grafana_client.api import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException

from energyhub.errors import EnergyhubError
from energyhub.grafana.model import Dashboard, JsonDict
from energyhub.grafana.provisioning import FOLDER_TITLE, FOLDER_UID

NOT_FOUND = 404
PUSH_MESSAGE = "energyhub grafana push"
"""The version-history note Grafana keeps with each dashboard saved by push."""
TIMEOUT_S = 10.0


class Datasources(Protocol):
    def get_datasource_by_uid(self, datasource_uid: str) -> Any: ...
    def create_datasource(self, datasource: JsonDict) -> Any: ...
    def update_datasource_by_uid(self, datasource_uid: str, datasource: JsonDict) -> Any: ...


class Folders(Protocol):
    def get_folder(self, uid: str) -> Any: ...
    def create_folder(self, title: str, uid: str | None = None) -> Any: ...
    def update_folder(self, uid: str, title: str | None = None, overwrite: bool = False) -> Any: ...


class Dashboards(Protocol):
    def update_dashboard(self, dashboard: JsonDict) -> Any: ...


class Grafana(Protocol):
    """The part of grafana-client's GrafanaApi (untyped) that push uses, typed."""

    datasource: Datasources
    folder: Folders
    dashboard: Dashboards


class GrafanaPushError(EnergyhubError):
    """Grafana refused or could not be reached; the message names the step and Grafana's reason."""


@dataclass(frozen=True)
class Pushed:
    """One object in Grafana after the push: what it is, what push did, where to open it."""

    kind: str
    title: str
    action: str
    url: str


def grafana_api(url: str, token: str) -> Grafana:
    """A client for the Grafana at `url` (a sub-path like /grafana works) with a bearer token."""
    expected = f"--url: expected http(s)://host[:port][/path], got {url!r}"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError for a port that is no number or too large)
    except ValueError as exc:  # an unclosed IPv6 bracket, a port beyond 65535
        raise GrafanaPushError(f"{expected} ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise GrafanaPushError(expected)
    path = parts.path if parts.path.endswith("/") else parts.path + "/"
    api = GrafanaApi.from_url(urlunsplit((*parts[:2], path, "", "")), token, timeout=TIMEOUT_S)
    return cast(Grafana, api)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")


def _request(step: str, action: Callable[[], Any], missing_ok: bool = False) -> JsonDict | None:
    """Run one API call; Grafana's refusals and unreachable hosts become GrafanaPushError.

    With `missing_ok`, Grafana's 404 (no object with that uid) is None instead.
    """
    try:
        result = action()
    except GrafanaClientError as exc:
        if missing_ok and exc.status_code == NOT_FOUND:
            return None
        raise GrafanaPushError(f"{step}: Grafana answered {exc.message}") from None
    except GrafanaException as exc:
        raise GrafanaPushError(f"{step}: {exc.message}") from None
    except OSError as exc:
        raise GrafanaPushError(f"{step}: cannot reach Grafana: {exc}") from None
    return result if isinstance(result, dict) else {}


def _call(step: str, action: Callable[[], Any]) -> JsonDict:
    found = _request(step, action)
    return found if found is not None else {}


def push_datasource(api: Grafana, base_url: str, model: JsonDict) -> Pushed:
    uid = model["uid"]
    step = f"datasource {uid}"
    if _request(step, lambda: api.datasource.get_datasource_by_uid(uid), missing_ok=True) is None:
        _call(step, lambda: api.datasource.create_datasource(model))
        action = "created"
    else:
        _call(step, lambda: api.datasource.update_datasource_by_uid(uid, model))
        action = "updated"
    url = f"{base_url.rstrip('/')}/connections/datasources/edit/{uid}"
    return Pushed("datasource", model["name"], action, url)


def push_folder(api: Grafana, base_url: str) -> Pushed:
    step = f"folder {FOLDER_UID}"
    folder = _request(step, lambda: api.folder.get_folder(FOLDER_UID), missing_ok=True)
    if folder is None:
        folder = _call(step, lambda: api.folder.create_folder(FOLDER_TITLE, uid=FOLDER_UID))
        action = "created"
    elif folder.get("title") != FOLDER_TITLE:
        folder = _call(
            step, lambda: api.folder.update_folder(FOLDER_UID, title=FOLDER_TITLE, overwrite=True)
        )
        action = "updated"
    else:
        action = "unchanged"
    return Pushed("folder", FOLDER_TITLE, action, _origin(base_url) + str(folder.get("url", "")))


def push_dashboard(api: Grafana, base_url: str, dashboard: Dashboard) -> Pushed:
    body = {
        "dashboard": {**dashboard.json(), "id": None},
        "folderUid": FOLDER_UID,
        "overwrite": True,
        "message": PUSH_MESSAGE,
    }
    saved = _call(f"dashboard {dashboard.uid}", lambda: api.dashboard.update_dashboard(body))
    action = f"saved as version {saved.get('version')}"
    return Pushed("dashboard", dashboard.title, action, _origin(base_url) + str(saved.get("url")))


def push(
    api: Grafana, base_url: str, datasource: JsonDict, dashboards: list[Dashboard]
) -> list[Pushed]:
    """Datasource, folder, then dashboards; running it again updates the same objects."""
    return [
        push_datasource(api, base_url, datasource),
        push_folder(api, base_url),
        *(push_dashboard(api, base_url, d) for d in dashboards),
    ]
