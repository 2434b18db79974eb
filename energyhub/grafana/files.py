"""The dashboards/ directory as generated: every dashboard's JSON and the provisioning files."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from energyhub.grafana import building, carbon, ingest, park, plans
from energyhub.grafana.model import Dashboard
from energyhub.grafana.provisioning import dashboards_file, datasources_file

HEADER = "# Made by `energyhub grafana write` from energyhub/grafana/: edit the code, not this.\n"


def dashboards() -> list[Dashboard]:
    """Every energyhub dashboard, in menu order."""
    return [
        building.dashboard(),
        park.dashboard(),
        plans.dashboard(),
        carbon.dashboard(),
        ingest.dashboard(),
    ]


def _yaml(data: dict[str, object]) -> str:
    return HEADER + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def rendered() -> dict[str, str]:
    """Path under dashboards/ → file text."""
    files = {
        d.file_name: json.dumps(d.json(), indent=2, ensure_ascii=False) + "\n" for d in dashboards()
    }
    files["provisioning/datasources/energyhub.yaml"] = _yaml(datasources_file())
    files["provisioning/dashboards/energyhub.yaml"] = _yaml(dashboards_file())
    return files


def stale(directory: Path) -> list[str]:
    """Generated files that are missing from `directory` or differ from what the code makes."""
    return sorted(
        name
        for name, text in rendered().items()
        if not (directory / name).is_file() or (directory / name).read_text() != text
    )


def write(directory: Path) -> list[Path]:
    """Write every generated file under `directory`; returns the paths written."""
    written = []
    for name, text in rendered().items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written
