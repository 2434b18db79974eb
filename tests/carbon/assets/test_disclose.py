"""`energyhub carbon disclose`: a verifier's package — reproducible byte for byte, its manifest
hashing every file, its figures those of the carbon report and the readings."""

from __future__ import annotations

import asyncio
import copy
import csv
import hashlib
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from energyhub.carbon.instruments import CertificateIn, RetirementIn, add_certificates, retire
from energyhub.cli import app
from energyhub.sites import parse_site
from energyhub.store.db import connect, installed_backend
from energyhub.store.sync import sync_site
from tests.carbon.assets.conftest import assets_site

runner = CliRunner()
FILES = {
    "emissions.csv",
    "activity.csv",
    "gaps.csv",
    "factors.json",
    "certificates.csv",
    "changes.csv",
    "report.json",
    "disclosure.html",
    "manifest.json",
}


def disclose(url: str, out: Path, site: str = "b1", year: str = "2026") -> Result:
    return runner.invoke(
        app,
        ["carbon", "disclose", "--site", site, "--year", year, "--out", str(out)],
        env={"ENERGYHUB_DB_URL": url, "COLUMNS": "200"},
    )


async def prepare(url: str) -> None:
    """A retired block for b1, then a second site file with another residual mix."""
    async with connect(url) as conn:
        backend = await installed_backend(conn)
        block = CertificateIn(
            project="Ulanqab wind 3", technology="wind", location="Inner Mongolia",
            vintage=2026, serial_first=501, serial_last=502, reason="PO 17",
        )  # fmt: skip
        held = await add_certificates(conn, "b1", block, "alice")
        claim = RetirementIn(instrument_id=held, site_id="b1", period="2026-10", reason="Oct")
        await retire(conn, backend, claim, "alice")
        changed = copy.deepcopy(assets_site())
        changed["city"]["carbon"]["residual_mix_kg_per_kwh"] = 0.55
        await sync_site(conn, parse_site(changed))


def rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))


def test_the_package_is_reproducible_and_hashed(assets_url: str, tmp_path: Path) -> None:
    asyncio.run(prepare(assets_url))
    first, second = tmp_path / "one", tmp_path / "two"
    done = disclose(assets_url, first)
    assert done.exit_code == 0, done.output
    assert disclose(assets_url, second).exit_code == 0
    assert {p.name for p in first.iterdir()} == FILES
    for name in FILES:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    manifest = json.loads((first / "manifest.json").read_text(encoding="utf-8"))
    assert set(manifest["files"]) == FILES - {"manifest.json"}
    for name, entry in manifest["files"].items():
        data = (first / name).read_bytes()
        assert entry == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    assert set(manifest["inputs_sha256"]) == {
        "meter_series", "meters", "retirements", "site_file_versions", "grid_intensity",
    }  # fmt: skip


