"""A verifier's package (核证) for one site and year: what was emitted, from which activity data,
at which factors, with which certificates, under which site files — and hashes to check it.

Files (CSV and JSON for machines, one printable HTML page for people):

- `emissions.csv`: Scope 1 and 2 by source, Scope 2 both ways (location- and market-based)
- `activity.csv`: every meter's energy per local month with its coverage; `gaps.csv`: every gap
- `factors.json`: the factors used, their sources and years, the residual mix, contract factors
- `certificates.csv`: the certificates retired and contract MWh claimed for the site in the year
- `changes.csv`: the site-file versions in force during the year and what changed in `carbon`
- `report.json`: the full carbon report of the year; `disclosure.html`: all of it, printable
- `manifest.json`: the SHA-256 of every file, and of the inputs (meter series, retirements,
  site-file versions, intensity series) they were computed from

Nothing depends on the clock or on dict order: the same database gives byte-identical files.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from psycopg import AsyncConnection

from energyhub import __version__
from energyhub.carbon.accounting import carbon_report
from energyhub.carbon.coverage import expected_buckets
from energyhub.carbon.factors import PUBLISHED
from energyhub.carbon.intensity import hourly_intensity
from energyhub.carbon.market import residual_mix
from energyhub.carbon.models import CarbonReport
from energyhub.carbon.tree import (
    MeterInfo,
    SiteTree,
    enterprise_buildings,
    load_tree,
    site_meters,
    tenant_meters,
)
from energyhub.store.db import Backend
from energyhub.store.green import RetirementRow, retirements
from energyhub.store.queries import meter_series
from energyhub.store.site_versions import SiteVersion, versions_in

STEP = timedelta(hours=1)
"""Activity data at the hour: the step a year's carbon report reads."""


@dataclass(frozen=True)
class Inputs:
    """What a disclosure is computed from, read once."""

    report: CarbonReport
    meters: list[MeterInfo]
    series: pd.DataFrame
    retired: list[RetirementRow]
    versions: list[SiteVersion]
    intensity: pd.DataFrame
    residual: tuple[float, str] | None


