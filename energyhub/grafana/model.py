"""The few pieces of Grafana's dashboard JSON model energyhub uses, as typed values that render."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

JsonDict = dict[str, Any]

SCHEMA_VERSION = 42
"""Dashboard JSON schema of Grafana 12.2 (LATEST_VERSION of its schema migrations)."""
DATASOURCE_UID = "energyhub-pg"
"""The one datasource every panel and variable queries; provisioning and push use this uid."""
DATASOURCE_TYPE = "grafana-postgresql-datasource"
DATASOURCE: JsonDict = {"type": DATASOURCE_TYPE, "uid": DATASOURCE_UID}
GRID_COLUMNS = 24
"""Grafana's dashboard grid is 24 columns wide."""

PanelKind = Literal["timeseries", "table", "stat", "bargauge"]
QueryFormat = Literal["time_series", "table"]


@dataclass(frozen=True)
class Query:
    """One SQL target of a panel: `time_series` needs a `time` column, `table` anything."""

    sql: str
    format: QueryFormat = "time_series"
    ref_id: str = "A"

    def json(self) -> JsonDict:
        return {
            "refId": self.ref_id,
            "datasource": DATASOURCE,
            "editorMode": "code",
            "format": self.format,
            "rawQuery": True,
            "rawSql": self.sql.strip(),
        }


@dataclass(frozen=True)
class Panel:
    """A panel: its kind, queries, size on the grid and the few display options we set."""

    title: str
    kind: PanelKind
    queries: tuple[Query, ...]
    width: int = 12
    height: int = 8
    unit: str = "short"
    description: str = ""
    stacked: bool = False
    bars: bool = False
    decimals: int | None = None
    thresholds: tuple[tuple[float, str], ...] = ()
    """(value, colour) steps above the base green, e.g. ((80, "orange"), (100, "red"))."""

    def json(self, panel_id: int, x: int, y: int) -> JsonDict:
        defaults: JsonDict = {
            "unit": self.unit,
            "thresholds": {
                "mode": "absolute",
                "steps": [{"color": "green", "value": None}]
                + [{"color": color, "value": value} for value, color in self.thresholds],
            },
        }
        if self.decimals is not None:
            defaults["decimals"] = self.decimals
        if self.kind == "timeseries":
            defaults["custom"] = self._timeseries_style()
        return {
            "id": panel_id,
            "type": self.kind,
            "title": self.title,
            "description": self.description,
            "datasource": DATASOURCE,
            "gridPos": {"h": self.height, "w": self.width, "x": x, "y": y},
            "targets": [query.json() for query in self.queries],
            "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": self._options(),
        }

    def _timeseries_style(self) -> JsonDict:
        return {
            "drawStyle": "bars" if self.bars else "line",
            "lineWidth": 1,
            "fillOpacity": 60 if self.stacked or self.bars else 10,
            "stacking": {"mode": "normal" if self.stacked else "none", "group": "A"},
            "showPoints": "never",
            "spanNulls": False,
        }

    def _options(self) -> JsonDict:
        legend = {"displayMode": "list", "placement": "bottom", "showLegend": True}
        reduce_all = {"calcs": ["lastNotNull"], "fields": "", "values": True}
        if self.kind == "timeseries":
            return {"legend": legend, "tooltip": {"mode": "multi", "sort": "desc"}}
        if self.kind == "table":
            return {"showHeader": True, "cellHeight": "sm", "footer": {"show": False}}
        if self.kind == "stat":  # every field, text too (a plan's status)
            reduce_every = {**reduce_all, "fields": "/.*/"}
            return {"reduceOptions": reduce_every, "colorMode": "value", "graphMode": "none"}
        return {"reduceOptions": reduce_all, "orientation": "horizontal", "showUnfilled": True}


@dataclass(frozen=True)
class Variable:
    """A query variable: its SQL returns `__value` and `__text` columns."""

    name: str
    label: str
    sql: str
    multi: bool = False
    include_all: bool = False

    def json(self) -> JsonDict:
        sql = self.sql.strip()
        return {
            "name": self.name,
            "label": self.label,
            "type": "query",
            "datasource": DATASOURCE,
            "definition": sql,
            "query": sql,
            "refresh": 2,
            "multi": self.multi,
            "includeAll": self.include_all,
            "sort": 0,
            "hide": 0,
            "current": {},
            "options": [],
        }


@dataclass(frozen=True)
class Dashboard:
    """A dashboard; panels flow left to right and wrap onto new rows of the 24-column grid."""

    uid: str
    title: str
    description: str
    panels: tuple[Panel, ...]
    variables: tuple[Variable, ...] = ()
    time_from: str = "now-24h"
    refresh: str = "1m"
    tags: tuple[str, ...] = field(default=("energyhub",))

    @property
    def file_name(self) -> str:
        return f"{self.uid.removeprefix('energyhub-')}.json"

    def json(self) -> JsonDict:
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": list(self.tags),
            "timezone": "browser",
            "editable": True,
            "graphTooltip": 1,
            "schemaVersion": SCHEMA_VERSION,
            "version": 1,
            "refresh": self.refresh,
            "time": {"from": self.time_from, "to": "now"},
            "templating": {"list": [variable.json() for variable in self.variables]},
            "annotations": {"list": []},
            "links": [],
            "panels": self._layout(),
        }

    def _layout(self) -> list[JsonDict]:
        placed, x, y, row_height = [], 0, 0, 0
        for panel_id, panel in enumerate(self.panels, start=1):
            if x + panel.width > GRID_COLUMNS:
                x, y, row_height = 0, y + row_height, 0
            placed.append(panel.json(panel_id, x, y))
            x, row_height = x + panel.width, max(row_height, panel.height)
        return placed
