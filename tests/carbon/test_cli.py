"""`energyhub carbon report|intensity` as a user runs them: formats, charts, exit 2 on bad input."""

import csv
import io
import json
import re
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner, Result

from energyhub.cli import app

runner = CliRunner()


def carbon(url: str, *args: str) -> Result:
    return runner.invoke(app, ["carbon", *args], env={"ENERGYHUB_DB_URL": url, "COLUMNS": "200"})


def report(url: str, site: str, period: str, *extra: str) -> Result:
    return carbon(url, "report", "--site", site, "--period", period, *extra)


def test_json_is_the_api_report(carbon_url: str) -> None:
    done = report(carbon_url, "b1", "2026-10-05")
    assert done.exit_code == 0, done.output
    data = json.loads(done.stdout)
    assert data["total_kg"] == pytest.approx(1576)
    assert data["energy_kwh"]["electricity"] == pytest.approx(2200)
    assert {"scope1_kg", "scope2_kg", "pv_kwh", "avoided_kg", "intensity_kg_per_m2"} <= set(data)
    assert data["trend"]["previous_total_kg"] == pytest.approx(1680)
    assert data["coverage"]["share"] == pytest.approx(560 / 576)


def test_csv_has_the_site_then_its_parts(carbon_url: str) -> None:
    done = report(carbon_url, "p1", "2026-10", "--format", "csv")
    assert done.exit_code == 0, done.output
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert [(r["site_id"], r["kind"]) for r in rows] == [
        ("p1", "park"),
        ("b1", "building"),
        ("b2", "building"),
        ("b4", "building"),
    ]
    assert float(rows[0]["total_kg"]) == pytest.approx(sum(float(r["total_kg"]) for r in rows[1:]))
    assert rows[0]["start"] == "2026-10-01T00:00:00+08:00"


def test_html_report_has_its_charts_inline(carbon_url: str, tmp_path: Path) -> None:
    out = tmp_path / "b1.html"
    done = report(carbon_url, "b1", "2026-10", "--format", "html", "--out", str(out))
    assert done.exit_code == 0, done.output
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>") and "</html>" in page
    assert "<script" not in page and "http://" not in page.replace("http://www.w3.org", "")
    charts = re.findall(r"<svg .*?</svg>", page, flags=re.S)
    titles = [re.search(r"<title>(.*?)</title>", svg).group(1) for svg in charts]
    assert titles == [
        "Emissions per day by scope",
        "Energy by carrier",
        "Emissions by part of the site",
        "Target 2026",
    ]
    for svg in charts:
        assert len(re.findall(r"<rect [^>]*height=\"(?!0\.0\")", svg)) >= 1
    daily = charts[0]
    assert len(re.findall(r"<rect ", daily)) >= 2 * 3  # two days, three scopes each
    assert "tenant-a" in page and "Target and allowance 2026" in page


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--site", "b1", "--period", "2026-11"), "no readings for site 'b1' from 2026-11-01"),
        (("--site", "b4", "--period", "2026-10"), "site 'b4' has no energy meters"),
        (
            ("--site", "b1", "--period", "2026-10", "--factor-year", "2019"),
            "unknown factor year 2019: the site file's carbon.factors_by_year lists 2020, 2025",
        ),
        (("--site", "nowhere", "--period", "2026-10"), "unknown site 'nowhere'"),
        (("--site", "b1", "--period", "Oct 2026"), "period must be YYYY, YYYY-MM or YYYY-MM-DD"),
        (("--site", "b1", "--period", "2026-13"), "period '2026-13' is not a date"),
        # years the calendar cannot reach were an OverflowError or a ValueError (tracebacks)
        (("--site", "b1", "--period", "0000"), "the year must lie between 1970 and 2199, got 0"),
        (("--site", "b1", "--period", "9999-12"), "between 1970 and 2199, got 9999"),
        # digits of another script were read as ASCII ones ('２０２６' reported 2026)
        (
            ("--site", "b1", "--period", "２０２６"),
            "must be YYYY, YYYY-MM or YYYY-MM-DD, got '２０２６'",
        ),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(
    carbon_url: str, args: tuple[str, ...], message: str
) -> None:
    done = carbon(carbon_url, "report", *args)
    assert done.exit_code == 2
    assert message in " ".join(done.stderr.split())
    assert "Traceback" not in done.output