def _csv(header: list[str], rows: Sequence[Sequence[object]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode()


def _json(value: object) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _num(value: float | None) -> str:
    """Floats as text that does not depend on the platform: 6 decimals, no -0."""
    if value is None:
        return ""
    return f"{value + 0.0:.6f}" if round(value, 6) else "0.000000"


async def _meters(conn: AsyncConnection, tree: SiteTree, site_id: str) -> list[MeterInfo]:
    """The energy meters a site's accounting reads: its own and its parts'; for a tenant, the
    meters of its buildings and their tenants' sub-meters, from which its share is allocated."""
    site = tree.get(site_id)
    if site.kind == "enterprise":
        buildings = await enterprise_buildings(conn, tree, site)
        found = await site_meters(conn, buildings)
        found += [m for _, m in await tenant_meters(conn, buildings)]
    else:
        ids = [s.id for s in tree.subtree(site_id) if s.kind != "enterprise"]
        found = await site_meters(conn, ids)
    return sorted({m.id: m for m in found}.values(), key=lambda m: m.label)


async def gather(
    conn: AsyncConnection, backend: Backend, site_id: str, year: int
) -> tuple[Inputs, datetime, datetime]:
    """Everything the package is computed from, for the site's local calendar year."""
    tree = await load_tree(conn)
    zone = ZoneInfo(tree.timezone(site_id))
    start, end = datetime(year, 1, 1, tzinfo=zone), datetime(year + 1, 1, 1, tzinfo=zone)
    report = await carbon_report(conn, backend, site_id, start, end)
    meters = await _meters(conn, tree, site_id)
    series = await meter_series(conn, backend, [m.id for m in meters], start, end, STEP, zone.key)
    retired = await retirements(conn, [s.id for s in tree.subtree(site_id)], start, end)
    versions = await versions_in(conn, start, end)
    names = [report.factors.grid_series] if report.factors.grid_series else []
    intensity = await hourly_intensity(conn, names, start, end)
    inputs = Inputs(
        report, meters, series, retired, versions, intensity, residual_mix(tree, site_id)
    )
    return inputs, start, end


def emissions_csv(report: CarbonReport) -> bytes:
    """Scope 1 and 2 by source, Scope 2 both ways, with activity data and factors."""
    f, market = report.factors, report.scope2_market
    energy = report.energy_kwh
    rows: list[list[object]] = [
        ["1", "both", "natural gas burnt", _num(energy.gas), _num(f.gas_kg_per_kwh),
         _num(report.scope1_kg)],
        ["2", "location", "electricity bought", _num(energy.electricity),
         _num(report.scope2_electricity_kg / energy.electricity if energy.electricity else None),
         _num(report.scope2_electricity_kg)],
        ["2", "both", "heat bought", _num(energy.heat), _num(f.heat_kg_per_kwh),
         _num(report.scope2_heat_kg)],
    ]  # fmt: skip
    if market is not None:
        rows += [
            ["2", "market", "electricity: certificates retired", _num(market.certificate_kwh),
             _num(0.0), _num(0.0)],
            ["2", "market", "electricity: green-power contracts", _num(market.contract_kwh),
             _num(market.contract_kg / market.contract_kwh if market.contract_kwh else None),
             _num(market.contract_kg)],
            ["2", "market", "electricity: residual mix", _num(market.residual_kwh),
             _num(market.residual_mix_kg_per_kwh),
             _num(market.residual_kwh * market.residual_mix_kg_per_kwh)],
            ["1+2", "location", "total", "", "", _num(report.scope1_kg + market.location_kg)],
            ["1+2", "market", "total", "", "", _num(report.scope1_kg + market.market_kg)],
        ]  # fmt: skip
    header = ["scope", "method", "source", "activity_kwh", "kg_per_kwh", "kg_co2"]
    return _csv(header, rows)


def activity(inputs: Inputs, start: datetime, end: datetime) -> tuple[bytes, bytes]:
    """Per meter and local month: kWh, expected and present hours; and every gap."""
    zone = str(inputs.report.timezone)
    expected = expected_buckets(start, end, STEP)
    months = expected.tz_convert(zone).strftime("%Y-%m")
    known = inputs.series.dropna(subset=["value"])
    rows: list[list[object]] = []
    gaps: list[list[object]] = []
    for meter in inputs.meters:
        mine = known[known["meter_id"] == meter.id].set_index("bucket")["value"]
        values = mine.reindex(expected)
        have = values.notna().to_numpy()
        for month in sorted(set(months)):
            in_month = np.asarray(months == month)
            count = int(in_month.sum())
            present = int((have & in_month).sum())
            kwh = float(values[in_month].sum()) * (STEP / timedelta(hours=1))
            share = present / count if count else 0.0
            rows.append(
                [meter.label, meter.carrier, meter.quantity, month, _num(kwh), count, present,
                 _num(share)]
            )  # fmt: skip
        missing = np.flatnonzero(~have)
        if len(missing):
            runs = np.split(missing, np.flatnonzero(np.diff(missing) != 1) + 1)
            local = expected.tz_convert(zone)
            for run in runs:
                first, last = local[run[0]], local[run[-1]] + STEP
                gaps.append([meter.label, first.isoformat(), last.isoformat(), len(run)])
    header = ["meter", "carrier", "quantity", "month", "kwh", "expected_hours", "present_hours",
              "coverage"]  # fmt: skip
    return _csv(header, rows), _csv(["meter", "start", "end", "hours"], gaps)


def factors_json(inputs: Inputs) -> bytes:
    f, market = inputs.report.factors, inputs.report.scope2_market
    contracts = sorted(
        {
            (r.instrument_id, r.project, r.supplier_kg_per_kwh or 0.0)
            for r in inputs.retired
            if r.kind == "contract"
        }
    )
    return _json(
        {
            "factor_year": f.factor_year,
            "values_kg_per_kwh": {
                "grid": f.grid_kg_per_kwh,
                "gas": f.gas_kg_per_kwh,
                "heat": f.heat_kg_per_kwh,
            },
            "sources": f.sources,
            "grid_series": f.grid_series,
            "grid_series_share": f.grid_series_share,
            "grid_series_hours": len(inputs.intensity),
            "residual_mix_kg_per_kwh": market.residual_mix_kg_per_kwh if market else None,
            "residual_mix_source": market.residual_mix_source if market else None,
            "contracts": [
                {"instrument_id": i, "project": p, "supplier_kg_per_kwh": k}
                for i, p, k in contracts
            ],
            "published": [
                {"key": key, "value": e.value, "unit": e.unit, "year": e.year, "source": e.source}
                for key, e in PUBLISHED
            ],
            "note": "factors of the reported site; a part of it may override them in the site "
            "file (see changes.csv and report.json's notes)",
        }
    )


def certificates_csv(inputs: Inputs) -> bytes:
    header = ["retirement_id", "instrument_id", "kind", "site_id", "registry", "project",
              "technology", "location", "vintage", "serial_first", "serial_last", "mwh",
              "supplier_kg_per_kwh", "period", "period_start", "period_end", "recorded_by",
              "recorded_at", "reason"]  # fmt: skip
    rows = [
        [r.id, r.instrument_id, r.kind, r.site_id, r.registry, r.project, r.technology,
         r.location, r.vintage, r.serial_first, r.serial_last, _num(r.mwh),
         _num(r.supplier_kg_per_kwh), r.period_label, r.period_start.isoformat(),
         r.period_end.isoformat(), r.recorded_by, r.recorded_at.isoformat(), r.reason]
        for r in inputs.retired
    ]  # fmt: skip
    return _csv(header, rows)


def _flat(value: Any, path: str = "") -> dict[str, str]:
    """A JSON document as path → value text, for a line-by-line comparison."""
    if isinstance(value, dict):
        out: dict[str, str] = {}
        for key in sorted(value):
            out |= _flat(value[key], f"{path}.{key}" if path else str(key))
        return out
    if isinstance(value, list):
        out = {}
        for i, item in enumerate(value):
            label = item.get("id", i) if isinstance(item, dict) else i
            out |= _flat(item, f"{path}[{label}]")
        return out
    return {path: json.dumps(value, sort_keys=True, ensure_ascii=False)}


def changes_csv(inputs: Inputs) -> bytes:
    """The site-file versions of the year and every carbon-related key that changed."""
    rows: list[list[object]] = []
    previous: dict[str, str] | None = None
    for version in inputs.versions:
        current = {k: v for k, v in _flat(version.content).items() if "carbon" in k}
        when = version.loaded_at.astimezone(ZoneInfo(inputs.report.timezone)).isoformat()
        if previous is None:
            rows.append([when, version.sha256, "", "", "", "in force"])
        else:
            for key in sorted(set(previous) | set(current)):
                if previous.get(key) != current.get(key):
                    old, new = previous.get(key, ""), current.get(key, "")
                    rows.append([when, version.sha256, key, old, new, "changed"])
            if all(r[1] != version.sha256 for r in rows):
                rows.append([when, version.sha256, "", "", "", "no carbon key changed"])
        previous = current
    return _csv(["loaded_at", "site_file_sha256", "key", "old", "new", "what"], rows)


def inputs_digests(inputs: Inputs) -> dict[str, str]:
    """SHA-256 of each input, in a canonical text form."""
    series = inputs.series.sort_values(["meter_id", "bucket"])
    series_text = series.to_csv(index=False, float_format="%.9g", date_format="%Y-%m-%dT%H:%M:%SZ")
    intensity = inputs.intensity.sort_values(["series", "hour"]).to_csv(
        index=False, float_format="%.9g", date_format="%Y-%m-%dT%H:%M:%SZ"
    )
    meters = "\n".join(f"{m.id},{m.label},{m.carrier},{m.quantity}" for m in inputs.meters)
    return {
        "meter_series": _sha(series_text.encode()),
        "meters": _sha(meters.encode()),
        "retirements": _sha(certificates_csv(inputs)),
        "site_file_versions": _sha("\n".join(v.sha256 for v in inputs.versions).encode()),
        "grid_intensity": _sha(intensity.encode()),
    }


async def disclose(
    conn: AsyncConnection, backend: Backend, site_id: str, year: int
) -> dict[str, bytes]:
    """The package's files by name, manifest last."""
    from energyhub.carbon.disclose_html import disclosure_html  # HTML from the same files

    inputs, start, end = await gather(conn, backend, site_id, year)
    activity_csv, gaps_csv = activity(inputs, start, end)
    files = {
        "emissions.csv": emissions_csv(inputs.report),
        "activity.csv": activity_csv,
        "gaps.csv": gaps_csv,
        "factors.json": factors_json(inputs),
        "certificates.csv": certificates_csv(inputs),
        "changes.csv": changes_csv(inputs),
        "report.json": (inputs.report.model_dump_json(indent=2) + "\n").encode(),
    }
    files["disclosure.html"] = disclosure_html(inputs.report, files).encode()
    manifest = {
        "site_id": site_id,
        "year": year,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "energyhub_version": __version__,
        "files": {name: {"sha256": _sha(data), "bytes": len(data)} for name, data in files.items()},
        "inputs_sha256": inputs_digests(inputs),
        "inputs_note": "meter_series: the hourly series of every meter in activity.csv as the "
        "accounting reads them (from the stored readings' rollups); retirements: "
        "certificates.csv; site_file_versions: the SHA-256 of each version in changes.csv",
        "reproduce": f"energyhub carbon disclose --site {site_id} --year {year} --out DIR",
    }
    files["manifest.json"] = _json(manifest)
    return files
