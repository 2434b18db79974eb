"""`energyhub carbon green …` as a user runs it, and the report formats with both Scope 2 methods."""

from __future__ import annotations

import csv
import io
import json

import pytest
from typer.testing import CliRunner, Result

from energyhub.cli import app
from tests.carbon.assets.conftest import RESIDUAL_MIX

runner = CliRunner()
SOURCE = ("--project", "Ulanqab wind 3", "--technology", "wind", "--location", "Inner Mongolia")


def carbon(url: str, *args: str) -> Result:
    return runner.invoke(app, ["carbon", *args], env={"ENERGYHUB_DB_URL": url, "COLUMNS": "200"})


def add(url: str, serials: str, site: str = "b1") -> Result:
    return carbon(
        url, "green", "add-certificates", "--site", site, "--serials", serials, *SOURCE,
        "--vintage", "2026", "--reason", "PO 17", "--by", "alice",
    )  # fmt: skip


def test_register_retire_list_and_report(assets_url: str) -> None:
    done = add(assets_url, "9000-9000")
    assert done.exit_code == 0, done.output
    assert "instrument 1: 1 certificates (1 MWh) held by b1" in done.output
    retired = carbon(
        assets_url, "green", "retire", "1", "--site", "b1", "--period", "2026-10-05",
        "--reason", "October", "--by", "alice",
    )  # fmt: skip
    assert retired.exit_code == 0, retired.output
    listed = json.loads(carbon(assets_url, "green", "list", "--site", "p1").stdout)
    assert [(i["id"], i["serials"], i["retired_mwh"], i["recorded_by"]) for i in listed] == [
        (1, "9000-9000", 1.0, "alice")
    ]
    report = carbon(
        assets_url, "report", "--site", "b1", "--period", "2026-10-05", "--format", "csv"
    )
    row = next(csv.DictReader(io.StringIO(report.stdout)))
    assert float(row["certificate_kwh"]) == pytest.approx(1000)
    assert float(row["scope2_market_kg"]) == pytest.approx(
        1200 * RESIDUAL_MIX + 950 * 0.4  # the rest at the residual mix, and b1's purchased heat
    )
    html = carbon(
        assets_url, "report", "--site", "b1", "--period", "2026-10-05", "--format", "html"
    )
    assert "Scope 2: location-based and market-based" in html.stdout
    assert "9000-9000" in html.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--serials", "20-10"), "serial_last: serial_last (10) is before serial_first (20)"),
        (("--serials", "x-10"), "serial_first: Input should be a valid integer"),
        (("--serials", "1-5", "--vintage", "1900"), "vintage: Input should be greater than"),
    ],
)
def test_bad_blocks_exit_2_naming_the_field(
    assets_url: str, args: tuple[str, ...], message: str
) -> None:
    done = carbon(
        assets_url, "green", "add-certificates", "--site", "b1", *SOURCE, "--vintage", "2026",
        "--reason", "x", *args,
    )  # fmt: skip
    assert done.exit_code == 2
    assert message in " ".join(done.output.split())
    assert "Traceback" not in done.output


def test_an_overlap_with_a_retired_range_exits_2(assets_url: str) -> None:
    assert add(assets_url, "100-199").exit_code == 0
    first = carbon(
        assets_url, "green", "retire", "1", "--site", "b1", "--period", "2026-10",
        "--serials", "150-160", "--reason", "x",
    )  # fmt: skip
    assert first.exit_code == 0, first.output
    again = carbon(
        assets_url, "green", "retire", "1", "--site", "b1", "--period", "2026-10-04",
        "--serials", "120-155", "--reason", "x",
    )  # fmt: skip
    assert again.exit_code == 2
    assert "serial_first: GEC 120-155 overlaps 150-160, already retired" in " ".join(
        again.output.split()
    )