def test_an_out_file_the_disk_refuses_is_named(carbon_url: str) -> None:
    """A full disk was "cannot write the file: No space left on device"; every `--out` now says
    it the same way (`energyhub.userfiles.cannot_write`)."""
    done = report(carbon_url, "b1", "2026-10", "--out", "/dev/full")
    assert done.exit_code == 2
    assert done.stderr.strip() == "error: --out /dev/full: no space left on device"
    assert "Traceback" not in done.output


def test_intensity_series_loads_and_bad_rows_are_named(carbon_url: str, tmp_path: Path) -> None:
    good = tmp_path / "series.csv"
    good.write_text(
        "ts,kg_per_kwh\n2026-10-05T00:00:00+08:00,0.61\n2026-10-05T01:00:00+08:00,0.58\n"
    )
    done = carbon(carbon_url, "intensity", str(good), "--series", "east-china-hourly")
    assert done.exit_code == 0, done.output
    assert "series east-china-hourly: 2 hours stored" in done.stdout
    bad = tmp_path / "bad.csv"
    bad.write_text("ts,kg_per_kwh\n2026-10-05T00:00:00+08:00,0.61\n2026-10-05T01:30:00+08:00,0.5\n")
    done = carbon(carbon_url, "intensity", str(bad), "--series", "x")
    assert done.exit_code == 2
    assert f"{bad}:3: ts must be the start of an hour" in " ".join(done.stderr.split())
    done = carbon(carbon_url, "intensity", str(good), "--series", "no spaces")
    assert done.exit_code == 2 and "--series must be an id" in done.stderr


def test_bad_intensity_rows_lose_no_good_hour_beside_them(carbon_url: str, tmp_path: Path) -> None:
    """One bad row stored nothing of the file: each refused row is named and the others kept."""
    mixed = tmp_path / "mixed.csv"
    mixed.write_text(
        "ts,kg_per_kwh\n2026-10-05T00:00:00+08:00,0.61\n2026-10-05T01:00:00+08:00,-1\n"
        "2026-10-05T02:00:00+08:00,0.55\n2026-10-05T02:00:00+08:00,0.9\nnot a time,0.5\n"
    )
    done = carbon(carbon_url, "intensity", str(mixed), "--series", "mixed")
    assert done.exit_code == 2, done.output
    assert "series mixed: 2 hours stored" in done.stdout
    err = " ".join(done.stderr.split())
    assert "3 row problem(s), those rows not stored (the other 2 stored)" in err
    assert f"{mixed}:3: kg_per_kwh must be a finite number ≥ 0, got '-1'" in err
    assert f"{mixed}:5: hour 2026-10-04T18:00:00+00:00 appears twice (first on line 4" in err
    assert f"{mixed}:6: ts must be RFC 3339, got 'not a time'" in err
    with psycopg.connect(carbon_url) as conn:
        rows = conn.execute(
            "SELECT ts, kg_per_kwh FROM grid_intensity WHERE series = 'mixed' ORDER BY ts"
        ).fetchall()
    assert [(ts.isoformat(), kg) for ts, kg in rows] == [
        ("2026-10-04T16:00:00+00:00", 0.61),
        ("2026-10-04T18:00:00+00:00", 0.55),  # the first of the hour given twice
    ]
    nothing = tmp_path / "nothing.csv"
    nothing.write_text("ts,kg_per_kwh\nnot a time,0.5\n")
    done = carbon(carbon_url, "intensity", str(nothing), "--series", "nothing")
    assert done.exit_code == 2 and "hours stored" not in done.stdout
    assert "1 row problem(s), those rows not stored (no row is good)" in done.stderr


