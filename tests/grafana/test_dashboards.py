"""The committed dashboards/ files: generated from the code, consistent with provisioning."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from energyhub.cli import app
from energyhub.grafana import files
from energyhub.grafana.model import GRID_COLUMNS, SCHEMA_VERSION
from tests.conftest import REPO

DASHBOARDS_DIR = REPO / "dashboards"
DASHBOARD_FILES = sorted(DASHBOARDS_DIR.glob("*.json"))
VARIABLE_USE = re.compile(r"\$\{?(\w+)")


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _provisioned_datasource() -> dict[str, Any]:
    text = (DASHBOARDS_DIR / "provisioning" / "datasources" / "energyhub.yaml").read_text()
    (datasource,) = yaml.safe_load(text)["datasources"]
    return dict(datasource)


def test_committed_files_are_what_the_code_generates() -> None:
    assert files.stale(DASHBOARDS_DIR) == [], "run `energyhub grafana write`"
    assert sorted(p.name for p in DASHBOARD_FILES) == sorted(
        d.file_name for d in files.dashboards()
    )


def test_write_check_reports_a_stale_file(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["grafana", "write", "--out", str(tmp_path)]).exit_code == 0
    assert (
        runner.invoke(app, ["grafana", "write", "--out", str(tmp_path), "--check"]).exit_code == 0
    )
    (tmp_path / "carbon.json").write_text("{}")
    result = runner.invoke(app, ["grafana", "write", "--out", str(tmp_path), "--check"])
    assert result.exit_code == 1
    assert "carbon.json" in result.output


def test_datasource_is_provisioned_with_timescaledb_on() -> None:
    datasource = _provisioned_datasource()
    assert datasource["type"] == "grafana-postgresql-datasource"
    assert datasource["jsonData"]["timescaledb"] is True
    placeholder = "${GRAFANA_DB_PASSWORD}"  # Grafana fills it from its environment
    assert datasource["secureJsonData"]["password"] == placeholder


def test_dashboard_provider_reads_the_mounted_folder() -> None:
    text = (DASHBOARDS_DIR / "provisioning" / "dashboards" / "energyhub.yaml").read_text()
    (provider,) = yaml.safe_load(text)["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards/energyhub"


def test_dashboard_uids_and_titles_are_unique() -> None:
    dashboards = [_load(path) for path in DASHBOARD_FILES]
    assert len({d["uid"] for d in dashboards}) == len(dashboards)
    assert len({d["title"] for d in dashboards}) == len(dashboards)
    assert all(len(d["uid"]) <= 40 for d in dashboards)


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=[p.stem for p in DASHBOARD_FILES])
def test_dashboard_json(path: Path) -> None:
    dashboard = _load(path)
    datasource = _provisioned_datasource()
    reference = {"type": datasource["type"], "uid": datasource["uid"]}
    panels = dashboard["panels"]
    assert dashboard["schemaVersion"] == SCHEMA_VERSION
    assert len({p["id"] for p in panels}) == len(panels), "panel ids repeat"
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    for variable in dashboard["templating"]["list"]:
        assert variable["datasource"] == reference
    for panel in panels:
        assert panel["datasource"] == reference, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == reference, panel["title"]
            used = {n for n in VARIABLE_USE.findall(target["rawSql"]) if not n.startswith("__")}
            assert used <= variables, f"{panel['title']}: undefined {used - variables}"
    _check_grid(panels)


def _check_grid(panels: list[dict[str, Any]]) -> None:
    """Every panel fits the 24-column grid and no two overlap."""
    cells: dict[tuple[int, int], str] = {}
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["w"] >= 1 and grid["h"] >= 1 and grid["x"] >= 0 and grid["y"] >= 0
        assert grid["x"] + grid["w"] <= GRID_COLUMNS, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def test_write_to_a_file_is_one_line(tmp_path: Path) -> None:
    """--out naming a file was a FileExistsError traceback."""
    taken = tmp_path / "dashboards"
    taken.write_text("not a directory")
    result = CliRunner().invoke(app, ["grafana", "write", "--out", str(taken)])
    assert result.exit_code == 2, result.output
    assert f"--out {taken}: a file, not a directory" in " ".join(result.output.split())
    result = CliRunner().invoke(app, ["grafana", "write", "--out", "/dev/full"])
    assert result.exit_code == 2, result.output
    assert "--out /dev/full: a character device, not a directory" in result.output
