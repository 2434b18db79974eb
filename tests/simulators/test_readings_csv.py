"""Meter readings from a CSV file, replayed through the real broker into `energyhub ingest`."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from energyhub.sites import SiteFile
from energyhub.store.db import connect
from energyhub.store.migrations import migrate
from energyhub.store.sync import sync_site
from simulators.readings_csv import BATCH_READINGS, parse_csv
from tests.ingest.conftest import ingest_settings, running_worker, wait_for
from tests.simulators.conftest import SITE_FILE, energyhub_command


def _batches(parsed_records: list) -> list[tuple[str, list[dict[str, object]]]]:  # type: ignore[type-arg]
    return [(r.topic, orjson.loads(r.payload)) for r in parsed_records]


def test_good_rows_become_time_ordered_batches_per_site(site: SiteFile) -> None:
    text = (
        "\ufeffsite,meter,ts,value\n"
        "lab,main,2026-11-01T00:15:00+08:00,410.5\n"
        "office,main-kwh,2026-11-01T00:00:00+08:00,998.5\n"
        "lab,main,2026-11-01T00:00:00+08:00,400\n"
        "tp,incomer,2026-10-31T16:00:00Z,900\n"
    )
    parsed = parse_csv(site, text, "x/energyhub/")
    assert parsed.errors == [] and parsed.readings == 4
    batches = _batches(parsed.records)
    assert [topic for topic, _ in batches] == [
        "x/energyhub/tp/office", "x/energyhub/tp/tp", "x/energyhub/tp/lab"
    ]  # fmt: skip
    lab = batches[2][1]
    assert [(r["meter"], r["value"]) for r in lab] == [("main", 400.0), ("main", 410.5)]
    assert lab[0]["ts"] == int(datetime.fromisoformat("2026-11-01T00:00+08:00").timestamp() * 1000)
    assert parsed.records[2].t == datetime.fromisoformat("2026-11-01T00:15+08:00").timestamp()


def test_a_long_history_goes_out_in_batches_the_ingest_takes(site: SiteFile) -> None:
    start = datetime(2026, 10, 1, tzinfo=UTC)
    rows = [f"lab,main,{(start + timedelta(minutes=15 * i)).isoformat()},{i}" for i in range(2500)]
    parsed = parse_csv(site, "site,meter,ts,value\n" + "\n".join(rows), "energyhub")
    sizes = [len(batch) for _, batch in _batches(parsed.records)]
    assert sizes == [BATCH_READINGS, BATCH_READINGS, 500]
    assert all(len(r.payload) < 262_144 for r in parsed.records)  # the ingest's default limit


def test_each_bad_row_is_named_and_the_good_ones_kept(site: SiteFile) -> None:
    text = (
        "site,meter,ts,value\n"
        "lab,main,2026-11-01T00:00:00+08:00,400\n"
        "gym,main,2026-11-01T00:00:00+08:00,1\n"
        "lab,mian,2026-11-01T00:00:00+08:00,1\n"
        "lab,main,2026-11-01 00:15:00,1\n"
        "lab,main,2026-11-01T00:30:00+08:00,n/a\n"
        "lab,main,2026-11-01T00:45:00+08:00,1e400\n"
        "lab,main,2026-11-01T01:00:00+08:00,1,5\n"
        "lab,main,2026-11-01T00:00:00+08:00,401\n"
        "lab,main,2300-01-01T00:00:00+08:00,1\n"
        "lab,main,2026-11-01T01:15:00+08:00,415\n"
    )
    parsed = parse_csv(site, text, "energyhub")
    assert parsed.errors == [
        "row 3.site: no park or building 'gym' in the site file",
        "row 4.meter: lab has no meter 'mian' (its meters: cooling, heat, main)",
        "row 5.ts: give a UTC offset, got '2026-11-01 00:15:00'",
        "row 6.value: expected a finite number, got 'n/a'",
        "row 7.value: expected a finite number, got '1e400'",
        "row 8: 5 cells under a header of 4 columns (beyond it: '5'); a decimal comma? write "
        "1.5, not 1,5",
        "row 9.ts: lab/main at 2026-11-01T00:00:00+08:00 is given already (row 2); the first is "
        "kept",
        "row 10.ts: must lie between 1970 and 2200, got 2300",
    ]
    [(_, batch)] = _batches(parsed.records)
    assert [r["value"] for r in batch] == [400.0, 415.0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "header: missing column(s) site, meter, ts, value"),
        ("site,meter,time,value\n", "header: missing column(s) ts"),
        ("site,meter,ts,value,value\n", "header: the column 'value' is given twice"),
        ("site,meter,ts,value,unit\n", "header: unknown column 'unit'"),
    ],
)
def test_a_header_it_cannot_read_is_named(site: SiteFile, text: str, message: str) -> None:
    parsed = parse_csv(site, text, "energyhub")
    assert parsed.records == [] and len(parsed.errors) == 1
    assert parsed.errors[0].startswith(message)


@pytest.mark.slow
async def test_replay_readings_backfills_history_through_the_ingest(
    pg_url: str, site: SiteFile, tmp_path: Path
) -> None:
    """Three days of a lab's 15-minute history and a counter go in as the CSV has them; the
    row the CSV cannot give is named (exit 2) and loses none beside it."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    async with connect(pg_url) as conn:
        await migrate(conn)
        await sync_site(conn, site)
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=3)
    steps = [start + timedelta(minutes=15 * i) for i in range(3 * 96)]
    rows = [f"lab,main,{ts.isoformat()},{400 + i % 96}" for i, ts in enumerate(steps)]
    rows += [f"lab,heat,{ts.isoformat()},{100.0 + 2.5 * i}" for i, ts in enumerate(steps[:8])]
    rows.append(f"lab,main,{start.isoformat()}Z,1")
    file = tmp_path / "history.csv"
    file.write_text("site,meter,ts,value\n" + "\n".join(rows) + "\n")
    run = ["--readings", str(file), "--site", str(SITE_FILE), "--prefix", prefix,
           "--speed", "max"]  # fmt: skip
    async with running_worker(ingest_settings(pg_url, prefix)):
        code, output = await energyhub_command("replay", *run)
        count = await wait_for(pg_url, "SELECT count(*) FROM readings", len(steps) + 8)
        await asyncio.sleep(0.5)  # nothing more may arrive
    message = " ".join(output.split())
    assert code == 2, output
    assert f"row {len(rows) + 1}.ts: expected an RFC 3339 time" in message
    assert "1 row problem(s), those rows not stored (the other readings replayed)" in message
    assert count == len(steps) + 8
    async with connect(pg_url) as conn:
        cursor = await conn.execute(
            "SELECT m.name, min(r.ts), max(r.ts), sum(r.value) FROM readings r "
            "JOIN meters m ON m.id = r.meter_id WHERE m.site_id = 'lab' GROUP BY 1 ORDER BY 1"
        )
        stored = await cursor.fetchall()
    assert stored == [
        ("heat", steps[0], steps[7], sum(100.0 + 2.5 * i for i in range(8))),
        ("main", steps[0], steps[-1], float(sum(400 + i % 96 for i in range(len(steps))))),
    ]


def test_readings_with_a_start_or_beside_a_feed_are_refused(tmp_path: Path) -> None:
    import subprocess

    file = tmp_path / "r.csv"
    file.write_text("site,meter,ts,value\n")
    base = [sys.executable, "-m", "energyhub", "replay", "--site", str(SITE_FILE)]
    for extra, message in (
        (["--readings", str(file)], "no reading in it (the header is site,meter,ts,value)"),
        (["--readings", str(file), "--start", "2026-01-01T00:00Z"], "--start places --feed"),
        (["--readings", str(file), "--feed", "lab/main=bdew:g25"], "give only one of --feed"),
        (["--readings", str(tmp_path / "none.csv")], "cannot read the readings: No such file"),
    ):
        done = subprocess.run(
            [*base, *extra], capture_output=True, text=True, timeout=60,
            env={**os.environ, "COLUMNS": "400"},
        )  # fmt: skip
        output = " ".join((done.stdout + done.stderr).split())
        assert done.returncode == 2 and message in output, output
        assert "Traceback" not in output