def test_an_intensity_in_grams_or_beyond_any_grid_is_named(carbon_url: str, tmp_path: Path) -> None:
    """1e308 kg/kWh was stored and priced its hours; a series in g/kWh (as grid operators often
    publish) priced every hour 1000 times over. Each is named, the good rows stored."""
    grams = tmp_path / "grams.csv"
    grams.write_text(
        "ts,kg_per_kwh\n2026-10-05T00:00:00+08:00,0.61\n2026-10-05T01:00:00+08:00,581\n"
        "2026-10-05T02:00:00+08:00,1e308\n2026-10-05T03:00:00+08:00,2\n"
    )
    done = carbon(carbon_url, "intensity", str(grams), "--series", "grams")
    assert done.exit_code == 2, done.output
    err = " ".join(done.stderr.split())
    assert "2 row problem(s), those rows not stored (the other 2 stored)" in err
    assert f"{grams}:3: kg_per_kwh must be at most 2 (kg of CO₂ per kWh), got '581': a " in err
    assert "a series in g/kWh? divide by 1000" in err and f"{grams}:4: " in err
    assert _stored(carbon_url, "grams") == [
        ("2026-10-04T16:00:00+00:00", 0.61),
        ("2026-10-04T19:00:00+00:00", 2.0),
    ]


def _stored(url: str, series: str) -> list[tuple[str, float]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT ts, kg_per_kwh FROM grid_intensity WHERE series = %s ORDER BY ts", (series,)
        ).fetchall()
    return [(ts.isoformat(), kg) for ts, kg in rows]


def test_indias_hours_load_written_in_utc(carbon_url: str, tmp_path: Path) -> None:
    """India's local hours start at :30 UTC: written in UTC (18:30Z is 00:00 there) every row
    was refused as not the start of an hour, though the same instants written in +05:30 loaded."""
    local = tmp_path / "india-local.csv"
    local.write_text(
        "ts,kg_per_kwh\n2026-10-04T18:30:00Z,0.8\n2026-10-04T19:30:00+00:00,0.7\n"
        "2026-10-05T02:00:00+05:30,0.6\n"
    )
    done = carbon(carbon_url, "intensity", str(local), "--series", "india-local")
    assert done.exit_code == 0, done.output
    assert "series india-local: 3 hours stored" in done.stdout
    assert _stored(carbon_url, "india-local") == [
        ("2026-10-04T18:30:00+00:00", 0.8),
        ("2026-10-04T19:30:00+00:00", 0.7),
        ("2026-10-04T20:30:00+00:00", 0.6),
    ]


def test_a_file_is_one_grid_of_hours(carbon_url: str, tmp_path: Path) -> None:
    """A row off the grid most rows start on would overlap their hours; one off every zone's
    hours (:10) is no hour's start. Each is named, the rest stored."""
    utc = tmp_path / "utc.csv"
    utc.write_text(
        "ts,kg_per_kwh\n2026-10-04T18:00:00Z,0.8\n2026-10-04T19:30:00Z,0.1\n"
        "2026-10-04T20:00:00Z,0.6\n2026-10-04T21:10:00Z,0.2\n2026-10-05T03:00:00+05:30,0.5\n"
    )
    done = carbon(carbon_url, "intensity", str(utc), "--series", "one-grid")
    assert done.exit_code == 2, done.output
    assert "series one-grid: 2 hours stored" in done.stdout
    err = " ".join(done.stderr.split())
    assert "3 row problem(s), those rows not stored (the other 2 stored)" in err
    assert (
        f"{utc}:3: ts must be the start of an hour on the file's grid, :00 past each UTC hour as "
        "2 of its 4 good rows start (from line 2), got '2026-10-04T19:30:00+00:00' (:30 past)"
    ) in err
    assert f"{utc}:5: ts must be the start of an hour: :00, :15, :30 or :45 past a UTC hour" in err
    assert f"{utc}:6: ts must be the start of an hour on the file's grid" in err
    assert err.index(f"{utc}:3:") < err.index(f"{utc}:5:") < err.index(f"{utc}:6:")
    assert _stored(carbon_url, "one-grid") == [
        ("2026-10-04T18:00:00+00:00", 0.8),
        ("2026-10-04T20:00:00+00:00", 0.6),
    ]