def test_the_figures_are_the_reports_and_the_readings(assets_url: str, tmp_path: Path) -> None:
    asyncio.run(prepare(assets_url))
    assert disclose(assets_url, tmp_path).exit_code == 0
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    emissions = {
        (r["scope"], r["method"], r["source"]): r for r in rows(tmp_path / "emissions.csv")
    }
    location = emissions[("2", "location", "electricity bought")]
    assert float(location["activity_kwh"]) == pytest.approx(4600)  # b1/main: 2400 + 2200
    assert float(location["kg_per_kwh"]) == pytest.approx(0.5)
    assert float(location["kg_co2"]) == pytest.approx(report["scope2_electricity_kg"])
    certificates = emissions[("2", "market", "electricity: certificates retired")]
    assert float(certificates["activity_kwh"]) == pytest.approx(2000)
    residual = emissions[("2", "market", "electricity: residual mix")]
    assert float(residual["kg_per_kwh"]) == pytest.approx(0.55)  # the site file now in force
    assert float(residual["kg_co2"]) == pytest.approx((4600 - 2000) * 0.55)
    market_total = float(emissions[("1+2", "market", "total")]["kg_co2"])
    assert market_total == pytest.approx(report["scope1_kg"] + report["scope2_market"]["market_kg"])
    main = {r["month"]: r for r in rows(tmp_path / "activity.csv") if r["meter"] == "b1/main"}
    assert len(main) == 12
    assert (main["2026-10"]["expected_hours"], main["2026-10"]["present_hours"]) == ("744", "46")
    assert float(main["2026-10"]["kwh"]) == pytest.approx(4600)
    assert main["2026-03"]["present_hours"] == "0"
    gaps = [g for g in rows(tmp_path / "gaps.csv") if g["meter"] == "b1/main"]
    the_day = {
        "meter": "b1/main",
        "start": "2026-10-05T10:00:00+08:00",
        "end": "2026-10-05T12:00:00+08:00",
        "hours": "2",
    }
    assert the_day in gaps
    assert sum(int(g["hours"]) for g in gaps) == 8760 - 46
    retired = rows(tmp_path / "certificates.csv")
    assert [(r["serial_first"], r["serial_last"], r["period"]) for r in retired] == [
        ("501", "502", "2026-10")
    ]
    changes = rows(tmp_path / "changes.csv")
    assert [c["what"] for c in changes] == ["in force", "changed"]
    assert (changes[1]["key"], changes[1]["old"], changes[1]["new"]) == (
        "city.carbon.residual_mix_kg_per_kwh", "0.6", "0.55",
    )  # fmt: skip
    factors = json.loads((tmp_path / "factors.json").read_text(encoding="utf-8"))
    assert factors["factor_year"] == 2025 and factors["values_kg_per_kwh"]["grid"] == 0.5
    page = (tmp_path / "disclosure.html").read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>") and "<script" not in page
    assert "Scope 2: location-based and market-based" in page and "501-502" in page


@pytest.mark.parametrize(
    ("site", "year", "message"),
    [
        ("nowhere", "2026", "unknown site 'nowhere'"),
        ("b1", "2024", "no readings for site 'b1'"),
        ("b4", "2026", "site 'b4' has no energy meters"),
    ],
)
def test_nothing_to_disclose_exits_2(
    assets_url: str, tmp_path: Path, site: str, year: str, message: str
) -> None:
    done = disclose(assets_url, tmp_path / "out", site, year)
    assert done.exit_code == 2
    assert message in " ".join(done.output.split())
    assert not (tmp_path / "out").exists()


def test_an_out_that_cannot_be_written_is_named(assets_url: str, tmp_path: Path) -> None:
    """`--out /dev/full` said "cannot write: File exists" (the `mkdir` of a device); a full disk
    under the directory now names the file and says so."""
    done = disclose(assets_url, Path("/dev/full"))
    assert done.exit_code == 2
    assert done.stderr.strip() == "error: --out /dev/full: a character device, not a directory"
    taken = tmp_path / "taken"
    taken.write_text("")
    done = disclose(assets_url, taken / "package")
    assert done.exit_code == 2
    message = f"error: --out {taken}/package: {taken}: a file, not a directory"
    assert " ".join(done.stderr.split()) == message
    out = tmp_path / "package"
    out.mkdir()
    (out / "manifest.json").symlink_to("/dev/full")
    done = disclose(assets_url, out)
    assert done.exit_code == 2
    message = f"error: --out {out}: {out}/manifest.json: no space left on device"
    assert " ".join(done.stderr.split()) == message
    assert "Traceback" not in done.output


def test_a_tenants_package_lists_the_meters_its_share_comes_from(
    assets_url: str, tmp_path: Path
) -> None:
    done = disclose(assets_url, tmp_path, "tenant-a")
    assert done.exit_code == 0, done.output
    meters = {r["meter"] for r in rows(tmp_path / "activity.csv")}
    assert {"b1/main", "b1/t1", "b1/t2"} <= meters  # its sub-meter, and what its share is of
    assert "b2/main" not in meters
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert report["site_id"] == "tenant-a" and report["kind"] == "enterprise"
