"""The report as JSON (the API's shape) or CSV (one row for the site, then one per part)."""

from __future__ import annotations

import csv
import io

from energyhub.carbon.models import CarbonReport, Line

CSV_COLUMNS = (
    "site_id", "kind", "start", "end", "floor_area_m2", "electricity_kwh", "heat_kwh",
    "cooling_kwh", "gas_kwh", "pv_kwh", "scope1_kg", "scope2_kg", "total_kg", "avoided_kg",
    "electricity_cny", "gas_cny", "carbon_cny", "total_cny", "metered_kg", "allocated_kg",
    "area_share", "intensity_kg_per_m2", "coverage",
    "scope2_market_kg", "certificate_kwh", "contract_kwh", "residual_mix_kg_per_kwh",
    "exported_kwh", "export_credit_cny",
)  # fmt: skip


def to_json(report: CarbonReport) -> str:
    return report.model_dump_json(indent=2)


def _figures(report: CarbonReport, item: Line | CarbonReport) -> dict[str, object]:
    """The columns a site and its parts share (the same field names on both models)."""
    return {
        "start": report.start.isoformat(),
        "end": report.end.isoformat(),
        "floor_area_m2": item.floor_area_m2,
        "electricity_kwh": item.energy_kwh.electricity,
        "heat_kwh": item.energy_kwh.heat,
        "cooling_kwh": item.energy_kwh.cooling,
        "gas_kwh": item.energy_kwh.gas,
        "pv_kwh": item.pv_kwh,
        "scope1_kg": item.scope1_kg,
        "scope2_kg": item.scope2_kg,
        "total_kg": item.total_kg,
        "avoided_kg": item.avoided_kg,
        "electricity_cny": item.cost_cny.electricity,
        "gas_cny": item.cost_cny.gas,
        "carbon_cny": item.cost_cny.carbon,
        "total_cny": item.cost_cny.total,
        "exported_kwh": item.exported_kwh,
        "export_credit_cny": item.cost_cny.export_credit,
    }


def _market(report: CarbonReport) -> dict[str, object]:
    """The site row's market-based Scope 2 (its `scope2_kg` is location-based)."""
    market = report.scope2_market
    if market is None:
        return {}
    return {
        "scope2_market_kg": market.market_kg,
        "certificate_kwh": market.certificate_kwh,
        "contract_kwh": market.contract_kwh,
        "residual_mix_kg_per_kwh": market.residual_mix_kg_per_kwh,
    }


def _line_market(report: CarbonReport, line: Line) -> dict[str, object]:
    """A line row's market-based Scope 2 (its `scope2_kg` is location-based)."""
    market = report.scope2_market
    if market is None:
        return {}
    mine = next((m for m in market.lines if (m.site_id, m.kind) == (line.site_id, line.kind)), None)
    if mine is None:
        return {}
    return {
        "scope2_market_kg": mine.market_kg,
        "certificate_kwh": mine.certificate_kwh,
        "contract_kwh": mine.contract_kwh,
        "residual_mix_kg_per_kwh": market.residual_mix_kg_per_kwh,
    }


def to_csv(report: CarbonReport) -> str:
    """The site's totals, then its parts (buildings, parks or tenants), one row each."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerow(
        {"site_id": report.site_id, "kind": report.kind, **_figures(report, report)}
        | {"intensity_kg_per_m2": report.intensity_kg_per_m2, "coverage": report.coverage.share}
        | _market(report)
    )
    for line in report.lines:
        writer.writerow(
            {"site_id": line.site_id, "kind": line.kind, **_figures(report, line)}
            | {"metered_kg": line.metered_kg, "allocated_kg": line.allocated_kg}
            | {"area_share": line.area_share}
            | _line_market(report, line)
        )
    return buffer.getvalue()
