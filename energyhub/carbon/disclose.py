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

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from psycopg import AsyncConnection

from energyhub import __version__
from energyhub.carbon.accounting import carbon_report
from energyhub.carbon.coverage import expected_buckets
from energyhub.carbon.disclose_files import (
    Inputs,
    certificates_csv,
    changes_csv,
    csv_bytes,
    emissions_csv,
    factors_json,
    json_bytes,
    num_text,
    sha256_hex,
)
from energyhub.carbon.intensity import hourly_intensity
from energyhub.carbon.market import residual_mix
from energyhub.carbon.tree import (
    MeterInfo,
    SiteTree,
    enterprise_buildings,
    load_tree,
    site_meters,
    tenant_meters,
)
from energyhub.store.db import Backend
from energyhub.store.green import retirements
from energyhub.store.queries import meter_series
from energyhub.store.site_versions import versions_in

STEP = timedelta(hours=1)
"""Activity data at the hour: the step a year's carbon report reads."""


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


def activity(inputs: Inputs, start: datetime, end: datetime) -> tuple[bytes, bytes]:
    """Per meter and local month: kWh by the store's energy rule (each reading's step, never an
    hour's mean kW × 1 h, which counts an hour with a lost reading whole), expected and present
    hours; and every gap."""
    zone = str(inputs.report.timezone)
    expected = expected_buckets(start, end, STEP)
    months = expected.tz_convert(zone).strftime("%Y-%m")
    known = inputs.series.dropna(subset=["value"])
    rows: list[list[object]] = []
    gaps: list[list[object]] = []
    for meter in inputs.meters:
        mine = known[known["meter_id"] == meter.id].set_index("bucket")
        values = mine["value"].reindex(expected)
        energy = mine["energy_kwh"].reindex(expected)
        have = values.notna().to_numpy()
        for month in sorted(set(months)):
            in_month = np.asarray(months == month)
            count = int(in_month.sum())
            present = int((have & in_month).sum())
            kwh = float(energy[in_month].sum())
            share = present / count if count else 0.0
            rows.append(
                [meter.label, meter.carrier, meter.quantity, month, num_text(kwh), count, present,
                 num_text(share)]
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
    return csv_bytes(header, rows), csv_bytes(["meter", "start", "end", "hours"], gaps)


def inputs_digests(inputs: Inputs) -> dict[str, str]:
    """SHA-256 of each input, in a canonical text form."""
    series = inputs.series.sort_values(["meter_id", "bucket"])
    series_text = series.to_csv(index=False, float_format="%.9g", date_format="%Y-%m-%dT%H:%M:%SZ")
    intensity = inputs.intensity.sort_values(["series", "hour"]).to_csv(
        index=False, float_format="%.9g", date_format="%Y-%m-%dT%H:%M:%SZ"
    )
    meters = "\n".join(f"{m.id},{m.label},{m.carrier},{m.quantity}" for m in inputs.meters)
    return {
        "meter_series": sha256_hex(series_text.encode()),
        "meters": sha256_hex(meters.encode()),
        "retirements": sha256_hex(certificates_csv(inputs)),
        "site_file_versions": sha256_hex("\n".join(v.sha256 for v in inputs.versions).encode()),
        "grid_intensity": sha256_hex(intensity.encode()),
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
        "files": {
            name: {"sha256": sha256_hex(data), "bytes": len(data)} for name, data in files.items()
        },
        "inputs_sha256": inputs_digests(inputs),
        "inputs_note": "meter_series: the hourly series of every meter in activity.csv as the "
        "accounting reads them (from the stored readings' rollups); retirements: "
        "certificates.csv; site_file_versions: the SHA-256 of each version in changes.csv",
        "reproduce": f"energyhub carbon disclose --site {site_id} --year {year} --out DIR",
    }
    files["manifest.json"] = json_bytes(manifest)
    return files