def test_a_series_loaded_again_on_utcs_hours_replaces_its_local_hours(
    carbon_url: str, tmp_path: Path
) -> None:
    """Loaded first in India's local hours, then in UTC's: the old values stayed beside the new,
    and each quarter hour took the value begun last, half an hour of each."""
    local = tmp_path / "local.csv"
    local.write_text(
        "ts,kg_per_kwh\n2026-10-05T00:00:00+05:30,0.8\n2026-10-05T01:00:00+05:30,0.8\n"
    )
    assert carbon(carbon_url, "intensity", str(local), "--series", "regrid").exit_code == 0
    utc = tmp_path / "utc.csv"
    utc.write_text("ts,kg_per_kwh\n2026-10-04T18:00:00Z,0.4\n2026-10-04T19:00:00Z,0.4\n")
    done = carbon(carbon_url, "intensity", str(utc), "--series", "regrid")
    assert done.exit_code == 0, done.output
    assert (
        "series regrid: 2 hours stored, 2026-10-04T18:00:00+00:00 to 2026-10-04T19:00:00+00:00; "
        "removed 2 stored before on another grid of hours, which they overlap"
    ) in " ".join(done.stdout.split())
    assert _stored(carbon_url, "regrid") == [
        ("2026-10-04T18:00:00+00:00", 0.4),
        ("2026-10-04T19:00:00+00:00", 0.4),
    ]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"ts,kg_per_kwh\n2026-10-05T00:00:00+08:00,0.6\xff\n", "not UTF-8 text (byte 0xff"),
        (b"ts,kg_per_kwh\n2026-10-05T00:00:00+08:00\n", ":2: kg_per_kwh must be a finite"),
        (b"ts,kg_per_kwh\n,\n2026-10-05T00:00:00+08:00\n", ":2: ts must be RFC 3339, got ''"),
        (
            b"ts,kg_per_kwh\n2026-10-05T00:00:00+08:00,1e309\n",
            "kg_per_kwh must be a finite number",
        ),
        (
            b"ts,kg_per_kwh\n0001-01-01T00:00:00+14:00,0.5\n",
            ":2: ts must lie between 1970 and 2200",
        ),
        # a decimal comma was stored as 0 kg/kWh, a column given twice as its later value
        (
            b"ts,kg_per_kwh\n2026-10-05T00:00:00+08:00,0,5\n",
            ":2: 3 cells under a header of 2 columns (beyond it: '5'); a decimal comma?",
        ),
        (b"ts,kg_per_kwh,kg_per_kwh\n2026-10-05T00:00:00+08:00,0.5,0.7\n", "given twice"),
        # a cell over the csv module's limit was a traceback (`_csv.Error: field larger than
        # field limit (131072)`), in a row or in the header
        (
            b"ts,kg_per_kwh\n2026-10-05T00:00:00+08:00," + b"9" * 200_000 + b"\n",
            ":2: not readable as CSV: a cell of more than 131,072 characters",
        ),
        (b"ts," + b"k" * 200_000 + b"\n", ": the header is not readable as CSV: a cell of more"),
        # a stray quote read the lines after it into its cell: the error quoted them all
        (
            b'ts,kg_per_kwh\n"2026-10-05T00:00:00+08:00,0.6\n2026-10-05T01:00:00+08:00,0.5\n',
            ":2: a quote opened in this row is never closed",
        ),
    ],
)
def test_a_hostile_intensity_file_is_one_line_naming_the_row(
    carbon_url: str, tmp_path: Path, raw: bytes, message: str
) -> None:
    """Short rows, non-UTF-8 bytes and year 1 were tracebacks; 1e309 was stored as infinity."""
    bad = tmp_path / "bad.csv"
    bad.write_bytes(raw)
    done = carbon(carbon_url, "intensity", str(bad), "--series", "x")
    assert done.exit_code == 2, done.output
    assert message in " ".join(done.stderr.split())
