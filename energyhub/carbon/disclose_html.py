"""The disclosure as one printable page, built from the package's own CSV and JSON files, so the
page and the machine files cannot disagree."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections import defaultdict
from html import escape

from energyhub.carbon.market_html import scope2_table
from energyhub.carbon.models import CarbonReport
from energyhub.carbon.report_html import STYLE
from energyhub.numbers import coverage_percent

GAPS_SHOWN = 20
"""The longest gaps listed on the page; gaps.csv has every one."""


def _rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode())))


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(text: str, decimals: int = 0) -> str:
    return f"{float(text):,.{decimals}f}" if text else "—"


def _emissions(files: dict[str, bytes]) -> str:
    rows = [
        [r["scope"], r["method"], r["source"], _fmt(r["activity_kwh"]), _fmt(r["kg_per_kwh"], 4),
         _fmt(r["kg_co2"])]
        for r in _rows(files["emissions.csv"])
    ]  # fmt: skip
    header = ["Scope", "Method", "Source", "Activity kWh", "kg/kWh", "kg CO₂"]
    return "<h2>Emissions by scope and source</h2>" + _table(header, rows)


def _coverage(files: dict[str, bytes]) -> str:
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    for r in _rows(files["activity.csv"]):
        t = totals[f"{r['meter']} ({r['carrier']}, {r['quantity']})"]
        t[0] += float(r["kwh"])
        t[1] += float(r["expected_hours"])
        t[2] += float(r["present_hours"])
    rows = [
        [name, f"{kwh:,.0f}", f"{present:,.0f} of {expected:,.0f}", f"{present / expected:.1%}"]
        for name, (kwh, expected, present) in sorted(totals.items())
    ]
    gaps = sorted(_rows(files["gaps.csv"]), key=lambda g: -int(g["hours"]))
    listed = [[g["meter"], g["start"], g["end"], g["hours"]] for g in gaps[:GAPS_SHOWN]]
    return (
        "<h2>Activity data and coverage</h2>"
        + _table(["Meter", "kWh in the year", "Hours with data", "Coverage"], rows)
        + f'<p class="sub">Per month in activity.csv. {len(gaps)} gaps, none filled in; the '
        f"{min(len(gaps), GAPS_SHOWN)} longest:</p>"
        + _table(["Meter", "From", "To", "Hours"], listed)
    )


def _factors(files: dict[str, bytes]) -> str:
    data = json.loads(files["factors.json"])
    items = [
        f"<li>{escape(key)}: {escape(source)}</li>"
        for key, source in sorted(data["sources"].items())
    ]
    items.append(
        f"<li>residual mix {data['residual_mix_kg_per_kwh']} kg/kWh: "
        f"{escape(str(data['residual_mix_source']))}</li>"
    )
    items += [
        f"<li>contract {c['instrument_id']} ({escape(c['project'])}): supplier "
        f"{c['supplier_kg_per_kwh']} kg/kWh</li>"
        for c in data["contracts"]
    ]
    year = data["factor_year"] or "flat values"
    return f"<h2>Emission factors (factor year {escape(str(year))})</h2><ul>{''.join(items)}</ul>"


def _certificates(files: dict[str, bytes]) -> str:
    rows = [
        [r["retirement_id"], r["kind"], f"{r['registry']}: {r['project']}",
         f"{r['technology']}, {r['location']}", r["vintage"],
         f"{r['serial_first']}-{r['serial_last']}" if r["serial_first"] else "—",
         _fmt(r["mwh"], 3), r["period"], r["recorded_by"]]
        for r in _rows(files["certificates.csv"])
    ]  # fmt: skip
    header = ["Retirement", "Kind", "Project", "Source", "Vintage", "Serials", "MWh", "For",
              "Recorded by"]  # fmt: skip
    body = _table(header, rows) if rows else '<p class="sub">None.</p>'
    return "<h2>Certificates retired and contracts claimed</h2>" + body


def _changes(files: dict[str, bytes]) -> str:
    rows = [
        [r["loaded_at"], r["site_file_sha256"][:12], r["what"], r["key"], r["old"], r["new"]]
        for r in _rows(files["changes.csv"])
    ]
    header = ["Loaded", "Site file", "What", "Key", "Old", "New"]
    return "<h2>Site-file versions and carbon changes</h2>" + _table(header, rows)


def _files(files: dict[str, bytes]) -> str:
    rows = [[name, hashlib.sha256(data).hexdigest()] for name, data in files.items()]
    return (
        "<h2>Files</h2>"
        + _table(["File", "SHA-256"], rows)
        + '<p class="sub">manifest.json lists these, this page\'s own hash and the hashes of '
        "the inputs.</p>"
    )


def disclosure_html(report: CarbonReport, files: dict[str, bytes]) -> str:
    """One self-contained page: summary, emissions, Scope 2 both ways, data, factors, changes."""
    name = report.site_name or report.site_id
    parts = [
        f"<h1>Carbon disclosure — {escape(name)} ({escape(report.kind)})</h1>",
        f'<div class="sub">{report.start.date().isoformat()} to '
        f"{report.end.date().isoformat()} ({escape(report.timezone)}) · coverage "
        f"{coverage_percent(report.coverage.share)}</div>",
        _emissions(files),
    ]
    if report.scope2_market is not None:
        parts.append(scope2_table(report.scope2_market))
    parts += [_coverage(files), _factors(files), _certificates(files), _changes(files)]
    if report.notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{escape(n)}</li>" for n in report.notes))
        parts.append("</ul>")
    parts.append(_files(files))
    title = escape(f"Carbon disclosure {report.site_id} {report.start.year}")
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{STYLE}</style></head><body>{''.join(parts)}</body></html>\n"
    )
