"""`energyhub scheduler` as a process: simulated time, plans and setpoints, SIGTERM, a second
scheduler refused, bad input."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml

from energyhub.store.db import connect

from .conftest import (
    SHARED_BROKER,
    HistorySpec,
    collect_setpoints,
    make_site,
    prepare_db,
    site_doc,
    write_history,
)

START = datetime.fromisoformat("2025-07-08T00:00:00+08:00")


def environment(db_url: str, prefix: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENERGYHUB_")}
    env.update(
        ENERGYHUB_DB_URL=db_url,
        ENERGYHUB_MQTT_URL=SHARED_BROKER,
        ENERGYHUB_MQTT_TOPIC_PREFIX=prefix,
        ENERGYHUB_MQTT_CLIENT_ID_PREFIX=prefix,
        ENERGYHUB_SCHEDULER_SITES='["office"]',
        ENERGYHUB_SCHEDULER_HORIZON_H="6",
    )
    env.update(extra)
    return env


async def plans(url: str) -> int:
    async with connect(url) as conn:
        row = await (await conn.execute("SELECT count(*) FROM plans")).fetchone()
        return int(row[0]) if row else 0


async def test_the_command_plans_sends_and_stops_on_sigterm(
    pg_url: str, prefix: str, tmp_path: Path
) -> None:
    site_file = tmp_path / "site.yaml"
    site_file.write_text(yaml.safe_dump(site_doc()))
    await prepare_db(pg_url, make_site())
    await write_history(pg_url, HistorySpec(START - timedelta(days=7), START))
    # 5 s a step: the first re-plan fits in one step on a loaded machine too (at 900×, 1 s, it
    # did not, and the scheduler rightly went on with the step it was in)
    command = [
        sys.executable, "-m", "energyhub", "scheduler", "--site", str(site_file),
        "--sim-start", START.isoformat(), "--speed", "180",
    ]  # fmt: skip
    async with collect_setpoints(SHARED_BROKER, prefix) as received:
        process = await asyncio.create_subprocess_exec(
            *command, env=environment(pg_url, prefix), stderr=asyncio.subprocess.PIPE
        )
        for _ in range(300):  # at most 60 s
            if len(received) >= 3 or process.returncode is not None:
                break
            await asyncio.sleep(0.2)
        second = await asyncio.create_subprocess_exec(
            *command, env=environment(pg_url, prefix), stderr=asyncio.subprocess.PIPE
        )
        _, second_err = await asyncio.wait_for(second.communicate(), 60)
        process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), 30)
    stderr = err.decode()
    assert process.returncode == 0, stderr
    refusal = second_err.decode()
    assert second.returncode == 2, refusal
    assert "another scheduler is running against this database (held by PostgreSQL pid" in refusal
    assert "energyhub scheduler" in refusal and "Traceback" not in refusal
    assert len(received) >= 3
    assert [datetime.fromisoformat(m.body["ts"]) for m in received[:3]] == [
        START + i * timedelta(minutes=15) for i in range(3)
    ]
    assert await plans(pg_url) >= 1


def test_bad_settings_and_arguments_are_one_line_errors(
    pg_url: str, prefix: str, tmp_path: Path
) -> None:
    site_file = tmp_path / "site.yaml"
    site_file.write_text(yaml.safe_dump(site_doc()))
    base = [sys.executable, "-m", "energyhub", "scheduler", "--site", str(site_file)]
    cases = [
        (["--sim-start", "yesterday"], {}, "--sim-start: expected an RFC 3339 time"),
        ([], {"ENERGYHUB_SCHEDULER_SITES": '["nowhere"]'}, "no park or building 'nowhere'"),
        (
            [],
            {"ENERGYHUB_SCHEDULER_SITES": '["tcity"]'},
            "'tcity' is the city: name its parks or buildings (or none: every park)",
        ),
    ]
    for args, extra, message in cases:
        done = subprocess.run(
            base + args, env=environment(pg_url, prefix, **extra), capture_output=True,
            text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 2, (args, done.stderr)
        assert message in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr


def test_an_enterprise_to_schedule_is_named_as_one(example_site_path: Path) -> None:
    """It was "no park or building 'acme-bio' in the site file", which names acme-bio."""
    from energyhub.errors import ConfigError
    from energyhub.scheduler.replan import targets
    from energyhub.sites import load_site

    with pytest.raises(ConfigError) as refused:
        targets(load_site(example_site_path), ["b02", "acme-bio"])
    assert str(refused.value) == (
        "ENERGYHUB_SCHEDULER_SITES: 'acme-bio' is an enterprise (a tenant of building 'b01'): "
        "the scheduler plans parks and buildings"
    )


def test_a_simulated_clock_beyond_the_calendar_is_refused_by_name(tmp_path: Path) -> None:
    """`--speed 1e400` (inf) was an OverflowError traceback at the first tick; a 1900 start ran
    on with re-plans the store refuses."""
    from typer.testing import CliRunner

    from energyhub.cli import app

    site_file = tmp_path / "site.yaml"
    site_file.write_text(yaml.safe_dump(site_doc()))
    env = {
        "ENERGYHUB_DB_URL": "postgresql://u@127.0.0.1:9/none",
        "ENERGYHUB_MQTT_URL": "mqtt://127.0.0.1:9",
        "COLUMNS": "200",
    }
    base = ["scheduler", "--site", str(site_file), "--sim-start"]
    for args, message in [
        (["2026-01-01T00:00:00+08:00", "--speed", "1e400"], "'--speed': Input should be less"),
        (["1900-01-01T00:00:00+08:00"], "--sim-start: must lie between 1970 and 2200, got 1900"),
    ]:
        done = CliRunner().invoke(app, [*base, *args], env=env)
        assert done.exit_code == 2, done.output
        assert isinstance(done.exception, SystemExit)
        assert message in " ".join(done.output.split())
    # a local time the clocks skip ran as 02:30+01:00 (shown as 03:30), a repeated one as its
    # first pass, both unsaid
    berlin = tmp_path / "berlin.yaml"
    berlin.write_text(yaml.safe_dump({**site_doc(), "timezone": "Europe/Berlin"}))
    for start, message in [
        ("2026-03-29T02:30:00", "does not exist in Europe/Berlin (the clocks skip it)"),
        ("2026-10-25T02:30:00", "occurs twice in Europe/Berlin (the clocks go back)"),
    ]:
        args = ["scheduler", "--site", str(berlin), "--sim-start", start]
        done = CliRunner().invoke(app, args, env=env)
        assert done.exit_code == 2, done.output
        assert f"--sim-start: {start} {message}: give its UTC offset" in " ".join(
            done.output.split()
        )
