"""A local stand-in for the few Grafana HTTP API endpoints `grafana push` uses.

Shapes and status codes follow Grafana's HTTP API documentation (developers/http_api/
data_source.md, folder.md, dashboard.md): bearer-token auth (401 otherwise), 404 for an unknown
uid, 409 for a name taken by another uid, 412 for an existing dashboard saved without `overwrite`,
and the documented response bodies. Grafana itself does not run on our machines.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

POLL_S = 0.05
"""How often the server thread looks for shutdown (the default half second slows every test)."""


@dataclass
class Call:
    method: str
    path: str
    body: Any
    authorization: str | None


@dataclass
class FakeGrafana:
    """State and request log; `sub_path` serves the API under e.g. /grafana like root_url does."""

    token: str
    sub_path: str = ""
    datasources: dict[str, dict[str, Any]] = field(default_factory=dict)
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    url: str = ""

    def handle(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        """One request, already authenticated: (status, JSON body)."""
        routes = [
            ("GET", r"/api/datasources/uid/([^/]+)", self._get_datasource),
            ("POST", r"/api/datasources", self._create_datasource),
            ("PUT", r"/api/datasources/uid/([^/]+)", self._update_datasource),
            ("GET", r"/api/folders/([^/]+)", self._get_folder),
            ("POST", r"/api/folders", self._create_folder),
            ("PUT", r"/api/folders/([^/]+)", self._update_folder),
            ("POST", r"/api/dashboards/db", self._save_dashboard),
        ]
        for verb, pattern, handler in routes:
            match = re.fullmatch(pattern, path)
            if verb == method and match:
                return handler(body, *match.groups())
        return 404, {"message": "Not found"}

    def _get_datasource(self, body: Any, uid: str) -> tuple[int, Any]:
        if uid not in self.datasources:
            return 404, {"message": "Data source not found"}
        return 200, self.datasources[uid]

    def _stored_datasource(self, body: dict[str, Any], number: int) -> dict[str, Any]:
        stored = {k: v for k, v in body.items() if k != "secureJsonData"}
        secure = {key: True for key in body.get("secureJsonData", {})}
        return {**stored, "id": number, "orgId": 1, "version": 1, "secureJsonFields": secure}

    def _create_datasource(self, body: dict[str, Any]) -> tuple[int, Any]:
        if any(d["name"] == body["name"] for d in self.datasources.values()):
            return 409, {"message": "data source with the same name already exists"}
        stored = self._stored_datasource(body, len(self.datasources) + 1)
        self.datasources[body["uid"]] = stored
        return 200, {
            "datasource": stored,
            "id": stored["id"],
            "message": "Datasource added",
            "name": stored["name"],
        }

    def _update_datasource(self, body: dict[str, Any], uid: str) -> tuple[int, Any]:
        if uid not in self.datasources:
            return 404, {"message": "Data source not found"}
        old = self.datasources.pop(uid)
        stored = self._stored_datasource(body, old["id"])
        stored["version"] = old["version"] + 1
        self.datasources[body.get("uid", uid)] = stored
        return 200, {
            "datasource": stored,
            "id": stored["id"],
            "message": "Datasource updated",
            "name": stored["name"],
        }

    def _folder(self, uid: str, title: str, version: int, number: int) -> dict[str, Any]:
        slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
        url = f"{self.sub_path}/dashboards/f/{uid}/{slug}"
        return {"id": number, "uid": uid, "title": title, "url": url, "version": version}

    def _get_folder(self, body: Any, uid: str) -> tuple[int, Any]:
        if uid not in self.folders:
            return 404, {"message": "folder not found"}
        return 200, self.folders[uid]

    def _create_folder(self, body: dict[str, Any]) -> tuple[int, Any]:
        uid = body.get("uid") or f"f{len(self.folders) + 1}"
        if uid in self.folders or any(f["title"] == body["title"] for f in self.folders.values()):
            return 409, {"message": "a folder with the same name already exists"}
        self.folders[uid] = self._folder(uid, body["title"], 1, len(self.folders) + 1)
        return 200, self.folders[uid]

    def _update_folder(self, body: dict[str, Any], uid: str) -> tuple[int, Any]:
        if uid not in self.folders:
            return 404, {"message": "folder not found"}
        old = self.folders[uid]
        if not body.get("overwrite") and body.get("version") != old["version"]:
            return 412, {
                "message": "The folder has been changed by someone else",
                "status": "version-mismatch",
            }
        self.folders[uid] = self._folder(uid, body["title"], old["version"] + 1, old["id"])
        return 200, self.folders[uid]

    def _save_dashboard(self, body: dict[str, Any]) -> tuple[int, Any]:
        dashboard = body.get("dashboard") or {}
        if not dashboard.get("title"):
            return 400, {"message": "Dashboard title cannot be empty"}
        folder = body.get("folderUid")
        if folder and folder not in self.folders:
            return 400, {"message": "folder not found"}
        uid = dashboard.get("uid") or f"d{len(self.dashboards) + 1}"
        old = self.dashboards.get(uid)
        if old is not None and not body.get("overwrite"):
            return 412, {
                "message": "A dashboard with the same uid already exists",
                "status": "name-exists",
            }
        version = old["version"] + 1 if old else 1
        number = old["id"] if old else len(self.dashboards) + 1
        slug = re.sub(r"[^a-z0-9]+", "-", dashboard["title"].lower()).strip("-")
        self.dashboards[uid] = {
            "id": number,
            "version": version,
            "folderUid": folder,
            "dashboard": {**dashboard, "id": number, "uid": uid, "version": version},
        }
        return 200, {
            "id": number,
            "uid": uid,
            "url": f"{self.sub_path}/d/{uid}/{slug}",
            "status": "success",
            "version": version,
            "slug": slug,
        }


def _handler(grafana: FakeGrafana) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            path = self.path.split("?")[0]
            authorization = self.headers.get("Authorization")
            grafana.calls.append(Call(self.command, path, body, authorization))
            if not path.startswith(grafana.sub_path + "/api/"):
                status, answer = 404, {"message": "Not found"}
            elif authorization != f"Bearer {grafana.token}":
                status, answer = 401, {"message": "Unauthorized"}
            else:
                status, answer = grafana.handle(
                    self.command, path.removeprefix(grafana.sub_path), body
                )
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = _serve

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the test reads `grafana.calls` instead."""

    return Handler


@contextmanager
def serving(grafana: FakeGrafana) -> Iterator[FakeGrafana]:
    """Serve on 127.0.0.1 (a free port) in a thread; `grafana.url` is the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(grafana))
    thread = threading.Thread(target=server.serve_forever, args=(POLL_S,), daemon=True)
    thread.start()
    grafana.url = f"http://127.0.0.1:{server.server_address[1]}{grafana.sub_path}"
    try:
        yield grafana
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
