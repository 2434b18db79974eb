"""The package's CSV and JSON files for `energyhub carbon disclose`, from its inputs: text that
depends on nothing but them (floats at 6 decimals, keys sorted, no clock)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from energyhub.carbon.factors import PUBLISHED
from energyhub.carbon.models import CarbonReport
from energyhub.carbon.tree import MeterInfo
from energyhub.store.green import RetirementRow
from energyhub.store.site_versions import SiteVersion


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


def csv_bytes(header: list[str], rows: Sequence[Sequence[object]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode()


def json_bytes(value: object) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def num_text(value: float | None) -> str:
    """Floats as text that does not depend on the platform: 6 decimals, no -0."""
    if value is None:
        return ""
    return f"{value + 0.0:.6f}" if round(value, 6) else "0.000000"


def emissions_csv(report: CarbonReport) -> bytes:
    """Scope 1 and 2 by source, Scope 2 both ways, with activity data and factors: each row's
    factor is its kg over its activity (heat or cooling made on site counts 0 kg), so the rows
    add up to the totals."""
    f, market = report.factors, report.scope2_market
    energy = report.energy_kwh
    rows: list[list[object]] = [
        ["1", "both", "natural gas burnt", num_text(energy.gas), num_text(f.gas_kg_per_kwh),
         num_text(report.scope1_kg)],
        ["2", "location", "electricity bought", num_text(energy.electricity),
         num_text(report.scope2_electricity_kg / energy.electricity if energy.electricity
                  else None),
         num_text(report.scope2_electricity_kg)],
        ["2", "both", "heat bought", num_text(energy.heat),
         num_text(report.scope2_heat_kg / energy.heat if energy.heat else None),
         num_text(report.scope2_heat_kg)],
        ["2", "both", "cooling bought", num_text(energy.cooling),
         num_text(report.scope2_cooling_kg / energy.cooling if energy.cooling else None),
         num_text(report.scope2_cooling_kg)],
        ["memo", "both", "electricity exported (not netted against Scope 2)",
         num_text(report.exported_kwh), "", ""],
    ]  # fmt: skip
    if market is not None:
        rows += [
            ["2", "market", "electricity: certificates retired", num_text(market.certificate_kwh),
             num_text(0.0), num_text(0.0)],
            ["2", "market", "electricity: green-power contracts", num_text(market.contract_kwh),
             num_text(market.contract_kg / market.contract_kwh if market.contract_kwh else None),
             num_text(market.contract_kg)],
            ["2", "market", "electricity: residual mix", num_text(market.residual_kwh),
             num_text(market.residual_mix_kg_per_kwh),
             num_text(market.residual_kwh * market.residual_mix_kg_per_kwh)],
            ["1+2", "location", "total", "", "", num_text(report.scope1_kg + market.location_kg)],
            ["1+2", "market", "total", "", "", num_text(report.scope1_kg + market.market_kg)],
        ]  # fmt: skip
    header = ["scope", "method", "source", "activity_kwh", "kg_per_kwh", "kg_co2"]
    return csv_bytes(header, rows)


def factors_json(inputs: Inputs) -> bytes:
    f, market = inputs.report.factors, inputs.report.scope2_market
    contracts = sorted(
        {
            (r.instrument_id, r.project, r.supplier_kg_per_kwh or 0.0)
            for r in inputs.retired
            if r.kind == "contract"
        }
    )
    return json_bytes(
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
         r.location, r.vintage, r.serial_first, r.serial_last, num_text(r.mwh),
         num_text(r.supplier_kg_per_kwh), r.period_label, r.period_start.isoformat(),
         r.period_end.isoformat(), r.recorded_by, r.recorded_at.isoformat(), r.reason]
        for r in inputs.retired
    ]  # fmt: skip
    return csv_bytes(header, rows)


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
    return csv_bytes(["loaded_at", "site_file_sha256", "key", "old", "new", "what"], rows)
