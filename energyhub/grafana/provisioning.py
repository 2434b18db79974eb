"""The PostgreSQL datasource (one definition for provisioning files and push) and the folder."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from energyhub.config import mask_text
from energyhub.errors import ConfigError
from energyhub.grafana.model import DATASOURCE_TYPE, DATASOURCE_UID, JsonDict

DATASOURCE_NAME = "energyhub"
FOLDER_UID = "energyhub"
FOLDER_TITLE = "energyhub"
DASHBOARDS_PATH = "/var/lib/grafana/dashboards/energyhub"
"""Where the Grafana container sees dashboards/ (docker-compose.yml mounts it there)."""
POSTGRES_VERSION = 1600
"""Grafana's PostgreSQL version setting (major × 100): the compose stack runs PostgreSQL 16."""
MAX_OPEN_CONNECTIONS = 10
"""Grafana's connection pool to the database: dashboards open a few panels' queries at once."""


@dataclass(frozen=True)
class DatabaseTarget:
    """How Grafana reaches the energyhub database (host and port as seen from Grafana)."""

    address: str
    database: str
    user: str
    password: str | None
    sslmode: str = "disable"
    timescaledb: bool = True

    @classmethod
    def from_url(cls, url: str, timescaledb: bool = True) -> DatabaseTarget:
        """From postgresql://user:password@host:port/database?sslmode=...; ConfigError if not."""
        expected = (
            "database URL for Grafana: expected postgresql://user:password@host:port/database, "
            f"got {mask_text(url)!r}"
        )
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:  # an unclosed IPv6 bracket, a port beyond 65535
            raise ConfigError(f"{expected} ({exc})") from None
        database = unquote(parts.path.lstrip("/"))
        if parts.scheme not in ("postgresql", "postgres") or not parts.hostname or not database:
            raise ConfigError(expected)
        if not parts.username:
            raise ConfigError("database URL for Grafana: give the user Grafana connects as")
        sslmode = parse_qs(parts.query).get("sslmode", ["disable"])[0]
        return cls(
            address=f"{parts.hostname}:{port or 5432}",
            database=database,
            user=unquote(parts.username),
            password=unquote(parts.password) if parts.password is not None else None,
            sslmode=sslmode,
            timescaledb=timescaledb,
        )


def datasource(target: DatabaseTarget) -> JsonDict:
    """The datasource model of Grafana's HTTP API and of its provisioning files."""
    model: JsonDict = {
        "uid": DATASOURCE_UID,
        "name": DATASOURCE_NAME,
        "type": DATASOURCE_TYPE,
        "access": "proxy",
        "url": target.address,
        "user": target.user,
        "isDefault": False,
        "jsonData": {
            "database": target.database,
            "sslmode": target.sslmode,
            "postgresVersion": POSTGRES_VERSION,
            "timescaledb": target.timescaledb,
            "maxOpenConns": MAX_OPEN_CONNECTIONS,
        },
    }
    if target.password is not None:
        model["secureJsonData"] = {"password": target.password}
    return model


COMPOSE_TARGET = DatabaseTarget(
    address="${GRAFANA_DB_HOST}",
    database="${GRAFANA_DB_NAME}",
    user="${GRAFANA_DB_USER}",
    password="${GRAFANA_DB_PASSWORD}",  # noqa: S106 (Grafana's environment placeholder)
)
"""The provisioned datasource: Grafana fills these from its environment when it starts."""


def datasources_file() -> JsonDict:
    """dashboards/provisioning/datasources/energyhub.yaml."""
    return {"apiVersion": 1, "datasources": [{**datasource(COMPOSE_TARGET), "editable": False}]}


def dashboards_file() -> JsonDict:
    """dashboards/provisioning/dashboards/energyhub.yaml: the folder of JSON dashboards."""
    return {
        "apiVersion": 1,
        "providers": [
            {
                "name": "energyhub",
                "orgId": 1,
                "folder": FOLDER_TITLE,
                "folderUid": FOLDER_UID,
                "type": "file",
                "disableDeletion": True,
                "allowUiUpdates": False,
                "updateIntervalSeconds": 60,
                "options": {"path": DASHBOARDS_PATH, "foldersFromFilesStructure": False},
            }
        ],
    }
